/**
 * What the benchmarks that run Flux's own controllers beside the agent share:
 * the controllers' module folders (for their CRDs), requests to the test API
 * server, its write counters, /proc figures and child processes with logs.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { freePort, type KubeCluster } from "../test/infra/kube.ts";

/** kustomize- and source-controller: the newest release the module proxy here serves that local Go builds. */
export const FLUX_VERSION = "v1.9.6";

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function moduleDir(mod: string, version = FLUX_VERSION): string {
  const out = execFileSync("go", ["mod", "download", "-json", `${mod}@${version}`], {
    encoding: "utf8",
    env: { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" },
  });
  return (JSON.parse(out) as { Dir: string }).Dir;
}

export function api(
  kube: KubeCluster,
  method: string,
  path: string,
  body?: unknown,
  type = "application/json",
) {
  return new Promise<{ code: number; body: string }>((resolve, reject) => {
    const req = request(
      `${kube.server}${path}`,
      {
        method,
        ca: kube.caPem,
        headers: {
          authorization: `Bearer ${kube.adminToken}`,
          ...(body === undefined ? {} : { "content-type": type }),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ code: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Write requests by "VERB resource" from the API server's own counters (dry runs excluded). */
export async function writesBy(kube: KubeCluster): Promise<Map<string, number>> {
  const { body } = await api(kube, "GET", "/metrics");
  const by = new Map<string, number>();
  for (const line of body.split("\n")) {
    if (!line.startsWith("apiserver_request_total{") || !/dry_run=""/.test(line)) continue;
    const verb = /verb="(APPLY|PATCH|POST|PUT|DELETE|DELETECOLLECTION|CREATE|UPDATE)"/.exec(line)?.[1];
    if (!verb) continue;
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? "";
    // Both controllers run without leader election: a lease write is the API
    // server's own identity heartbeat (every 10 s), not either controller's.
    if (resource === "leases") continue;
    const sub = /subresource="([^"]*)"/.exec(line)?.[1];
    const key = `${verb} ${resource}${sub ? `/${sub}` : ""}`;
    by.set(key, (by.get(key) ?? 0) + Number(line.split(" ").pop()));
  }
  return by;
}

export const total = (by: Map<string, number>): number => [...by.values()].reduce((a, b) => a + b, 0);

/** With BENCH_TRACE_WRITES=1, which writes a no-op made, by verb and resource. */
export function traceWrites(label: string, before: Map<string, number>, after: Map<string, number>): void {
  if (!process.env.BENCH_TRACE_WRITES) return;
  const diff = [...after]
    .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
    .filter(([, d]) => d > 0)
    .map(([k, d]) => `${k} ×${d}`);
  console.log(`${label} writes: ${diff.join(", ") || "none"}`);
}

/** CPU seconds (user + system) and peak RSS of a running process, from /proc. */
export function usage(pid: number): { cpuS: number; peakMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { cpuS: ticks / 100, peakMb: Math.round(Number(hwm?.[1] ?? 0) / 1024) };
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 300_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, log: string): ChildProcess {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const keep = (d: Buffer) => {
    text = (text + d.toString()).slice(-20_000);
    writeFileSync(log, text);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return child;
}

/**
 * Starts Flux's source-controller (artifacts served on loopback) and the
 * other controllers given by binary path, each outside the cluster with the
 * test API server's kubeconfig, no leader election, logs in `work`.
 */
export async function startFluxControllers(
  kube: KubeCluster,
  work: string,
  source: string,
  others: Record<string, string>,
): Promise<ChildProcess[]> {
  const env = { KUBECONFIG: kube.kubeconfig, RUNTIME_NAMESPACE: "flux-system" };
  const common = async () => [
    `--metrics-addr=127.0.0.1:${await freePort()}`,
    `--health-addr=127.0.0.1:${await freePort()}`,
    "--enable-leader-election=false",
    "--watch-all-namespaces=true",
    "--log-level=error",
  ];
  const storage = join(work, "flux-storage");
  mkdirSync(storage, { recursive: true });
  const port = await freePort();
  const children = [
    startProcess(
      source,
      [
        ...(await common()),
        `--storage-path=${storage}`,
        `--storage-addr=127.0.0.1:${port}`,
        `--storage-adv-addr=127.0.0.1:${port}`,
      ],
      env,
      join(work, "source-controller.log"),
    ),
  ];
  for (const [name, bin] of Object.entries(others))
    children.push(startProcess(bin, await common(), env, join(work, `${name}.log`)));
  return children;
}
