/**
 * The editor JSON Schema: generated from the zod schema, committed, and
 * accepting exactly what the loader accepts for the example policies.
 */
import { readFile } from "node:fs/promises";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { findPolicyFiles, loadPolicyConfig, parseGoDuration } from "../../src/config/index.ts";
import { POLICY_SCHEMA_FILE, policyJsonSchema } from "../../src/config/json-schema.ts";
import type { SelectionStrategy } from "../../src/policy/index.ts";

async function nativeDocuments(dir: string): Promise<{ file: string; value: unknown }[]> {
  const out: { file: string; value: unknown }[] = [];
  for (const file of await findPolicyFiles(dir)) {
    const docs = parseAllDocuments(await readFile(file, "utf8"));
    if (!Array.isArray(docs)) continue;
    for (const doc of docs) {
      const value = doc.toJS() as { apiVersion?: string } | null;
      if (value?.apiVersion === "shipmate.dev/v1alpha1") out.push({ file, value });
    }
  }
  return out;
}

describe("schema: policies/schema/shipmate-policy.schema.json", () => {
  it("schema: the committed file is what scripts/gen-schema.ts generates from the zod schema", async () => {
    const committed = JSON.parse(await readFile(POLICY_SCHEMA_FILE, "utf8"));
    expect(committed).toEqual(JSON.parse(policyJsonSchema()));
  });

  it("schema: every native example validates against it (as an editor would check it)", async () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const validate = ajv.compile(JSON.parse(await readFile(POLICY_SCHEMA_FILE, "utf8")));
    const docs = await nativeDocuments("policies/examples");
    expect(docs.length).toBeGreaterThan(1);
    for (const { file, value } of docs) {
      expect(validate(value), `${file}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
  });

  it.each([
    ["a typo in a field name", { strategy: "semver", range: "^1", imgae: "x", image: "x" }],
    ["an unknown strategy", { strategy: "latest", image: "x" }],
    ["semver without its range", { strategy: "semver", image: "x" }],
    ["an order outside asc/desc", { strategy: "numerical", order: "up", image: "x" }],
    ["minAge that is not a duration", { strategy: "newestBuild", minAge: "3 days", image: "x" }],
  ])("schema: editors flag %s", async (_rule, spec) => {
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(JSON.parse(await readFile(POLICY_SCHEMA_FILE, "utf8")));
    const doc = { apiVersion: "shipmate.dev/v1alpha1", kind: "ImagePolicy", metadata: { name: "a" }, spec };
    expect(validate(doc)).toBe(false);
  });
});

describe("examples: policies/examples", () => {
  it("examples: load without a problem and cover every strategy in both formats", async () => {
    const { policies, automations } = await loadPolicyConfig("policies/examples");
    const kinds = new Set<SelectionStrategy["kind"]>(policies.map((p) => p.selection.strategy.kind));
    expect([...kinds].sort()).toEqual(["alphabetical", "digest", "newestBuild", "numerical", "semver"]);
    expect(policies.some((p) => p.source.file.includes("/flux/"))).toBe(true);
    expect(policies.some((p) => p.source.file.includes("/native/"))).toBe(true);
    expect(automations.map((a) => a.id)).toEqual(["flux-system:flux-system"]);
  });
});

describe("duration: Go time.ParseDuration syntax for minAge", () => {
  it.each([
    ["72h", 72 * 3600 * 1000],
    ["1h30m", 90 * 60 * 1000],
    ["1.5h", 90 * 60 * 1000],
    ["300ms", 300],
    ["2h45m30.5s", ((2 * 60 + 45) * 60 + 30.5) * 1000],
    ["1µs", 0.001],
    [".5s", 500],
    ["0", 0],
    ["-1h", -3600 * 1000],
  ])("%j is %d ms", (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });
  it.each(["", "3 days", "3d", "1", "h", ".h", "1hh", "1h 30m", "72H"])("%j is not a Go duration", (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });
});
