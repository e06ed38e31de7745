/**
 * Writes the editor JSON Schema of the native policy format:
 *   node scripts/gen-schema.ts          # write policies/schema/shipmate-policy.schema.json
 *   node scripts/gen-schema.ts --check  # exit 1 if the committed file is stale
 * The file is formatted with the repository's formatter (biome) after writing,
 * so the check compares content, not layout.
 */
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { POLICY_SCHEMA_FILE, policyJsonSchema } from "../src/config/json-schema.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const target = `${root}${POLICY_SCHEMA_FILE}`;
const text = policyJsonSchema();
if (process.argv.includes("--check")) {
  const current = await readFile(target, "utf8").catch(() => "null");
  if (!isDeepStrictEqual(JSON.parse(current), JSON.parse(text))) {
    console.error(`${POLICY_SCHEMA_FILE} is stale: run node scripts/gen-schema.ts`);
    process.exit(1);
  }
  console.log(`${POLICY_SCHEMA_FILE} is current`);
} else {
  await writeFile(target, text);
  execFileSync(`${root}node_modules/.bin/biome`, ["format", "--write", target], { stdio: "ignore" });
  console.log(`wrote ${POLICY_SCHEMA_FILE}`);
}
