/**
 * Bundles the dashboard's browser code (src/dashboard/client/main.ts, with
 * Preact and the shared components of src/dashboard/view.ts) into
 * src/dashboard/assets/dashboard.js, which is committed and served by the
 * dashboard itself (never a CDN). Type-checks the client against the DOM
 * first. test/dashboard/assets.test.ts checks the committed file is current.
 *
 *   node scripts/build-dashboard.ts [--check]
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const BUNDLE = join(root, "src/dashboard/assets/dashboard.js");

export async function bundle(): Promise<string> {
  const out = await build({
    entryPoints: [join(root, "src/dashboard/client/main.ts")],
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    minify: true,
    legalComments: "eof",
    write: false,
    logLevel: "silent",
  });
  return out.outputFiles[0]!.text;
}

if (import.meta.main) {
  execFileSync(join(root, "node_modules/.bin/tsc"), ["--noEmit", "-p", join(root, "src/dashboard/client")], {
    stdio: "inherit",
  });
  const text = await bundle();
  if (process.argv.includes("--check")) {
    if (readFileSync(BUNDLE, "utf8") !== text) {
      console.error(`${BUNDLE} is stale: run node scripts/build-dashboard.ts`);
      process.exit(1);
    }
  } else writeFileSync(BUNDLE, text);
  console.log(`${BUNDLE}: ${text.length} bytes`);
}
