/**
 * The real Flagger controller (built from github.com/fluxcd/flagger by
 * scripts/provision/85-flagger.sh) run outside any cluster with a kubeconfig,
 * its CRDs from the same module, a Prometheus-compatible query endpoint on
 * 127.0.0.1 answering Flagger's queries with values the test chooses, and a
 * webhook endpoint for its load-test hooks.
 *
 * No kubelet or kube-controller-manager runs in the test cluster, so no pod
 * ever starts: `playDeploymentController` stands in for the Deployment
 * controller and kubelet, writing each Deployment's status as a finished
 * rollout (every replica updated, ready and available) whenever its
 * generation moves. Flagger reads exactly that status to decide a target is
 * ready; everything else it does (primary Deployment, Services, analysis,
 * promotion, rollback, status and events) is Flagger's own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { KubeClient } from "../../src/kube/client.ts";
import { findBinary } from "./kube.ts";

/** Keep in step with scripts/provision/flagger/go.mod. */
export const FLAGGER_VERSION = "v1.36.1";

export function flaggerCrdFile(): string {
  const cache =
    process.env.SHIPMATE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "shipmate");
  return join(cache, "gomod", `github.com/fluxcd/flagger@${FLAGGER_VERSION}`, "artifacts/flagger/crd.yaml");
}

/** Creates Flagger's CRDs and waits until Canaries are served. */
export async function installFlaggerCrds(client: KubeClient): Promise<void> {
  for (const doc of parseAllDocuments(readFileSync(flaggerCrdFile(), "utf8"))) {
    const crd = doc.toJS();
    if (!crd) continue;
    const res = await client.raw({
      method: "POST",
      path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      body: crd,
    });
    if (res.code !== 201) throw new Error(`Flagger CRD: ${res.code} ${JSON.stringify(res.body)}`);
  }
  for (
    let i = 0;
    (await client.raw({ method: "GET", path: "/apis/flagger.app/v1beta1/canaries" })).code !== 200;
    i++
  ) {
    if (i > 300) throw new Error("Flagger's CRDs not served after 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What the metrics endpoint answers for a query; a thrown Error becomes an HTTP 500 with its message. */
export type MetricAnswer = (query: string) => number;

export interface MetricsServer {
  url: string;
  /** Every query Flagger sent, in order. */
  queries: string[];
  close(): Promise<void>;
}

/** Prometheus' HTTP API (`GET /api/v1/query`), as much of it as Flagger's Prometheus provider reads. */
export async function startMetrics(answer: MetricAnswer): Promise<MetricsServer> {
  const queries: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const query = url.searchParams.get("query") ?? "";
    res.setHeader("content-type", "application/json");
    if (url.pathname !== "/api/v1/query") {
      res.statusCode = 404;
      res.end(JSON.stringify({ status: "error", errorType: "not_found", error: url.pathname }));
      return;
    }
    queries.push(query);
    try {
      const value = query === "vector(1)" ? 1 : answer(query);
      res.end(
        JSON.stringify({
          status: "success",
          data: { resultType: "vector", result: [{ metric: {}, value: [Date.now() / 1000, String(value)] }] },
        }),
      );
    } catch (err) {
      res.statusCode = 500;
      res.end(JSON.stringify({ status: "error", errorType: "execution", error: (err as Error).message }));
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    queries,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A webhook receiver (Flagger's load-test and gate hooks POST here): answers 200 and records each call. */
export async function startWebhooks(): Promise<{ url: string; calls: unknown[]; close(): Promise<void> }> {
  const calls: unknown[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      try {
        calls.push(JSON.parse(body));
      } catch {
        calls.push(body);
      }
      res.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
    calls,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

export interface FlaggerProcess {
  proc: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
}

/** Starts the Flagger binary with the kubernetes provider against the cluster of `kubeconfig`. */
export function startFlagger(kubeconfig: string, metricsUrl: string, namespace: string): FlaggerProcess {
  const proc = spawn(
    findBinary("flagger"),
    [
      `-kubeconfig=${kubeconfig}`,
      "-mesh-provider=kubernetes",
      `-metrics-server=${metricsUrl}`,
      `-namespace=${namespace}`,
      "-control-loop-interval=1s",
      "-enable-config-tracking=false",
      "-log-level=info",
      "-port=0",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const logs: string[] = [];
  const keep = (d: Buffer) => {
    logs.push(...d.toString().split("\n").filter(Boolean));
    if (logs.length > 400) logs.splice(0, logs.length - 400);
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  return {
    proc,
    logs,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/**
 * Stands in for kube-controller-manager's Deployment controller and the
 * kubelet (none runs here): every Deployment of `namespace` whose status lags
 * its spec is marked rolled out, all replicas ready. Returns a stop function.
 */
export function playDeploymentController(client: KubeClient, namespace: string): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      const list = await client.raw({
        method: "GET",
        path: `/apis/apps/v1/namespaces/${namespace}/deployments`,
      });
      const items =
        (
          list.body as {
            items?: {
              metadata: { name: string; generation: number };
              spec: { replicas?: number };
              status?: Record<string, unknown>;
            }[];
          }
        ).items ?? [];
      for (const d of items) {
        const want = d.spec.replicas ?? 1;
        const s = d.status ?? {};
        if (s.observedGeneration === d.metadata.generation && s.readyReplicas === want && s.replicas === want)
          continue;
        await client.raw({
          method: "PATCH",
          path: `/apis/apps/v1/namespaces/${namespace}/deployments/${d.metadata.name}/status`,
          contentType: "application/merge-patch+json",
          body: {
            status: {
              observedGeneration: d.metadata.generation,
              replicas: want,
              updatedReplicas: want,
              readyReplicas: want,
              availableReplicas: want,
              conditions: [
                {
                  type: "Available",
                  status: "True",
                  reason: "MinimumReplicasAvailable",
                  message: "stand-in",
                },
                {
                  type: "Progressing",
                  status: "True",
                  reason: "NewReplicaSetAvailable",
                  message: "stand-in",
                },
              ],
            },
          },
        });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return async () => {
    running = false;
    await loop.catch(() => {});
  };
}
