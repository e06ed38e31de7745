/**
 * Webhook-to-commit latency of `shipmate serve`: the real docker-registry
 * sends its notifications to a serve process (the CLI, as users run it);
 * each pushed tag is timed from the start of the push until the commit is on
 * the fleet repository's remote (git over smart HTTP). Then a burst of tags
 * pushed back to back: how long until the last one is committed, and how
 * many refresh runs the burst cost (requests arriving during a run coalesce).
 *
 *   node bench/webhook.ts [PUSHES] [BURST]     (default 10 20)
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { deployment, fluxPolicy } from "../test/helpers/fleet.ts";
import { startGitHttpServer, tempDir } from "../test/infra/git.ts";
import { seedTags, startRegistry } from "../test/infra/registry.ts";
import { freePort, spawnServe } from "../test/webhooks/helpers.ts";

const run = promisify(execFile);
const pushes = Number(process.argv[2] ?? 10);
const burst = Number(process.argv[3] ?? 20);

const secret = randomBytes(16).toString("hex");
const token = randomBytes(12).toString("hex");
const port = await freePort();
const registry = await startRegistry({
  notifications: {
    endpoints: [
      {
        name: "shipmate",
        url: `http://127.0.0.1:${port}/hooks/registry`,
        headers: { Authorization: [`Bearer ${secret}`] },
        timeout: "2s",
        threshold: 3,
        backoff: "200ms",
        ignoredmediatypes: ["application/octet-stream"],
      },
    ],
  },
});
const image = `${registry.host}/team/app`;
await seedTags(registry, "team/app", ["1.0.0"]);
const git = await startGitHttpServer({ user: "x-access-token", password: token });
const url = git.createRepo("fleet", {
  "apps/staging/app/deployment.yaml": deployment("app", "staging", image, "1.0.0", "app"),
});
const bare = join(git.root, "fleet.git");
const policies = tempDir("shipmate-bench-policies-");
mkdirSync(policies, { recursive: true });
writeFileSync(join(policies, "app.yaml"), fluxPolicy("app", image, ">=1.0.0"));
const cache = tempDir("shipmate-bench-cache-");
const serve = spawnServe(
  ["--repo", url, "--policies", policies, "--listen", `127.0.0.1:${port}`, "--no-cache"],
  {
    SHIPMATE_WEBHOOK_SECRET: secret,
    SHIPMATE_GIT_TOKEN: token,
    XDG_CACHE_HOME: cache,
  },
);
await serve.waitFor((l) => l.msg === "listening for registry webhooks");

const committed = async (tag: string) =>
  (await run("git", ["show", `main:apps/staging/app/deployment.yaml`], { cwd: bare })).stdout.includes(
    `:${tag} #`,
  );

async function until(tag: string, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await committed(tag))) {
    if (Date.now() > deadline) throw new Error(`${tag} was not committed within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const latencies: number[] = [];
try {
  for (let i = 1; i <= pushes; i++) {
    const tag = `1.${i}.0`;
    const started = performance.now();
    await seedTags(registry, "team/app", [tag]);
    await until(tag, 30_000);
    latencies.push(performance.now() - started);
    // Let the run finish its log line before the next push, so pushes are timed one at a time.
    await new Promise((r) => setTimeout(r, 300));
  }
  const runsBefore = serve.lines.filter((l) => /^refreshed/.test(l.msg)).length;
  const tags = Array.from({ length: burst }, (_, i) => `2.${i}.0`);
  const started = performance.now();
  for (const tag of tags) await seedTags(registry, "team/app", [tag]);
  const pushedIn = performance.now() - started;
  await until(tags.at(-1)!, 60_000);
  const burstMs = performance.now() - started;
  await new Promise((r) => setTimeout(r, 1500));
  const runs = serve.lines.filter((l) => /^refreshed/.test(l.msg)).length - runsBefore;
  const commits = Number((await run("git", ["rev-list", "--count", "main"], { cwd: bare })).stdout.trim());

  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const ms = (v: number) => `${Math.round(v)} ms`;
  console.log(`single pushes: ${pushes}; tag push → commit on the remote`);
  console.log(
    `  median ${ms(at(0.5))}, p90 ${ms(at(0.9))}, min ${ms(sorted[0]!)}, max ${ms(sorted.at(-1)!)}`,
  );
  console.log(`burst: ${burst} tags pushed back to back in ${ms(pushedIn)}`);
  console.log(
    `  last tag committed ${ms(burstMs)} after the first push; ${runs} refresh runs; ${commits} commits on main in total`,
  );
  console.log(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}, load ${os.loadavg()[0]?.toFixed(1)}`,
  );
} finally {
  await serve.stop();
  await registry.stop();
  await git.close();
  rmSync(policies, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
}
