/**
 * Scaffold benchmark: `shipmate init --layout monorepo` with 20 environments
 * × 200 apps (target < 5 s), then `shipmate validate` on the result, beside
 * the floor validate cannot go under: kustomize building the same roots with
 * nothing else. Run: `npm run bench -- scaffold` (or `node bench/scaffold.ts
 * [envs] [apps]`). Needs kustomize (scripts/provision/30-kustomize.sh) or kubectl.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { add, init } from "../src/scaffold/scaffold.ts";
import { findKustomize } from "../src/validate/kustomize.ts";
import { validateTree } from "../src/validate/validate.ts";

const ENVS = Number(process.argv[2] ?? 20);
const APPS = Number(process.argv[3] ?? 200);
const run = promisify(execFile);
const cache = process.env.SHIPMATE_CACHE ?? join(os.homedir(), ".cache", "shipmate");
const env = { ...process.env, PATH: `${join(cache, "bin")}${":"}${process.env.PATH ?? ""}` };

const envs = Array.from({ length: ENVS }, (_, i) =>
  i === 0 ? "staging" : i === ENVS - 1 ? "production" : `env${i}`,
);
const apps = Array.from({ length: APPS }, (_, i) => `app${String(i).padStart(3, "0")}`);
const work = mkdtempSync(join(os.tmpdir(), "shipmate-bench-scaffold-"));

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  console.log(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${os.platform()}`,
  );
  console.log(`fleet: monorepo, ${ENVS} environments × ${APPS} apps`);

  const noGit: number[] = [];
  let files = 0;
  for (let i = 0; i < 3; i++) {
    const [r, s] = await timed(() =>
      init({ layout: "monorepo", out: join(work, `fleet-nogit-${i}`), envs, apps, noGit: true }),
    );
    files = r.files.length;
    noGit.push(s);
  }
  const out = join(work, "fleet");
  const [, withGit] = await timed(() => init({ layout: "monorepo", out, envs, apps, env }));
  console.log(`scaffold: ${files} files`);
  console.log(
    `  render + write (no git), median of 3: ${median(noGit).toFixed(2)} s  [${noGit.map((s) => s.toFixed(2)).join(", ")}]`,
  );
  console.log(`  render + write + git init + first commit: ${withGit.toFixed(2)} s`);
  console.log(`  target < 5 s: ${median(noGit) < 5 && withGit < 5 ? "met" : "NOT met"}`);

  // Growing the fleet: re-render everything, compare 9,000 files with disk and the record, write what changed.
  const [added, addSeconds] = await timed(() => add("app", "newcomer", { repo: out, env }));
  const written = added.changes.filter((c) => c.action === "added" || c.action === "updated").length;
  console.log(
    `add app: ${addSeconds.toFixed(2)} s (${written} files written, ${added.changes.length} compared)`,
  );

  for (const which of ["standalone", "kubectl"] as const) {
    const path =
      which === "kubectl"
        ? (process.env.PATH ?? "")
            .split(":")
            .filter((d) => !d.includes("shipmate/bin"))
            .join(":")
        : env.PATH;
    const kustomize = await findKustomize({ ...env, PATH: path }).catch(() => undefined);
    if (!kustomize || (which === "standalone" && !kustomize.name.startsWith("kustomize"))) {
      console.log(`validate with ${which} kustomize: not available here`);
      continue;
    }
    const [report, seconds] = await timed(() => validateTree(out, { kustomize }));
    const s = report.stats;
    console.log(`validate (${kustomize.name}): ${seconds.toFixed(2)} s, ${report.problems.length} problems`);
    console.log(
      `  ${s.yamlFiles} YAML files, ${s.kustomizations} kustomizations, ${s.builds} builds, ${s.objects} objects schema-checked, ${s.markers} markers`,
    );
    // The floor: the same root builds, kustomize alone, same parallelism.
    const roots = [
      ...envs.map((e) => `apps/${e}`),
      ...envs.map((e) => `clusters/${e}`),
      ...envs.flatMap((e) => [`infrastructure/${e}/controllers`, `infrastructure/${e}/configs`]),
    ];
    const [, floor] = await timed(async () => {
      let next = 0;
      const limit = Math.max(2, os.availableParallelism());
      await Promise.all(
        Array.from({ length: limit }, async () => {
          while (next < roots.length) {
            const r = await kustomize.build(join(out, roots[next++]!));
            if (!r.ok) throw new Error(r.error);
          }
        }),
      );
    });
    console.log(
      `  floor, ${roots.length} kustomize builds alone: ${floor.toFixed(2)} s (validate adds ${(seconds - floor).toFixed(2)} s)`,
    );
  }
  const { stdout } = await run("git", ["-C", out, "rev-list", "--count", "HEAD"]);
  console.log(`git: ${stdout.trim()} commit in ${out.replace(work, "<tmp>")}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
