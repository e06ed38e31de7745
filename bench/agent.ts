/**
 * `node bench/agent.ts [objects]`: the sync agent beside `kubectl apply
 * --server-side` on one real kube-apiserver (started here, 127.0.0.1).
 *
 * 1. Initial apply of N objects (default 1,000): `shipmate agent --once`
 *    (fetch + kustomize render + validated apply) vs `kubectl apply
 *    --server-side -f` of the same rendered objects in other namespaces.
 * 2. No-op reconcile of the same objects, three times each, median.
 * 3. Write requests: counted by the agent and, independently, from the API
 *    server's own apiserver_request_total (dry runs excluded).
 * 4. Peak RSS of both processes (GNU time).
 * Prints the figures and the machine; a benchmark, never a test.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { findBinary, startKube } from "../test/infra/kube.ts";
import { benchObjects } from "./_objects.ts";

const N = Number(process.argv[2] ?? 1000);
const CLI = join(import.meta.dirname, "../src/cli/index.ts");
const TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined;

const yamlOf = (objs: object[]) => objs.map((o) => stringify(o)).join("---\n");

interface Run {
  seconds: number;
  maxRssMb: number | undefined;
  stdout: string;
}

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const timeFile = join(tmpdir(), `bench-time-${process.pid}`);
  const [bin, argv] = TIME ? [TIME, ["-f", "%M", "-o", timeFile, cmd, ...args]] : [cmd, args];
  const start = performance.now();
  const r = spawnSync(bin, argv, { encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 });
  const seconds = (performance.now() - start) / 1000;
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.slice(0, 3).join(" ")} failed (${r.status}): ${r.stderr.slice(-500)}`);
  let maxRssMb: number | undefined;
  if (TIME) {
    const kb = Number(execFileSync("tail", ["-n1", timeFile], { encoding: "utf8" }).trim());
    maxRssMb = Math.round(kb / 1024);
    rmSync(timeFile, { force: true });
  }
  return { seconds, maxRssMb, stdout: r.stdout };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function main() {
  const kube = await startKube({ name: "bench" });
  const work = mkdtempSync(join(tmpdir(), "shipmate-bench-agent-"));
  try {
    const apiserverWrites = () =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          `${kube.server}/metrics`,
          { ca: kube.caPem, headers: { authorization: `Bearer ${kube.adminToken}` } },
          (res) => {
            let text = "";
            res.on("data", (d) => (text += d));
            res.on("end", () => {
              let n = 0;
              for (const line of text.split("\n")) {
                if (!line.startsWith("apiserver_request_total{")) continue;
                if (!/dry_run=""/.test(line)) continue;
                if (!/verb="(APPLY|PATCH|POST|PUT|DELETE|DELETECOLLECTION|CREATE|UPDATE)"/.test(line))
                  continue;
                n += Number(line.split(" ").pop());
              }
              resolve(n);
            });
          },
        );
        req.on("error", reject);
        req.end();
      });

    // Fleet repository holding the agent's objects as plain manifests.
    const repoDir = join(work, "fleet");
    const bare = join(work, "fleet.git");
    mkdirSync(join(repoDir, "clusters/bench"), { recursive: true });
    mkdirSync(join(repoDir, "clusters/warmup"), { recursive: true });
    writeFileSync(join(repoDir, "clusters/bench/objects.yaml"), yamlOf(benchObjects("bench-agent", N)));
    writeFileSync(
      join(repoDir, "clusters/warmup/ns.yaml"),
      yamlOf([{ apiVersion: "v1", kind: "Namespace", metadata: { name: "bench-warmup" } }]),
    );
    const git = (...a: string[]) =>
      execFileSync("git", a, {
        cwd: repoDir,
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: "b",
          GIT_AUTHOR_EMAIL: "b@b",
          GIT_COMMITTER_NAME: "b",
          GIT_COMMITTER_EMAIL: "b@b",
        },
      });
    execFileSync("git", ["init", "-q", "--bare", "-b", "main", bare]);
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("commit", "-q", "-m", "bench");
    git("push", "-q", bare, "HEAD:refs/heads/main");
    const kubectlFile = join(work, "kubectl.yaml");
    writeFileSync(kubectlFile, yamlOf(benchObjects("bench-kubectl", N)));

    const agentArgs = (path: string, name: string) => [
      CLI,
      "agent",
      "--once",
      "--json",
      "--repo",
      `file://${bare}`,
      "--path",
      path,
      "--name",
      name,
      "--kubeconfig",
      kube.kubeconfig,
      "--workdir",
      join(work, `agent-${name}`),
      "--log-level",
      "warn",
    ];
    const kubectl = ["--kubeconfig", kube.kubeconfig, "apply", "--server-side", "-f", kubectlFile];
    const kubectlEnv = { ...process.env, HOME: join(work, "home") };

    // Warm-ups: the agent installs its CRDs, kubectl fills its discovery cache.
    timed(process.execPath, agentArgs("clusters/warmup", "warmup"));
    timed("kubectl", ["--kubeconfig", kube.kubeconfig, "get", "namespaces"], kubectlEnv);

    let w0 = await apiserverWrites();
    const agentInitial = timed(process.execPath, agentArgs("clusters/bench", "bench"));
    const agentInitialWrites = (await apiserverWrites()) - w0;
    const agentInitialSummary = JSON.parse(agentInitial.stdout) as {
      writes: number;
      reconciled: { ready: boolean; inventory: number }[];
    };
    if (!agentInitialSummary.reconciled[0]?.ready)
      throw new Error(`agent initial apply not ready: ${agentInitial.stdout}`);

    w0 = await apiserverWrites();
    const kubectlInitial = timed("kubectl", kubectl, kubectlEnv);
    const kubectlInitialWrites = (await apiserverWrites()) - w0;

    const agentNoop: Run[] = [];
    const kubectlNoop: Run[] = [];
    const agentNoopWrites: number[] = [];
    const agentNoopCounted: number[] = [];
    const kubectlNoopWrites: number[] = [];
    for (let i = 0; i < 3; i++) {
      w0 = await apiserverWrites();
      const a = timed(process.execPath, agentArgs("clusters/bench", "bench"));
      agentNoopWrites.push((await apiserverWrites()) - w0);
      agentNoopCounted.push((JSON.parse(a.stdout) as { writes: number }).writes);
      agentNoop.push(a);
      w0 = await apiserverWrites();
      kubectlNoop.push(timed("kubectl", kubectl, kubectlEnv));
      kubectlNoopWrites.push((await apiserverWrites()) - w0);
    }

    const kubectlVersion = execFileSync("kubectl", ["version", "--client", "-o", "json"], {
      encoding: "utf8",
    });
    const apiserverVersion = execFileSync(findBinary("kube-apiserver"), ["--version"], {
      encoding: "utf8",
    }).trim();
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}, ${apiserverVersion}, kubectl ${(JSON.parse(kubectlVersion) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion}`;
    const f = (s: number) => `${s.toFixed(2)} s`;
    const mb = (r: Run) => (r.maxRssMb === undefined ? "-" : `${r.maxRssMb} MB`);
    const aNoop = median(agentNoop.map((r) => r.seconds));
    const kNoop = median(kubectlNoop.map((r) => r.seconds));
    console.log(`machine: ${machine}`);
    console.log(`objects: ${N} (${agentInitialSummary.reconciled[0]?.inventory} in the agent's inventory)\n`);
    console.log("| | wall time | write requests (API server count) | peak RSS |");
    console.log("| --- | --- | --- | --- |");
    console.log(
      `| shipmate agent --once, initial apply | ${f(agentInitial.seconds)} | ${agentInitialWrites} (agent counted ${agentInitialSummary.writes}) | ${mb(agentInitial)} |`,
    );
    console.log(
      `| kubectl apply --server-side, initial | ${f(kubectlInitial.seconds)} | ${kubectlInitialWrites} | ${mb(kubectlInitial)} |`,
    );
    console.log(
      `| shipmate agent --once, no-op (median of 3) | ${f(aNoop)} | ${median(agentNoopWrites)} (agent counted ${median(agentNoopCounted)}) | ${Math.max(...agentNoop.map((r) => r.maxRssMb ?? 0))} MB |`,
    );
    console.log(
      `| kubectl apply --server-side, no-op (median of 3) | ${f(kNoop)} | ${median(kubectlNoopWrites)} | ${Math.max(...kubectlNoop.map((r) => r.maxRssMb ?? 0))} MB |`,
    );
    console.log("");
    console.log(
      `initial apply: agent/kubectl = ${(agentInitial.seconds / kubectlInitial.seconds).toFixed(2)}× (target ≤ 1.0×)`,
    );
    console.log(
      `no-op: agent/kubectl = ${(aNoop / kNoop).toFixed(2)}× (target ≤ 0.3×); agent write requests ${median(agentNoopWrites)} (target 0)`,
    );
    console.log(
      `no-op runs: agent ${agentNoop.map((r) => r.seconds.toFixed(2)).join(", ")} s; kubectl ${kubectlNoop.map((r) => r.seconds.toFixed(2)).join(", ")} s`,
    );
  } finally {
    await kube.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
