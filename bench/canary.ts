/**
 * Progressive delivery costs, on the real kube-apiserver (scripts/provision/40-kube.sh):
 *
 * 1. The canary gate for 200 promoted apps (200 Canaries, Succeeded, in 10
 *    namespaces): wall time and API requests of one evaluation (the gate
 *    reads no forge: 0 forge requests).
 * 2. Failed → rollback request: the real Flagger (85-flagger.sh) fails a
 *    canary on a metric below its threshold; `shipmate rollback --watch
 *    --interval 1s` runs as a process against a real Gitea; the time from the
 *    moment the Canary is seen Failed (polled every 100 ms) to the moment the
 *    request is listed on Gitea (polled every 100 ms).
 *
 *   node bench/canary.ts [apps=200]
 */
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { KubeClient } from "../src/kube/client.ts";
import { declaredCanaries, readCanaries } from "../src/promote/canary.ts";
import { evaluateGates } from "../src/promote/gates.ts";
import type { EnvTree } from "../src/promote/plan.ts";
import { patchObject, waitFor } from "../test/agent/helpers.ts";
import { TestClone } from "../test/forge/helpers.ts";
import {
  installFlaggerCrds,
  playDeploymentController,
  startFlagger,
  startMetrics,
} from "../test/infra/flagger.ts";
import { startGitea } from "../test/infra/gitea.ts";
import { startKube } from "../test/infra/kube.ts";
import { machine } from "./_lib.ts";

const APPS = Number(process.argv[2] ?? 200);
const NAMESPACES = 10;
const kube = await startKube({ name: "bench-canary" });
const client = new KubeClient(kube.kubeConfig());
const post = async (path: string, body: unknown) => {
  const r = await client.raw({ method: "POST", path, body });
  if (r.code !== 201) throw new Error(`POST ${path}: ${r.code} ${JSON.stringify(r.body)}`);
};
const deployment = (name: string, ns: string, image: string) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name, namespace: ns },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name, image, ports: [{ name: "http", containerPort: 8080 }] }] },
    },
  },
});
const canaryYaml = (
  name: string,
  ns: string,
  interval = "1m",
  threshold = 5,
) => `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  provider: kubernetes
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: ${name}
  service:
    port: 80
    targetPort: http
  analysis:
    interval: ${interval}
    threshold: ${threshold}
    iterations: 1
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
`;

try {
  await installFlaggerCrds(client);
  // --- 1. the canary gate for APPS apps -----------------------------------------------------
  const files: { path: string; content: string }[] = [];
  for (let n = 0; n < NAMESPACES; n++)
    await post("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: `team-${n}` },
    });
  for (let i = 0; i < APPS; i++) {
    const ns = `team-${i % NAMESPACES}`;
    const name = `app-${i}`;
    await post(
      `/apis/apps/v1/namespaces/${ns}/deployments`,
      deployment(name, ns, `registry.example/${name}:1.0.0`),
    );
    const yaml = canaryYaml(name, ns);
    const { parse } = await import("yaml");
    await post(`/apis/flagger.app/v1beta1/namespaces/${ns}/canaries`, parse(yaml));
    await patchObject(
      client,
      `/apis/flagger.app/v1beta1/namespaces/${ns}/canaries/${name}/status`,
      {
        status: {
          phase: "Succeeded",
          failedChecks: 0,
          canaryWeight: 0,
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        },
      },
      { fieldManager: "flagger" },
    );
    files.push({ path: `apps/production/${name}/canary.yaml`, content: yaml });
  }
  const tree: EnvTree = { name: "production", path: "apps/production", files };
  const apps = Array.from({ length: APPS }, (_, i) => `app-${i}`);
  const rounds: { ms: number; reads: number; state: string }[] = [];
  for (let r = 0; r < 3; r++) {
    const counting = new KubeClient(kube.kubeConfig());
    const t0 = performance.now();
    const canaries = await readCanaries(counting, declaredCanaries(tree, apps));
    const [v] = evaluateGates(
      { canary: true },
      { from: "staging", to: "production", revision: "0".repeat(40), canaries, now: new Date() },
    );
    rounds.push({ ms: performance.now() - t0, reads: counting.counts.reads, state: v?.state ?? "?" });
    counting.close();
  }

  // --- 2. Failed → rollback request ----------------------------------------------------------
  const gitea = await startGitea();
  const metrics = await startMetrics(() => 50);
  const repo = await gitea.createRepo("fleet");
  const clone = await TestClone.clone(repo.authedCloneUrl);
  const commit = async (f: Record<string, string>) => {
    for (const [p, c] of Object.entries(f)) {
      await mkdir(dirname(join(clone.dir, p)), { recursive: true });
      await writeFile(join(clone.dir, p), c);
    }
    await clone.git("add", "-A");
    await clone.git("commit", "-q", "-m", "change");
    await clone.git("push", "-q", "origin", "HEAD:refs/heads/main");
  };
  const overlay = (tag: string) =>
    `resources:\n  - ../../base/web\n  - canary.yaml\nimages:\n  - name: registry.example/web\n    newTag: "${tag}"\n`;
  const fleet = `apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata:
  name: bench
spec:
  environments:
    - name: production
      path: apps/production
      mode: pull-request
`;
  const dep = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: registry.example/web:0.0.0
          ports:
            - name: http
              containerPort: 8080
`;
  await commit({
    "shipmate.yaml": fleet,
    "apps/production/web/kustomization.yaml": overlay("1.0.0"),
    "apps/base/web/kustomization.yaml": "resources:\n  - deployment.yaml\n",
    "apps/base/web/deployment.yaml": dep,
    "apps/production/web/canary.yaml": canaryYaml("web", "shop", "10s", 1),
  });
  await commit({ "apps/production/web/kustomization.yaml": overlay("1.1.0") });
  await post("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } });
  const { parse } = await import("yaml");
  const web = parse(dep) as ReturnType<typeof deployment>;
  const setImage = (tag: string) => {
    (web.spec.template.spec.containers[0] as { image: string }).image = `registry.example/web:${tag}`;
    return patchObject(client, "/apis/apps/v1/namespaces/shop/deployments/web", web, {
      type: "apply",
      fieldManager: "shipmate",
      force: true,
    });
  };
  await setImage("1.0.0");
  await post(
    "/apis/flagger.app/v1beta1/namespaces/shop/canaries",
    parse(canaryYaml("web", "shop", "10s", 1)),
  );
  const stopController = playDeploymentController(client, "shop");
  const flagger = startFlagger(kube.kubeconfig, metrics.url, "shop");
  const phase = async () =>
    (
      (await client.raw({ method: "GET", path: "/apis/flagger.app/v1beta1/namespaces/shop/canaries/web" }))
        .body as { status?: { phase?: string } }
    ).status?.phase;
  await waitFor(async () => ((await phase()) === "Initialized" ? true : undefined), 120_000);
  const watcher = spawn(
    process.execPath,
    [
      new URL("../src/cli/index.ts", import.meta.url).pathname,
      "rollback",
      "--env",
      "production",
      "--repo",
      repo.authedCloneUrl,
      "--forge",
      "gitea",
      "--kubeconfig",
      kube.kubeconfig,
      "--watch",
      "--interval",
      "1s",
    ],
    { env: { ...process.env, GITEA_TOKEN: gitea.token }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let watchOut = "";
  watcher.stdout.on("data", (d) => {
    watchOut += d;
  });
  watcher.stderr.on("data", (d) => {
    watchOut += d;
  });
  await setImage("1.1.0");
  await waitFor(async () => ((await phase()) === "Failed" ? true : undefined), 180_000);
  const failedSeen = performance.now();
  await waitFor(async () => {
    const open = await gitea.api<{ head: { ref: string } }[]>(
      "GET",
      `/repos/${repo.fullName}/pulls?state=open`,
    );
    return open.some((p) => p.head.ref === "shipmate/rollback-production-web") ? true : undefined;
  }, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}: no rollback request; rollback --watch said:\n${watchOut}`);
  });
  const latency = performance.now() - failedSeen;
  watcher.kill("SIGTERM");
  await flagger.stop();
  await stopController();
  await metrics.close();
  await clone.remove();
  await gitea.stop();

  console.log(`machine: ${machine()}`);
  console.log(`\ncanary gate, ${APPS} apps (Canaries Succeeded) in ${NAMESPACES} namespaces:`);
  console.log("| run | wall | API requests | forge requests | verdict |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const [i, r] of rounds.entries())
    console.log(`| ${i + 1} | ${r.ms.toFixed(0)} ms | ${r.reads} | 0 | ${r.state} |`);
  console.log(
    `\nFailed → rollback request on Gitea (rollback --watch --interval 1s): ${(latency / 1000).toFixed(2)} s`,
  );
  console.log(watchOut.trim().split("\n").slice(-2).join("\n"));
} finally {
  client.close();
  await kube.stop();
}
