/**
 * Progressive delivery end to end, with the real Flagger (built from its Go
 * module) against the real kube-apiserver, the `kubernetes` provider
 * (blue/green), Flagger's built-in metrics answered by a Prometheus-compatible
 * endpoint on 127.0.0.1, and a real Gitea for the requests.
 *
 * What stands in, and why: no kubelet or controller-manager can run here, so
 * test/infra/flagger.ts writes each Deployment's status as rolled out (the
 * Deployment controller's and kubelet's part), and the test applies the
 * production overlay it rendered with the real kustomize after each merge
 * (the sync agent's part, tested on its own elsewhere). Everything Flagger
 * does — primary Deployment, Services, analysis against the metrics, webhooks,
 * promotion, rollback, status, events — is Flagger's own.
 *
 * Three apps roll out at once to keep the file short: `web` answers healthy
 * metrics and succeeds; `api` answers a 50% success rate and fails; `db`'s
 * metric queries error (HTTP 500) and it fails too.
 */
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { KubeClient } from "../../src/kube/client.ts";
import type { PromoteResult } from "../../src/promote/index.ts";
import type { RollbackResult } from "../../src/promote/rollback.ts";
import { getObject, patchObject, waitFor } from "../agent/helpers.ts";
import { TestClone } from "../forge/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import {
  type FlaggerProcess,
  installFlaggerCrds,
  type MetricsServer,
  playDeploymentController,
  startFlagger,
  startMetrics,
  startWebhooks,
} from "../infra/flagger.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";

const run = promisify(execFile);
const NS = "shop";
const IMAGE = {
  web: "registry.example/acme/web",
  api: "registry.example/acme/api",
  db: "registry.example/acme/db",
};
const digest = (n: number) => `sha256:${String(n).repeat(64)}`;

let kube: KubeCluster;
let client: KubeClient;
let gitea: GiteaServer;
let repo: GiteaRepo;
let clone: TestClone;
let metrics: MetricsServer;
let hooks: Awaited<ReturnType<typeof startWebhooks>>;
let flagger: FlaggerProcess;
let stopController: () => Promise<void>;

const FLEET = `apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata:
  name: shop
spec:
  environments:
    - name: staging
      path: apps/staging
    - name: production
      path: apps/production
      mode: pull-request
      gates:
        canary: true
`;

const base = (app: string) => ({
  [`apps/base/${app}/kustomization.yaml`]: "resources:\n  - deployment.yaml\n",
  [`apps/base/${app}/deployment.yaml`]: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}
  namespace: ${NS}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: ${app}
  template:
    metadata:
      labels:
        app: ${app}
    spec:
      containers:
        - name: ${app}
          image: ${IMAGE[app as keyof typeof IMAGE]}:0.0.0
          ports:
            - name: http
              containerPort: 8080
`,
});

const overlay = (
  app: keyof typeof IMAGE,
  tag: string,
  d: string,
  canary: boolean,
) => `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base/${app}
${canary ? "  - canary.yaml\n" : ""}images:
  - name: ${IMAGE[app]}
    newTag: "${tag}"
    digest: ${d}
`;

// The scaffold's Canary (templates/partials/app/canary.yaml.hbs) with test-sized timings:
// Flagger's shortest analysis interval is 10 s, one iteration, the first failed check rolls back.
const canary = (app: string, webhook: string) => `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: ${app}
  namespace: ${NS}
spec:
  provider: kubernetes
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: ${app}
  progressDeadlineSeconds: 120
  service:
    port: 80
    targetPort: http
  analysis:
    interval: 10s
    threshold: 1
    iterations: 1
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 1m
    webhooks:
      - name: load-test
        type: rollout
        url: ${webhook}
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 http://${app}-canary.${NS}/"
`;

async function commit(files: Record<string, string>, message: string): Promise<string> {
  await clone.git("fetch", "-q", "origin");
  await clone.git("checkout", "-q", "-B", "main", "origin/main");
  for (const [p, c] of Object.entries(files)) {
    await mkdir(dirname(join(clone.dir, p)), { recursive: true });
    await writeFile(join(clone.dir, p), c);
  }
  await clone.git("add", "-A");
  await clone.git("commit", "-q", "-m", message);
  await clone.git("push", "-q", "origin", "HEAD:refs/heads/main");
  return clone.git("rev-parse", "HEAD");
}

/** The sync agent's part: render production at main's head with the real kustomize and apply it. */
async function syncProduction(): Promise<void> {
  await clone.git("fetch", "-q", "origin");
  await clone.git("checkout", "-q", "-B", "main", "origin/main");
  const { stdout } = await run("kustomize", ["build", join(clone.dir, "apps/production")]);
  for (const doc of parseAllDocuments(stdout)) {
    const o = doc.toJS() as { apiVersion: string; kind: string; metadata: { name: string } };
    const path =
      o.kind === "Deployment"
        ? `/apis/apps/v1/namespaces/${NS}/deployments/${o.metadata.name}`
        : `/apis/flagger.app/v1beta1/namespaces/${NS}/canaries/${o.metadata.name}`;
    await patchObject(client, path, o, { type: "apply", fieldManager: "shipmate", force: true });
  }
}

const cli = async <T>(args: string[]): Promise<{ code: number; out: T; stderr: string }> => {
  const r = await runCli(
    [...args, "--repo", repo.authedCloneUrl, "--forge", "gitea", "--kubeconfig", kube.kubeconfig, "--json"],
    {
      env: { GITEA_TOKEN: gitea.token },
    },
  );
  try {
    return { code: r.code, out: JSON.parse(r.stdout) as T, stderr: r.stderr };
  } catch {
    throw new Error(`no JSON (exit ${r.code}): ${r.stderr}${r.stdout}`);
  }
};
const promote = (...extra: string[]) =>
  cli<PromoteResult>(["promote", "--from", "staging", "--to", "production", ...extra]);

const phase = async (name: string): Promise<string | undefined> =>
  (await getObject(client, `/apis/flagger.app/v1beta1/namespaces/${NS}/canaries/${name}`))?.status?.phase;
const reach = (name: string, want: string, ms = 150_000) =>
  waitFor(async () => ((await phase(name)) === want ? true : undefined), ms).catch(() => {
    throw new Error(
      `Canary ${name} never reached ${want} (it is ${String(phase(name))}); Flagger said:\n${flagger.logs.slice(-15).join("\n")}`,
    );
  });

interface ApiPull {
  number: number;
  state: string;
  body: string;
  title: string;
  head: { ref: string };
}
const pulls = async (state = "open") =>
  gitea.api<ApiPull[]>("GET", `/repos/${repo.fullName}/pulls?state=${state}&limit=50`);
// Gitea answers 405 "try again later" until it has checked the request's mergeability.
const merge = (n: number) =>
  waitFor(
    () =>
      gitea.api("POST", `/repos/${repo.fullName}/pulls/${n}/merge`, { Do: "merge" }).then(
        () => true,
        (err: Error) => {
          if (!/405/.test(err.message)) throw err;
          return undefined;
        },
      ),
    30_000,
  );

beforeAll(async () => {
  [kube, gitea, metrics, hooks] = await Promise.all([
    startKube({ name: "flagger-e2e" }),
    startGitea(),
    // Flagger's built-in queries name the canary's pods: web answers healthy, api 50% success.
    startMetrics((q) => {
      const app = /kubernetes_pod_name=~"(\w+)-/.exec(q)?.[1];
      if (app === "db") throw new Error("query timed out in expression evaluation");
      if (q.includes("histogram_quantile")) return 0.025; // P99, seconds
      return app === "api" ? 50 : 100;
    }),
    startWebhooks(),
  ]);
  client = new KubeClient(kube.kubeConfig());
  await installFlaggerCrds(client);
  await client.raw({
    method: "POST",
    path: "/api/v1/namespaces",
    body: { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } },
  });
  repo = await gitea.createRepo("fleet");
  clone = await TestClone.clone(repo.authedCloneUrl);
  await commit(
    {
      "shipmate.yaml": FLEET,
      ...base("web"),
      ...base("api"),
      ...base("db"),
      "apps/staging/kustomization.yaml": "resources:\n  - web\n  - api\n  - db\n",
      "apps/staging/web/kustomization.yaml": overlay("web", "1.1.0", digest(2), false),
      "apps/staging/api/kustomization.yaml": overlay("api", "2.1.0", digest(4), false),
      "apps/production/kustomization.yaml": "resources:\n  - web\n  - api\n  - db\n",
      "apps/production/web/kustomization.yaml": overlay("web", "1.0.0", digest(1), true),
      "apps/production/web/canary.yaml": canary("web", hooks.url),
      "apps/production/api/kustomization.yaml": overlay("api", "2.0.0", digest(3), true),
      "apps/production/api/canary.yaml": canary("api", hooks.url),
      "apps/staging/db/kustomization.yaml": overlay("db", "3.1.0", digest(7), false),
      "apps/production/db/kustomization.yaml": overlay("db", "3.0.0", digest(6), true),
      "apps/production/db/canary.yaml": canary("db", hooks.url),
    },
    "fleet with production canaries",
  );
  await syncProduction();
  stopController = playDeploymentController(client, NS);
  flagger = startFlagger(kube.kubeconfig, metrics.url, NS);
  await Promise.all(["web", "api", "db"].map((a) => reach(a, "Initialized", 60_000)));
}, 240_000);

afterAll(async () => {
  await flagger?.stop();
  await stopController?.();
  client?.close();
  await Promise.all([metrics?.close(), hooks?.close(), clone?.remove(), gitea?.stop(), kube?.stop()]);
});

describe("progressive delivery with the real Flagger", () => {
  it("a promoted bump starts a canary; healthy → Succeeded and the next promotion passes the canary gate; a failing metric → Failed and a rollback request with the previous pins", async () => {
    // 1. Both canaries are set up and idle: the gate passes, one request per app.
    const first = await promote("--per-app");
    expect(first.code).toBe(0);
    expect(first.out.gates).toEqual([
      {
        gate: "canary",
        state: "passed",
        message:
          "3 Canaries in production finished: shop/api Initialized, shop/db Initialized, shop/web Initialized",
      },
    ]);
    const opened = await pulls();
    expect(opened.map((p) => p.head.ref).sort()).toEqual([
      "shipmate/promote-production-api",
      "shipmate/promote-production-db",
      "shipmate/promote-production-web",
    ]);
    expect(opened[0]?.body).toContain("- ✅ `canary` passed: 3 Canaries in production finished");

    // 2. Merged and applied: Flagger sees new revisions and starts both analyses.
    for (const p of opened) await merge(p.number);
    await syncProduction();
    await reach("web", "Progressing", 60_000);

    // 3. While web's rollout runs, its next promotion waits, saying why in one line.
    await commit(
      { "apps/staging/web/kustomization.yaml": overlay("web", "1.2.0", digest(5), false) },
      "staging: web 1.2.0",
    );
    const held = await promote("--app", "web");
    expect(held.code).toBe(0);
    expect(held.out.status).toBe("waiting");
    expect(held.out.gates[0]?.state).toBe("waiting");
    expect(held.out.gates[0]?.message).toMatch(
      /^rollout still under way in production: shop\/web (Progressing|Promoting|Finalising)/,
    );

    // 4. api's success rate (50%) is below 99%: Flagger rolls it back.
    await reach("api", "Failed");
    await reach("db", "Failed");
    const rolled = await cli<RollbackResult>(["rollback", "--env", "production"]);
    expect(rolled.code).toBe(0);
    expect(rolled.out.rollbacks.map((r) => r.app).sort()).toEqual(["api", "db"]);
    const rb = rolled.out.rollbacks.find((r) => r.app === "api");
    expect(rb).toMatchObject({
      app: "api",
      canary: "shop/api",
      outcome: "proposed",
      from: `api:2.1.0@${digest(4)}`,
      to: `2.0.0@${digest(3)}`,
    });
    const request = (await pulls()).find((p) => p.head.ref === "shipmate/rollback-production-api");
    expect(request?.title).toBe(`Roll back api in production to 2.0.0@${digest(3)}`);
    expect(request?.body).toContain("the Flagger canary `shop/api` of `api` failed in `production`");
    // Flagger's own words, with the metric value it measured.
    expect(request?.body).toContain("Halt api.shop advancement success rate 50.00% < 99%");
    expect(request?.body).toContain(
      "- Analysis: shop/api Failed: Halt api.shop advancement success rate 50.00% < 99%",
    );
    await clone.git("fetch", "-q", "origin");
    expect(
      await clone.git(
        "show",
        "origin/shipmate/rollback-production-api:apps/production/api/kustomization.yaml",
      ),
    ).toBe(overlay("api", "2.0.0", digest(3), true).trimEnd());
    // Running it again updates nothing and opens no second request.
    const again = await cli<RollbackResult>(["rollback", "--env", "production"]);
    expect(again.out.rollbacks.map((r) => r.request?.action)).toEqual(["unchanged", "unchanged"]);

    // db's metric queries errored: Flagger's reason is the gate's, in one line, and the rollback request's.
    const dbRollback = (await pulls()).find((p) => p.head.ref === "shipmate/rollback-production-db");
    expect(dbRollback?.body).toContain(
      '- Analysis: shop/db Failed: Prometheus query failed: error response: {"status":"error","errorType":"execution","error":"query timed out in expression evaluation"}',
    );
    await commit(
      { "apps/staging/db/kustomization.yaml": overlay("db", "3.2.0", digest(8), false) },
      "staging: db 3.2.0",
    );
    const dbHeld = await promote("--app", "db");
    expect(dbHeld.code).toBe(1);
    expect(dbHeld.out.status).toBe("blocked");
    expect(dbHeld.out.gates[0]?.state).toBe("failed");
    expect(dbHeld.out.gates[0]?.message).toMatch(
      /^rollout failed in production: shop\/db Failed: Prometheus query failed: error response: .*query timed out in expression evaluation/,
    );
    expect(dbHeld.out.gates[0]?.message).not.toContain("\n");
    // The promote run saw the Failed canary too: its rollback request is already there, unchanged.
    expect(dbHeld.out.rollback?.rollbacks.map((r) => [r.app, r.request?.action])).toEqual([
      ["db", "unchanged"],
    ]);

    // 5. web succeeded: its held promotion now passes the gate and is proposed.
    await reach("web", "Succeeded");
    const next = await promote("--app", "web");
    expect(next.out.gates[0]).toEqual({
      gate: "canary",
      state: "passed",
      message: "1 Canary in production finished: shop/web Succeeded",
    });
    expect(next.out.status).toBe("proposed");
    expect(next.out.requests.map((r) => r.outcome)).toEqual(["opened"]);
    // Flagger called the load-test webhook with the canary's metadata.
    expect(hooks.calls.some((c) => JSON.stringify(c).includes("hey -z 1m"))).toBe(true);
  }, 300_000);

  it("conformance: a Job from a named CronJob that never finishes holds the promotion, saying why in the request body; once it completes the gate passes", async () => {
    await commit(
      {
        "shipmate.yaml": FLEET.replace(
          "        canary: true\n",
          "        canary: true\n        conformance:\n          job: {name: smoke, namespace: shop}\n          timeout: 3s\n",
        ),
      },
      "production: conformance gate",
    );
    const head = await clone.git("rev-parse", "HEAD");
    const cron = await client.raw({
      method: "POST",
      path: `/apis/batch/v1/namespaces/${NS}/cronjobs`,
      body: {
        apiVersion: "batch/v1",
        kind: "CronJob",
        metadata: { name: "smoke", namespace: NS },
        spec: {
          schedule: "0 0 1 1 *",
          suspend: true,
          jobTemplate: {
            spec: {
              backoffLimit: 0,
              template: {
                spec: {
                  restartPolicy: "Never",
                  containers: [{ name: "smoke", image: "registry.example/acme/smoke:1" }],
                },
              },
            },
          },
        },
      },
    });
    expect(cron.code).toBe(201);
    // No Job controller runs here: the Job never finishes, and the gate says so once its timeout passes.
    const held = await promote("--app", "web");
    const job = `smoke-${head.slice(0, 12)}`;
    expect(held.code).toBe(1);
    expect(held.out.status).toBe("blocked");
    expect(held.out.gates.map((g) => [g.gate, g.state, g.message])).toEqual([
      ["canary", "passed", "1 Canary in production finished: shop/web Succeeded"],
      [
        "conformance",
        "failed",
        `Job shop/${job} did not finish within 3s on staging at ${head.slice(0, 12)}`,
      ],
    ]);
    const created = await getObject(client, `/apis/batch/v1/namespaces/${NS}/jobs/${job}`);
    expect(created?.spec.template.spec.containers[0].env).toEqual([
      { name: "SHIPMATE_REVISION", value: head },
    ]);
    const open = (await pulls()).find((p) => p.head.ref === "shipmate/promote-production");
    expect(open?.body).toContain(`- ❌ \`conformance\` failed: Job shop/${job} did not finish within 3s`);

    // The Job controller's part: the Job ran for a second and completed.
    const start = new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, "Z");
    const end = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await patchObject(
      client,
      `/apis/batch/v1/namespaces/${NS}/jobs/${job}/status`,
      {
        status: {
          startTime: start,
          completionTime: end,
          succeeded: 1,
          conditions: [
            { type: "SuccessCriteriaMet", status: "True", lastTransitionTime: end },
            { type: "Complete", status: "True", lastTransitionTime: end },
          ],
        },
      },
      { fieldManager: "job-controller" },
    );
    const passed = await promote("--app", "web");
    expect(passed.out.gates[1]).toMatchObject({ gate: "conformance", state: "passed" });
    expect(passed.out.gates[1]?.message).toMatch(
      new RegExp(`^Job shop/${job} passed on staging at ${head.slice(0, 12)} in [12]s$`),
    );
    expect(passed.out.status).toBe("proposed");
    const updated = (await pulls()).find((p) => p.head.ref === "shipmate/promote-production");
    expect(updated?.body).toContain(`Full log: \`kubectl logs -n shop job/${job}\``);
  }, 60_000);

  it("get canaries: phase, weight, failed checks and last transition; a Canary whose targetRef names no Deployment says so", async () => {
    const ghost = canary("ghost", hooks.url)
      .replace("name: ghost\n  namespace", "name: ghost\n  namespace")
      .replace(/kind: Deployment\n {4}name: ghost/, "kind: Deployment\n    name: nope");
    await patchObject(
      client,
      `/apis/flagger.app/v1beta1/namespaces/${NS}/canaries/ghost`,
      parseAllDocuments(ghost)[0]?.toJS(),
      {
        type: "apply",
        fieldManager: "test",
      },
    );
    const r = await runCli(["get", "canaries", "--kubeconfig", kube.kubeconfig]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(
      /^ENVIRONMENT\s+NAMESPACE\s+NAME\s+PHASE\s+WEIGHT\s+FAILED\s+LAST TRANSITION\s+MESSAGE$/,
    );
    expect(lines.find((l) => /\sweb\s/.test(l))).toMatch(
      /^\(current context\)\s+shop\s+web\s+Succeeded\s+0\s+0\/1\s+\d{4}-/,
    );
    expect(lines.find((l) => /\sapi\s/.test(l))).toMatch(
      /\sapi\s+Failed\s+0\s+0\/1\s+.*Halt api\.shop advancement success rate 50\.00% < 99%$/,
    );
    expect(lines.find((l) => /\sghost\s/.test(l))).toMatch(
      /targetRef: Deployment shop\/nope does not exist$/,
    );
    const json = await runCli(["get", "canaries", "--kubeconfig", kube.kubeconfig, "--json", "ghost"]);
    expect(JSON.parse(json.stdout)[0].canaries).toEqual([
      expect.objectContaining({ namespace: NS, name: "ghost", targetMissing: "shop/nope" }),
    ]);
  });
});
