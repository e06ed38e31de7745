/**
 * The agent as an operator runs it: real `shipmate agent` processes with
 * leader election and their HTTP endpoints, the API server restarted in the
 * middle of an apply, `get --watch`, and the deploy/agent RBAC exercised with
 * a real service-account token.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { serve } from "../../src/agent/server.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { runCli } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";
import {
  adminClient,
  configMap,
  deployment,
  FleetRepo,
  getObject,
  ksStatus,
  kustomization,
  makeAgent,
  namespace,
  serviceAccountToken,
} from "./helpers.ts";

// Real processes and a real API server on a shared 2-core machine: allow slow steps.
vi.setConfig({ testTimeout: 180_000 });

let kube: KubeCluster;
let client: KubeClient;
const repos: FleetRepo[] = [];
const procs = new Set<ChildProcess>();

beforeAll(async () => {
  kube = await startKube({ name: "ha" });
  client = adminClient(kube);
});
afterAll(async () => {
  for (const p of procs) p.kill("SIGKILL");
  client?.close();
  for (const r of repos) r.remove();
  await kube?.stop();
});

function fleet(): FleetRepo {
  const r = FleetRepo.create();
  repos.push(r);
  return r;
}

const CLI = join(import.meta.dirname, "../../src/cli/index.ts");

/** `shipmate agent --once --json` over a fixture repository's clusters/test. */
const onceArgs = (repo: FleetRepo, name: string) => [
  "agent",
  "--once",
  "--json",
  "--repo",
  repo.url,
  "--path",
  "clusters/test",
  "--name",
  name,
];

interface AgentProc {
  proc: ChildProcess;
  url: Promise<string>;
  logs: string[];
  exited: Promise<number | null>;
}

function spawnAgent(args: string[]): AgentProc {
  const proc = spawn(process.execPath, [CLI, "agent", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  procs.add(proc);
  const logs: string[] = [];
  let resolveUrl: (u: string) => void = () => {};
  const url = new Promise<string>((r) => {
    resolveUrl = r;
  });
  let buf = "";
  proc.stderr?.on("data", (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    for (const line of lines) {
      logs.push(line);
      try {
        const rec = JSON.parse(line) as { url?: string };
        if (rec.url) resolveUrl(rec.url);
      } catch {
        // not a log record
      }
    }
  });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  exited.then(() => procs.delete(proc));
  return { proc, url, logs, exited };
}

async function http(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

function metric(text: string, name: string, labels = ""): number {
  const line = text
    .split("\n")
    .find(
      (l) =>
        l.startsWith(`${name}${labels ? `{${labels}}` : ""} `) || (labels === "" && l.startsWith(`${name} `)),
    );
  return line ? Number(line.split(" ").pop()) : 0;
}

const eventually = <T>(
  fn: () => Promise<T | undefined | false>,
  ms = 30_000,
  what = "condition",
): Promise<T> => waitFor(fn, { ms, what, every: 200, retryErrors: true });

async function leaseHolder(name: string): Promise<string | undefined> {
  const lease = await getObject(
    client,
    `/apis/coordination.k8s.io/v1/namespaces/shipmate-system/leases/${name}-agent-leader`,
  );
  return lease?.spec?.holderIdentity || undefined;
}

describe("shipmate agent --once", () => {
  it("applies, prints a JSON summary with its write count and peak memory, and exits 0 when all is Ready", async () => {
    const repo = fleet();
    repo.commit({ "clusters/test/cm.yaml": [namespace("h-once"), configMap("a", "h-once", { x: "1" })] });
    const workdir = mkdtempSync(join(repo.root, "once-"));
    const base = onceArgs(repo, "h-once");
    const res = await runCli([
      ...base,
      "--kubeconfig",
      kube.kubeconfig,
      "--workdir",
      workdir,
      "--log-level",
      "silent",
    ]);
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout);
    expect(summary.reconciled[0]).toMatchObject({ name: "h-once", ready: true, inventory: 2 });
    expect(summary.writes).toBeGreaterThan(0);
    expect(summary.maxRssBytes).toBeGreaterThan(0);
    const again = await runCli([
      ...base,
      "--kubeconfig",
      kube.kubeconfig,
      "--workdir",
      workdir,
      "--log-level",
      "silent",
    ]);
    expect(JSON.parse(again.stdout).writes).toBe(0);

    repo.commit({
      "clusters/test/cm.yaml": [namespace("h-once"), configMap("a", "h-once-missing", { x: "1" })],
    });
    const failing = await runCli([
      ...base,
      "--kubeconfig",
      kube.kubeconfig,
      "--workdir",
      workdir,
      "--log-level",
      "silent",
    ]);
    expect(failing.code).toBe(1);
    expect(JSON.parse(failing.stdout).reconciled[0].message).toMatch(/namespaces "h-once-missing" not found/);
  });

  it("refuses bad flags with exit 2 and one line", async () => {
    const res = await runCli(["agent", "--path", "clusters/x"]);
    expect(res).toMatchObject({ code: 2, stderr: "shipmate agent: --repo is required\n" });
    const bad = await runCli(["agent", "--repo", "file:///x", "--path", "p", "--interval", "soon"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--interval must be a duration/);
  });
});

describe("high availability", () => {
  it("two agents: one leader applies, the standby never does, and takes over when the leader dies", async () => {
    const repo = fleet();
    repo.commit({ "clusters/test/cm.yaml": [namespace("h-ha"), configMap("v", "h-ha", { rev: "1" })] });
    const args = (id: string) => [
      "--repo",
      repo.url,
      "--path",
      "clusters/test",
      "--name",
      "h-ha",
      "--kubeconfig",
      kube.kubeconfig,
      "--listen",
      "127.0.0.1:0",
      "--interval",
      "1s",
      "--poll-interval",
      "300ms",
      "--lease-duration",
      "6s",
      "--workdir",
      mkdtempSync(join(repo.root, `agent-${id}-`)),
    ];
    const a = spawnAgent(args("a"));
    const b = spawnAgent(args("b"));
    const [urlA, urlB] = await Promise.all([a.url, b.url]);
    await eventually(() => getObject(client, "/api/v1/namespaces/h-ha/configmaps/v"), 30_000, "first apply");
    await eventually(async () => (await ksStatus(client, "h-ha")).ready?.status === "True", 30_000, "Ready");
    const holder = await eventually(() => leaseHolder("h-ha"), 10_000, "a lease holder");
    const pidA = String(a.proc.pid);
    const [leader, standby, standbyUrl, leaderUrl] = holder.endsWith(`-${pidA}`)
      ? [a, b, urlB, urlA]
      : [b, a, urlA, urlB];

    const lm = await http(`${leaderUrl}/metrics`);
    const sm = await http(`${standbyUrl}/metrics`);
    expect(metric(lm.text, "shipmate_agent_leader")).toBe(1);
    expect(metric(sm.text, "shipmate_agent_leader")).toBe(0);
    expect(metric(lm.text, "shipmate_agent_api_requests", 'verb="APPLY"')).toBeGreaterThan(0);
    expect(metric(sm.text, "shipmate_agent_api_requests", 'verb="APPLY"')).toBe(0);
    expect(metric(sm.text, "shipmate_agent_api_requests", 'verb="APPLY(dry-run)"')).toBe(0);
    expect((await http(`${leaderUrl}/healthz`)).status).toBe(200);
    expect(await http(`${leaderUrl}/readyz`)).toEqual({ status: 200, text: "ok: leader\n" });
    expect(await http(`${standbyUrl}/readyz`)).toEqual({ status: 200, text: "ok: standby\n" });
    expect(lm.text).toMatch(
      /shipmate_agent_kustomization_ready\{name="h-ha",namespace="shipmate-system"\} 1/,
    );

    // The leader dies without releasing the lease; the standby waits it out and takes over.
    leader.proc.kill("SIGKILL");
    await leader.exited;
    repo.commit({ "clusters/test/cm.yaml": [namespace("h-ha"), configMap("v", "h-ha", { rev: "2" })] });
    await eventually(
      async () => (await getObject(client, "/api/v1/namespaces/h-ha/configmaps/v"))?.data.rev === "2",
      30_000,
      "the standby to apply revision 2",
    );
    const newHolder = await leaseHolder("h-ha");
    expect(newHolder?.endsWith(`-${standby.proc.pid}`)).toBe(true);
    expect(metric((await http(`${standbyUrl}/metrics`)).text, "shipmate_agent_leader")).toBe(1);

    // A clean shutdown releases the lease at once.
    standby.proc.kill("SIGTERM");
    expect(await standby.exited).toBe(0);
    expect(await leaseHolder("h-ha")).toBeUndefined();
  });
});

describe("push webhook", () => {
  it("POST /hooks/sync fetches and reconciles at once, long before the interval", async () => {
    const repo = fleet();
    repo.commit({ "clusters/test/cm.yaml": [namespace("h-hook"), configMap("v", "h-hook", { rev: "1" })] });
    const agent = makeAgent(kube, repo, { name: "h-hook", intervalMs: 3_600_000, pollMs: 3_600_000 });
    const { server, url } = await serve("127.0.0.1:0", agent.metrics, agent.probes());
    const stop = new AbortController();
    const running = agent.run(stop.signal, false);
    try {
      await eventually(
        () => getObject(client, "/api/v1/namespaces/h-hook/configmaps/v"),
        30_000,
        "first apply",
      );
      repo.commit({ "clusters/test/cm.yaml": [namespace("h-hook"), configMap("v", "h-hook", { rev: "2" })] });
      const hook = await fetch(`${url}/hooks/sync`, { method: "POST", body: "{}" });
      expect(hook.status).toBe(202);
      await eventually(
        async () => (await getObject(client, "/api/v1/namespaces/h-hook/configmaps/v"))?.data.rev === "2",
        20_000,
        "the pushed revision",
      );
      expect((await fetch(`${url}/hooks/sync`)).status).toBe(405);
    } finally {
      stop.abort();
      await running;
      server.close();
      agent.close();
    }
  });
});

describe("watch", () => {
  it("a reconcile request wakes a long poll at once (no webhook, no interval)", async () => {
    const repo = fleet();
    repo.commit({ "clusters/test/cm.yaml": [namespace("h-watch"), configMap("v", "h-watch", { rev: "1" })] });
    const agent = makeAgent(kube, repo, { name: "h-watch", intervalMs: 3_600_000, pollMs: 3_600_000 });
    const stop = new AbortController();
    const running = agent.run(stop.signal, false);
    const ksPath = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/shipmate-system/kustomizations/h-watch";
    try {
      await eventually(
        () => getObject(client, "/api/v1/namespaces/h-watch/configmaps/v"),
        30_000,
        "first apply",
      );
      // `shipmate reconcile` / `flux reconcile`: the annotation, nothing else.
      repo.commit({
        "clusters/test/cm.yaml": [namespace("h-watch"), configMap("v", "h-watch", { rev: "2" })],
      });
      const at = new Date().toISOString();
      await client.raw({
        method: "PATCH",
        path: ksPath,
        contentType: "application/merge-patch+json",
        body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": at } } },
      });
      await eventually(
        async () => (await getObject(client, ksPath))?.status?.lastHandledReconcileAt === at,
        20_000,
        "the request handled",
      );
      expect((await getObject(client, "/api/v1/namespaces/h-watch/configmaps/v"))?.data.rev).toBe("2");
    } finally {
      stop.abort();
      await running;
      agent.close();
    }
  });
});

/** 400 ConfigMaps applied by an agent that the test interrupts once it has started writing. */
async function interruptedApply(ns: string, agentOpts: Parameters<typeof makeAgent>[2]) {
  const repo = fleet();
  const many = (n: number) => Array.from({ length: n }, (_, i) => configMap(`c${i}`, ns, { i: String(i) }));
  repo.commit({ "clusters/test/all.yaml": [namespace(ns), ...many(400)] });
  const agent = makeAgent(kube, repo, { name: ns, ...agentOpts });
  const run = agent.once();
  await eventually(async () => (agent.client.counts.byVerb.APPLY ?? 0) > 5, 60_000, "writes");
  const owned = async () =>
    ((
      await getObject(
        client,
        `/api/v1/namespaces/${ns}/configmaps?labelSelector=kustomize.toolkit.fluxcd.io%2Fname%3D${ns}`,
      )
    )?.items ?? []) as { metadata: { name: string } }[];
  return { repo, many, agent, run, owned };
}

describe("API server restarted in the middle of an apply", () => {
  it("the agent recovers: nothing lost, nothing orphaned", async () => {
    const { repo, many, agent, run, owned } = await interruptedApply("h-restart", {});
    try {
      await kube.stopApiServer();
      try {
        await new Promise((r) => setTimeout(r, 1500));
      } finally {
        await kube.startApiServer();
      }
      const summary = await run;
      expect(summary.reconciled[0]?.ready).toBe(true);
      expect(await owned()).toHaveLength(400);
      expect((await ksStatus(client, "h-restart")).inventory).toHaveLength(401);

      // Remove half from git: every one of them is pruned (none was left out of the inventory).
      repo.commit({ "clusters/test/all.yaml": [namespace("h-restart"), ...many(200)] });
      const pruned = await agent.pass(new AbortController().signal, true);
      expect(pruned.reconciled[0]?.ready).toBe(true);
      expect((await owned()).map((i) => i.metadata.name).sort()).toEqual(
        many(200)
          .map((c) => c.metadata.name)
          .sort(),
      );
    } finally {
      agent.close();
    }
  });
});

describe("API server gone longer than the agent retries", () => {
  it("the cut-short apply fails, and the next one prunes even objects created before the cut (write-ahead inventory)", async () => {
    const { repo, many, agent, run, owned } = await interruptedApply("h-cut", { apiRetryMs: 300 });
    // The pass fails, with a report or with the error that ended it; it may end while the API
    // server is still stopping, so its outcome is taken before that.
    const outcome = run.catch(() => undefined);
    try {
      await kube.stopApiServer();
      let cut: Awaited<typeof run> | undefined;
      try {
        cut = await outcome;
      } finally {
        await kube.startApiServer();
      }
      expect(cut?.reconciled.find((k) => k.name === "h-cut")?.ready ?? false).toBe(false);
      const created = (await owned()).length;
      expect(created).toBeGreaterThan(0);
      expect(created).toBeLessThan(400);

      // Git moves on before the agent gets another chance: only 50 objects remain declared.
      repo.commit({ "clusters/test/all.yaml": [namespace("h-cut"), ...many(50)] });
      const next = await agent.pass(new AbortController().signal, true);
      expect(next.reconciled[0]?.ready).toBe(true);
      expect(await owned()).toHaveLength(50);
      expect((await ksStatus(client, "h-cut")).inventory).toHaveLength(51);
    } finally {
      agent.close();
    }
  });
});

describe("shipmate get kustomizations --watch", () => {
  it("prints the table, then a row whenever a Kustomization changes", async () => {
    const repo = fleet();
    repo.commit({
      "clusters/test/ks.yaml": [namespace("h-watch"), kustomization("h-watch-apps", { path: "./apps" })],
      "apps/cm.yaml": [configMap("a", "h-watch", {})],
    });
    const agent = makeAgent(kube, repo, { name: "h-watch" });
    try {
      await agent.once();
      const proc = spawn(
        process.execPath,
        [CLI, "get", "kustomizations", "--watch", "--kubeconfig", kube.kubeconfig],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      procs.add(proc);
      let out = "";
      proc.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
      });
      await eventually(async () => out.includes("h-watch-apps"), 20_000, "the table");
      expect(out.split("\n")[0]).toMatch(
        /^NAMESPACE\s+NAME\s+REVISION\s+SUSPENDED\s+READY\s+OBJECTS\s+MESSAGE$/,
      );
      const c2 = repo.commit({ "apps/cm.yaml": [configMap("a", "h-watch", { x: "2" })] });
      await agent.pass(new AbortController().signal, true);
      await eventually(
        async () => out.includes(`h-watch-apps  main@sha1:${c2}`),
        20_000,
        "the new revision row",
      );
      proc.kill("SIGINT");
      await new Promise((r) => proc.once("exit", r));
    } finally {
      agent.close();
    }
  });
});

describe("deploy/agent RBAC, with a real service-account token", () => {
  it("least privilege applies a typical app fleet, forbids RBAC kinds, and the cluster-admin component allows them", async () => {
    const kubectl = (...args: string[]) =>
      execFileSync("kubectl", ["--kubeconfig", kube.kubeconfig, ...args], { encoding: "utf8" });
    kubectl("apply", "--server-side", "-k", join(import.meta.dirname, "../../deploy/agent"));
    const token = await serviceAccountToken(client, "shipmate-system", "shipmate-agent");
    const saConfig = kube.kubeconfigFor(token, "shipmate-agent");

    const repo = fleet();
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("h-rbac"),
        kustomization("h-rbac-app", { path: "./app" }),
        kustomization("h-rbac-admin", { path: "./admin" }),
      ],
      "app/all.yaml": [
        deployment("web", "h-rbac"),
        {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: "web", namespace: "h-rbac" },
          spec: { selector: { app: "web" }, ports: [{ port: 80 }] },
        },
        configMap("web", "h-rbac", { a: "b" }),
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "web", namespace: "h-rbac" },
          stringData: { k: "v" },
        },
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "web", namespace: "h-rbac" } },
      ],
      "admin/role.yaml": [
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          metadata: { name: "h-rbac-reader" },
          rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
        },
      ],
    });
    const base = [...onceArgs(repo, "h-rbac"), "--log-level", "silent"];
    const workdir = mkdtempSync(join(repo.root, "rbac-"));
    const res = await runCli([...base, "--kubeconfig", saConfig, "--workdir", workdir]);
    const byName = Object.fromEntries(
      JSON.parse(res.stdout).reconciled.map((k: { name: string }) => [k.name, k]),
    );
    expect(byName["h-rbac"].ready).toBe(true);
    expect(byName["h-rbac-app"].ready).toBe(true);
    expect(byName["h-rbac-admin"]).toMatchObject({ ready: false });
    expect(byName["h-rbac-admin"].message).toMatch(/ClusterRole\/h-rbac-reader: .*forbidden/);
    expect(res.code).toBe(1);
    expect(await getObject(client, "/apis/apps/v1/namespaces/h-rbac/deployments/web")).toBeDefined();

    kubectl(
      "apply",
      "--server-side",
      "-f",
      join(import.meta.dirname, "../../deploy/agent/cluster-admin/binding.yaml"),
    );
    const admin = await runCli([...base, "--kubeconfig", saConfig, "--workdir", workdir]);
    expect(admin.code).toBe(0);
    expect(
      await getObject(client, "/apis/rbac.authorization.k8s.io/v1/clusterroles/h-rbac-reader"),
    ).toBeDefined();

    // A user without rights gets one clear line, not a stack trace.
    const dev = await runCli([
      "get",
      "kustomizations",
      "--kubeconfig",
      kube.kubeconfigFor(kube.userToken, "dev"),
    ]);
    expect(dev.code).toBe(1);
    expect(dev.stderr).toMatch(/^shipmate get: list Kustomization: .*forbidden.*\(Forbidden\)\n$/);
  });
});
