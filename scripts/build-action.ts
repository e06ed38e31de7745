/**
 * Bundles the GitHub Action (src/action/index.ts) into dist/index.js: one
 * ES module with every dependency inside, runnable by the runner's plain
 * Node 24 (`runs.using: node24`), plus dist/licenses.txt with the licence of every package it bundles.
 * The output is a pure function of the sources and the lockfile (no
 * timestamps, no absolute paths), so test/action/dist.test.ts can rebuild
 * it and demand it match the committed dist/ byte for byte.
 *
 *   node scripts/build-action.ts [OUTDIR]            (default: dist)
 *   node scripts/build-action.ts [OUTDIR] --rev REV  (the sources of a commit, not the working tree:
 *                                                     dist/ for exactly what is committed)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile, type Plugin } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

export const ACTION_FILES = ["index.js", "update-worker.js", "licenses.txt"] as const;

/**
 * Modules the engine starts as worker threads (`new Worker(new URL("./x.ts",
 * import.meta.url))`): in the bundle they are entry points of their own, and
 * the URL names the bundled file. A run-time module URL not listed here
 * fails the build instead of failing in a user's workflow.
 */
const WORKERS: Record<string, { entry: string; out: string }> = {
  "src/update/pipeline.ts ./write-worker.ts": { entry: "src/update/write-worker.ts", out: "update-worker" },
};

const MODULE_URL = /new URL\(\s*"(\.{1,2}\/[^"]+\.ts)"\s*,\s*import\.meta\.url\s*\)/g;

function workerUrls(root: string): Plugin {
  return {
    name: "shipmate-worker-urls",
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const file = relative(root, args.path).split(sep).join("/");
        if (!file.startsWith("src/")) return undefined;
        const text = await readFile(args.path, "utf8");
        if (!MODULE_URL.test(text)) return undefined;
        const contents = text.replace(MODULE_URL, (_m, url: string) => {
          const worker = WORKERS[`${file} ${url}`];
          if (!worker)
            throw new Error(`${file} loads ${url} at run time: add it to WORKERS in scripts/build-action.ts`);
          return `new URL("./${worker.out}.js", import.meta.url)`;
        });
        return { contents, loader: "ts" };
      });
    },
  };
}

/** The package directory (`node_modules/@scope/name`) a bundled input file belongs to. */
function packageDir(input: string): string | undefined {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m?.[1];
}

/** Every bundled package's name, version, licence and licence text, sorted, for dist/licenses.txt. */
function licenses(meta: Metafile, root: string): string {
  const dirs = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const dir = packageDir(input);
    if (dir) dirs.add(dir);
  }
  const entries = [...dirs].map((dir) => {
    const abs = resolve(root, dir);
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

export async function buildAction(outdir: string, root: string = ROOT): Promise<void> {
  const result = await build({
    absWorkingDir: root,
    // A snapshot links the checkout's node_modules: paths must read the same as in the checkout.
    preserveSymlinks: true,
    entryPoints: [
      { in: "src/action/index.ts", out: "index" },
      ...Object.values(WORKERS).map((w) => ({ in: w.entry, out: w.out })),
    ],
    outdir: resolve(outdir),
    plugins: [workerUrls(root)],
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
  writeFileSync(resolve(outdir, "licenses.txt"), licenses(result.metafile, root));
}

/** Builds from the tree of commit `rev` (extracted beside this checkout's node_modules). */
export async function buildActionFromRevision(outdir: string, rev: string): Promise<void> {
  const snapshot = mkdtempSync(join(tmpdir(), "shipmate-action-src-"));
  try {
    const archive = execFileSync("git", ["archive", "--format=tar", rev], { cwd: ROOT, maxBuffer: 1 << 30 });
    execFileSync("tar", ["-x", "-C", snapshot], { input: archive });
    symlinkSync(resolve(ROOT, "node_modules"), join(snapshot, "node_modules"));
    await buildAction(outdir, snapshot);
  } finally {
    rmSync(snapshot, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--rev");
  const rev = at === -1 ? undefined : args.splice(at, 2)[1];
  const outdir = resolve(args[0] ?? resolve(ROOT, "dist"));
  if (rev) await buildActionFromRevision(outdir, rev);
  else await buildAction(outdir);
  console.log(`built ${ACTION_FILES.map((f) => resolve(outdir, f)).join(", ")}`);
}
