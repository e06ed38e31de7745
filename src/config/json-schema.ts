/**
 * The editor JSON Schema of the native policy format, generated from the zod
 * schema that validates it (so the two never drift). scripts/gen-schema.ts
 * writes it to policies/schema/shipmate-policy.schema.json; a test checks the
 * committed file is current.
 */
import { z } from "zod";
import { NATIVE_API_VERSION, nativePolicyDocument } from "./schema.ts";

export const POLICY_SCHEMA_FILE = "policies/schema/shipmate-policy.schema.json";
export const POLICY_SCHEMA_ID = "https://shipmate.dev/schemas/v1alpha1/shipmate-policy.schema.json";

export function policyJsonSchema(): string {
  // `input`: what a person may write (defaults make fields optional).
  const generated = z.toJSONSchema(nativePolicyDocument, { io: "input", reused: "ref" });
  const { $schema, ...rest } = generated;
  const schema = {
    $schema,
    $id: POLICY_SCHEMA_ID,
    title: `shipmate image policy (${NATIVE_API_VERSION})`,
    description:
      "A native shipmate ImagePolicy or ImagePolicyList document. Generated from src/config/schema.ts by scripts/gen-schema.ts; do not edit.",
    ...rest,
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
