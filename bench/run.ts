/**
 * `npm run bench` runs every benchmark in bench/ one after another;
 * `npm run bench -- scan policy` runs the named ones. Each prints its own
 * figures and the machine; record them in bench/RESULTS.md.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";

const dir = new URL(".", import.meta.url).pathname;
const all = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts" && !f.startsWith("_"))
  .map((f) => basename(f, ".ts"))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`bench: no benchmark named ${unknown.join(", ")} (have: ${all.join(", ")})`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted.length > 0 ? wanted : all) {
  console.log(`\n== bench ${name}`);
  const r = spawnSync(process.execPath, [join(dir, `${name}.ts`)], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exitCode = failed > 0 ? 1 : 0;
