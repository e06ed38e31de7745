/**
 * Writes the field-by-field tables of docs/flux-compat.md from the agent's
 * field tables (src/agent/fields/tables.ts); the prose around them is kept.
 *   node scripts/gen-flux-compat.ts          # rewrite the generated block
 *   node scripts/gen-flux-compat.ts --check  # exit 1 if it is stale
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { COMPAT_DOC_FILE, withFieldSections } from "../src/agent/fields/compat-doc.ts";

const target = fileURLToPath(new URL(`../${COMPAT_DOC_FILE}`, import.meta.url));
const current = await readFile(target, "utf8").catch(() => "# Flux compatibility\n");
const next = withFieldSections(current);
if (process.argv.includes("--check")) {
  if (next !== current) {
    console.error(`${COMPAT_DOC_FILE} is stale: run node scripts/gen-flux-compat.ts`);
    process.exit(1);
  }
  console.log(`${COMPAT_DOC_FILE} is current`);
} else {
  await writeFile(target, next);
  console.log(`wrote ${COMPAT_DOC_FILE}`);
}
