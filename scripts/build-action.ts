/**
 * Bundles the GitHub Action (src/action/index.ts) into dist/index.js: one
 * ES module with every dependency inside, runnable by the runner's plain
 * Node 24 (`runs.using: node24`), plus dist/licenses.txt with the licence of every package it bundles.
 * The output is a pure function of the sources and the lockfile (no
 * timestamps, no absolute paths), so test/action/dist.test.ts can rebuild
 * it and demand it match the committed dist/ byte for byte.
 *
 *   node scripts/build-action.ts [OUTDIR]   (default: dist)
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

export const ACTION_FILES = ["index.js", "licenses.txt"] as const;

/** The package directory (`node_modules/@scope/name`) a bundled input file belongs to. */
function packageDir(input: string): string | undefined {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m?.[1];
}

/** Every bundled package's name, version, licence and licence text, sorted, for dist/licenses.txt. */
function licenses(meta: Metafile): string {
  const dirs = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const dir = packageDir(input);
    if (dir) dirs.add(dir);
  }
  const entries = [...dirs].map((dir) => {
    const abs = resolve(ROOT, dir);
    const pkg = JSON.parse(readFileSync(join(abs, "package.json"), "utf8")) as {
      name?: string;
      version?: string;
      license?: string;
    };
    const file = readdirSync(abs)
      .sort()
      .find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
    const text = file ? readFileSync(join(abs, file), "utf8").trim() : "(no licence file in the package)";
    return { name: pkg.name ?? dir, version: pkg.version ?? "", license: pkg.license ?? "UNKNOWN", text };
  });
  // Several copies of one package version (nested node_modules) need one entry.
  const unique = new Map(entries.map((e) => [`${e.name}@${e.version}`, e]));
  return [...unique.values()]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1))
    .map((e) => `${e.name}@${e.version} (${e.license})\n\n${e.text}\n`)
    .join(`\n${"-".repeat(72)}\n\n`);
}

export async function buildAction(outdir: string): Promise<void> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ["src/action/index.ts"],
    outfile: resolve(outdir, "index.js"),
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    // CommonJS dependencies call require() for Node built-ins; an ES module has none of its own.
    banner: {
      js: 'import { createRequire as __shipmateCreateRequire } from "node:module";\nconst require = __shipmateCreateRequire(import.meta.url);',
    },
    legalComments: "none",
    metafile: true,
    minifySyntax: true,
    minifyWhitespace: true,
    keepNames: false,
    sourcemap: false,
    charset: "utf8",
    logLevel: "warning",
  });
  writeFileSync(resolve(outdir, "licenses.txt"), licenses(result.metafile));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outdir = resolve(process.argv[2] ?? resolve(ROOT, "dist"));
  await buildAction(outdir);
  console.log(`built ${ACTION_FILES.map((f) => resolve(outdir, f)).join(", ")}`);
}
