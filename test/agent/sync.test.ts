/**
 * The agent against a real kube-apiserver: apply, update, prune, drift,
 * ordering, validation, suspend/resume, health and the source being gone.
 * Every test owns its root Kustomization name and its namespaces.
 */
import { renameSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { Applier } from "../../src/kube/apply.ts";
import { Discovery } from "../../src/kube/discovery.ts";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { waitFor as poll } from "../helpers/wait.ts";
import {
  configMap,
  deployment,
  getObject,
  ksStatus,
  kustomization,
  namespace,
  patchObject,
} from "./helpers.ts";

// Real processes and a real API server on a shared 2-core machine: allow slow steps.
vi.setConfig({ testTimeout: 180_000 });

const k = kubeSuite({ name: "sync" });

const never = new AbortController().signal;

const cm = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;
const deploy = (ns: string, name: string) => `/apis/apps/v1/namespaces/${ns}/deployments/${name}`;

describe("apply, update, prune", () => {
  it("applies plain manifests under --path, updates them from git, prunes what left git", async () => {
    const repo = k.fleet();
    const c1 = repo.commit({
      "clusters/test/ns.yaml": [namespace("t-apply")],
      "clusters/test/config.yaml": [
        configMap("a", "t-apply", { v: "1" }),
        configMap("b", "t-apply", { v: "1" }),
      ],
      "clusters/test/keep.yaml": [
        {
          ...configMap("keep", "t-apply", { v: "1" }),
          metadata: {
            name: "keep",
            namespace: "t-apply",
            annotations: { "kustomize.toolkit.fluxcd.io/prune": "disabled" },
          },
        },
      ],
    });
    const agent = k.agent(repo, "t-apply");
    const first = await agent.once();
    expect(first.reconciled.map((k) => [k.name, k.ready, k.inventory])).toEqual([["t-apply", true, 4]]);
    const a = await getObject(k.client, cm("t-apply", "a"));
    expect(a?.data).toEqual({ v: "1" });
    expect(a?.metadata.labels["kustomize.toolkit.fluxcd.io/name"]).toBe("t-apply");
    expect(a?.metadata.managedFields.some((m: { manager: string }) => m.manager === "shipmate")).toBe(true);
    const s1 = await ksStatus(k.client, "t-apply");
    expect(s1.ks?.status.lastAppliedRevision).toBe(`main@sha1:${c1}`);
    expect(s1.ready?.reason).toBe("ReconciliationSucceeded");
    const events = await getObject(
      k.client,
      "/api/v1/namespaces/shipmate-system/events?fieldSelector=involvedObject.name%3Dt-apply",
    );
    const succeeded = events?.items.find((e: { reason: string }) => e.reason === "ReconciliationSucceeded");
    expect(succeeded?.type).toBe("Normal");
    expect(succeeded?.message).toMatch(/^Namespace\/t-apply created\n.*ConfigMap\/t-apply\/a created/s);
    expect(succeeded?.involvedObject).toMatchObject({
      kind: "Kustomization",
      name: "t-apply",
      namespace: "shipmate-system",
    });

    // An object nobody declared is never touched by prune.
    await k.client.raw({
      method: "POST",
      path: "/api/v1/namespaces/t-apply/configmaps",
      body: configMap("stranger", "t-apply", { v: "x" }),
    });

    const c2 = repo.commit({
      "clusters/test/config.yaml": [configMap("a", "t-apply", { v: "2" })],
      "clusters/test/keep.yaml": null,
    });
    const second = await agent.pass(never, true);
    expect(second.reconciled[0]?.ready).toBe(true);
    expect((await getObject(k.client, cm("t-apply", "a")))?.data).toEqual({ v: "2" });
    expect(await getObject(k.client, cm("t-apply", "b"))).toBeUndefined();
    expect(await getObject(k.client, cm("t-apply", "keep"))).toBeDefined();
    expect(await getObject(k.client, cm("t-apply", "stranger"))).toBeDefined();
    const s2 = await ksStatus(k.client, "t-apply");
    expect(s2.ks?.status.lastAppliedRevision).toBe(`main@sha1:${c2}`);
    expect(s2.inventory.map((e) => e.id).sort()).toEqual(["_t-apply__Namespace", "t-apply_a__ConfigMap"]);
  });

  it("a steady cluster costs no write: the second pass sends no write request", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/all.yaml": [
        namespace("t-noop"),
        ...Array.from({ length: 20 }, (_, i) => configMap(`c${i}`, "t-noop", { i: String(i) })),
      ],
    });
    const agent = k.agent(repo, "t-noop");
    await agent.once();
    const before = { ...agent.client.counts };
    const pass = await agent.pass(never, true);
    expect(pass.reconciled[0]?.ready).toBe(true);
    expect(pass.writes).toBe(0);
    expect(agent.client.counts.dryRuns).toBe(before.dryRuns);
  });
});

describe("drift", () => {
  it("reverts a kubectl-edit style change on the next reconcile, and reports a rival server-side applier", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/app.yaml": [namespace("t-drift"), deployment("web", "t-drift", "nginx:1.27", 2)],
    });
    const agent = k.agent(repo, "t-drift");
    await agent.once();
    await patchObject(
      k.client,
      deploy("t-drift", "web"),
      { spec: { replicas: 5 } },
      { fieldManager: "kubectl-edit" },
    );
    expect((await getObject(k.client, deploy("t-drift", "web")))?.spec.replicas).toBe(5);
    const pass = await agent.pass(never, true);
    expect(pass.reconciled[0]?.ready).toBe(true);
    expect((await getObject(k.client, deploy("t-drift", "web")))?.spec.replicas).toBe(2);

    // Another declarative owner taking a field by force is a conflict, reported and not overridden...
    await patchObject(
      k.client,
      deploy("t-drift", "web"),
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "web", namespace: "t-drift" },
        spec: { replicas: 7 },
      },
      { type: "apply", fieldManager: "other-gitops", force: true },
    );
    const conflicted = await agent.pass(never, true);
    expect(conflicted.reconciled[0]?.ready).toBe(false);
    const s = await ksStatus(k.client, "t-drift");
    expect(s.ready?.message).toMatch(/conflict with server-side applier "other-gitops".*spec\.replicas/);
    expect((await getObject(k.client, deploy("t-drift", "web")))?.spec.replicas).toBe(7);

    // ...unless the agent is configured to force conflicts.
    const forcing = k.agent(repo, "t-drift", { forceConflicts: true });
    const forced = await forcing.once();
    expect(forced.reconciled[0]?.ready).toBe(true);
    expect((await getObject(k.client, deploy("t-drift", "web")))?.spec.replicas).toBe(2);
  });
});

describe("Kustomizations", () => {
  it("reconciles Kustomization objects found under --path with targetNamespace, images and patches, as Flux does", async () => {
    const repo = k.fleet();
    const c = repo.commit({
      "clusters/test/apps.yaml": [
        namespace("t-overlay"),
        kustomization("t-overlay-apps", {
          path: "./apps/base",
          targetNamespace: "t-overlay",
          images: [{ name: "nginx", newTag: "1.28" }],
          patches: [
            {
              patch: "- op: replace\n  path: /spec/replicas\n  value: 3",
              target: { kind: "Deployment", name: "web" },
            },
          ],
        }),
      ],
      "apps/base/web.yaml": [deployment("web", "placeholder")],
      "apps/base/settings.yaml": [configMap("settings", "placeholder", { mode: "base" })],
    });
    const agent = k.agent(repo, "t-overlay");
    const res = await agent.once();
    expect(res.reconciled.map((k) => [k.name, k.ready])).toEqual([
      ["t-overlay", true],
      ["t-overlay-apps", true],
    ]);
    const web = await getObject(k.client, deploy("t-overlay", "web"));
    expect(web?.spec.replicas).toBe(3);
    expect(web?.spec.template.spec.containers[0].image).toBe("nginx:1.28");
    expect(await getObject(k.client, cm("t-overlay", "settings"))).toBeDefined();
    const child = await ksStatus(k.client, "t-overlay-apps");
    expect(child.ks?.status.lastAppliedRevision).toBe(`main@sha1:${c}`);
    expect(child.inventory).toHaveLength(2);
    // The root inventory holds the Kustomization object itself, not its objects.
    const root = await ksStatus(k.client, "t-overlay");
    expect(root.inventory.map((e) => e.id).sort()).toEqual([
      "_t-overlay__Namespace",
      "shipmate-system_t-overlay-apps_kustomize.toolkit.fluxcd.io_Kustomization",
    ]);
  });

  it("a field the agent does not honour is refused, never ignored: Stalled UnsupportedField naming each field, nothing applied", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/apps.yaml": [
        namespace("t-refuse"),
        kustomization("t-refuse-apps", {
          path: "./apps",
          targetNamespace: "t-refuse",
          ignore: [{ paths: ["/spec/replicas"] }],
          futureFluxField: { enabled: true },
        }),
      ],
      "apps/settings.yaml": [configMap("settings", "placeholder", { mode: "base" })],
    });
    const res = await k.agent(repo, "t-refuse").once();
    const child = res.reconciled.find((k) => k.name === "t-refuse-apps");
    expect(child).toMatchObject({ ready: false, reason: "UnsupportedField" });
    expect(child?.message).toContain("spec.futureFluxField (not a field this agent knows)");
    expect(child?.message).toContain("spec.ignore (ignore rules for applied objects are not implemented)");
    const status = await ksStatus(k.client, "t-refuse-apps");
    const stalled = status.ks?.status.conditions.find((c: { type: string }) => c.type === "Stalled");
    expect(stalled).toMatchObject({ status: "True", reason: "UnsupportedField" });
    expect(await getObject(k.client, cm("t-refuse", "settings"))).toBeUndefined();
  });

  it("a Kustomization deleted from git is removed with all its objects", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [namespace("t-gc"), kustomization("t-gc-apps", { path: "./apps" })],
      "apps/cm.yaml": [configMap("one", "t-gc", { a: "1" }), configMap("two", "t-gc", { a: "2" })],
    });
    const agent = k.agent(repo, "t-gc");
    await agent.once();
    expect(await getObject(k.client, cm("t-gc", "one"))).toBeDefined();
    repo.commit({ "clusters/test/ks.yaml": [namespace("t-gc")] });
    const res = await agent.pass(never, true);
    expect(res.reconciled[0]?.ready).toBe(true);
    expect((await ksStatus(k.client, "t-gc-apps")).ks).toBeUndefined();
    expect(await getObject(k.client, cm("t-gc", "one"))).toBeUndefined();
    expect(await getObject(k.client, cm("t-gc", "two"))).toBeUndefined();
  });

  it("a root declared in git (as scaffolded fleets and Flux bootstrap do) is adopted, and never prunes itself", async () => {
    const repo = k.fleet();
    const self = { ...kustomization("t-self", { path: "./clusters/test", interval: "10m" }) };
    repo.commit({
      "clusters/test/sync.yaml": [self],
      "clusters/test/cm.yaml": [namespace("t-self"), configMap("x", "t-self", {})],
    });
    const agent = k.agent(repo, "t-self");
    const res = await agent.once();
    expect(res.reconciled.map((k) => [k.name, k.ready, k.inventory])).toEqual([["t-self", true, 3]]);
    expect((await ksStatus(k.client, "t-self")).ks?.spec.interval).toBe("10m");
    repo.commit({ "clusters/test/sync.yaml": null });
    const again = await agent.pass(never, true);
    expect(again.reconciled[0]?.ready).toBe(true);
    expect((await ksStatus(k.client, "t-self")).ks).toBeDefined();
    expect(await getObject(k.client, cm("t-self", "x"))).toBeDefined();
  });

  it("a Kustomization over the agent's root path under another name is refused, not fought over", async () => {
    const repo = k.fleet();
    repo.commit({ "clusters/test/sync.yaml": [kustomization("t-twin-other", { path: "./clusters/test/" })] });
    const agent = k.agent(repo, "t-twin");
    const res = await agent.once();
    const twin = res.reconciled.find((k) => k.name === "t-twin-other");
    expect(twin).toMatchObject({ ready: false, reason: "InvalidPath" });
    expect(twin?.message).toMatch(/--name t-twin-other --namespace shipmate-system/);
    expect(
      (await ksStatus(k.client, "t-twin-other")).ks?.status.conditions.find(
        (c: { type: string }) => c.type === "Stalled",
      )?.status,
    ).toBe("True");
  });

  it("a bad object fails only its own Kustomization, and nothing of it is applied", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-bad"),
        kustomization("t-bad-good", { path: "./good" }),
        kustomization("t-bad-bad", { path: "./bad" }),
      ],
      "good/cm.yaml": [configMap("good", "t-bad", { ok: "yes" })],
      "bad/cm.yaml": [configMap("first", "t-bad", { ok: "no" })],
      "bad/deploy.yaml": [
        { ...deployment("broken", "t-bad"), spec: { ...deployment("broken", "t-bad").spec, replicas: -1 } },
      ],
    });
    const agent = k.agent(repo, "t-bad");
    const res = await agent.once();
    const byName = Object.fromEntries(res.reconciled.map((k) => [k.name, k]));
    expect(byName["t-bad-good"]?.ready).toBe(true);
    expect(byName["t-bad-bad"]?.ready).toBe(false);
    expect(byName["t-bad-bad"]?.message).toMatch(
      /validation failed, nothing applied: Deployment\/t-bad\/broken: .*replicas/,
    );
    expect(await getObject(k.client, cm("t-bad", "good"))).toBeDefined();
    expect(await getObject(k.client, cm("t-bad", "first"))).toBeUndefined();
    expect(byName["t-bad"]?.ready).toBe(true);
  });

  it("an immutable-field change fails validation, unless spec.force recreates the object (as Flux does)", async () => {
    const repo = k.fleet();
    const web = (app: string) => {
      const d = deployment("web", "t-force");
      return {
        ...d,
        spec: {
          ...d.spec,
          selector: { matchLabels: { app } },
          template: { ...d.spec.template, metadata: { labels: { app } } },
        },
      };
    };
    const ks = (force: boolean) => [
      namespace("t-force"),
      kustomization("t-force-apps", { path: "./apps", force }),
    ];
    repo.commit({ "clusters/test/ks.yaml": ks(false), "apps/web.yaml": [web("v1")] });
    const agent = k.agent(repo, "t-force");
    await agent.once();
    const before = await getObject(k.client, deploy("t-force", "web"));
    repo.commit({ "apps/web.yaml": [web("v2")] });
    const refused = await agent.pass(never, true);
    expect(refused.reconciled.find((k) => k.name === "t-force-apps")?.message).toMatch(
      /nothing applied: .*field is immutable/,
    );
    repo.commit({ "clusters/test/ks.yaml": ks(true) });
    const forced = await agent.pass(never, true);
    expect(forced.reconciled.find((k) => k.name === "t-force-apps")?.ready).toBe(true);
    const after = await getObject(k.client, deploy("t-force", "web"));
    expect(after?.spec.selector.matchLabels.app).toBe("v2");
    expect(after?.metadata.uid).not.toBe(before?.metadata.uid);
  });

  it("installs a CRD and its custom resources in one apply (CRDs first)", async () => {
    const repo = k.fleet();
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "widgets.example.com" },
      spec: {
        group: "example.com",
        names: { kind: "Widget", plural: "widgets", singular: "widget", listKind: "WidgetList" },
        scope: "Namespaced",
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: "object",
                properties: { spec: { type: "object", properties: { size: { type: "integer" } } } },
              },
            },
          },
        ],
      },
    };
    repo.commit({
      "clusters/test/all.yaml": [
        {
          apiVersion: "example.com/v1",
          kind: "Widget",
          metadata: { name: "w", namespace: "t-crd" },
          spec: { size: 3 },
        },
        crd,
        namespace("t-crd"),
      ],
    });
    const agent = k.agent(repo, "t-crd");
    const res = await agent.once();
    expect(res.reconciled[0]?.ready).toBe(true);
    expect((await getObject(k.client, "/apis/example.com/v1/namespaces/t-crd/widgets/w"))?.spec.size).toBe(3);
  });
});

describe("dependsOn and health", () => {
  const readyStatus = (generation: number, replicas: number) => ({
    status: {
      observedGeneration: generation,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
    },
  });

  it("waits for workloads with a timeout, and holds back dependents until their dependency is ready", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-dep"),
        kustomization("t-dep-infra", { path: "./infra", wait: true, timeout: "2s" }),
        kustomization("t-dep-apps", { path: "./apps", dependsOn: [{ name: "t-dep-infra" }] }),
      ],
      "infra/db.yaml": [deployment("db", "t-dep")],
      "apps/app.yaml": [configMap("app", "t-dep", { needs: "db" })],
    });
    const agent = k.agent(repo, "t-dep");
    const first = await agent.once();
    const byName = Object.fromEntries(first.reconciled.map((k) => [k.name, k]));
    // No controller runs, so the Deployment never becomes available by itself.
    expect(byName["t-dep-infra"]?.ready).toBe(false);
    expect(byName["t-dep-infra"]?.reason).toBe("HealthCheckFailed");
    expect(byName["t-dep-infra"]?.message).toMatch(/timeout waiting for: Deployment\/t-dep\/db/);
    expect(byName["t-dep-apps"]?.reason).toBe("DependencyNotReady");
    expect(await getObject(k.client, cm("t-dep", "app"))).toBeUndefined();
    const healthy = (await ksStatus(k.client, "t-dep-infra")).ks?.status.conditions.find(
      (c: { type: string }) => c.type === "Healthy",
    );
    expect(healthy?.status).toBe("False");

    // Playing the controller: the rollout completes while the agent waits.
    const slow = k.agent(repo, "t-dep");
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-dep"),
        kustomization("t-dep-infra", { path: "./infra", wait: true, timeout: "30s" }),
        kustomization("t-dep-apps", { path: "./apps", dependsOn: [{ name: "t-dep-infra" }] }),
      ],
    });
    const running = slow.once();
    const db = await waitFor(() => getObject(k.client, deploy("t-dep", "db")));
    await new Promise((r) => setTimeout(r, 500));
    await patchObject(k.client, `${deploy("t-dep", "db")}/status`, readyStatus(db.metadata.generation, 1), {
      fieldManager: "kube-controller-manager",
    });
    const second = await running;
    const after = Object.fromEntries(second.reconciled.map((k) => [k.name, k]));
    expect(after["t-dep-infra"]?.ready).toBe(true);
    expect(after["t-dep-apps"]?.ready).toBe(true);
    expect(await getObject(k.client, cm("t-dep", "app"))).toBeDefined();
    // Order shows in the status: the dependent became ready after its dependency.
    const t = async (n: string) => Date.parse((await ksStatus(k.client, n)).ready?.lastTransitionTime ?? "");
    expect(await t("t-dep-apps")).toBeGreaterThanOrEqual(await t("t-dep-infra"));
  });
});

describe("suspend and resume", () => {
  it("a suspended Kustomization keeps manual changes and ignores git until resumed (CLI)", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [namespace("t-susp"), kustomization("t-susp-apps", { path: "./apps" })],
      "apps/cm.yaml": [configMap("cfg", "t-susp", { v: "git-1" })],
    });
    const agent = k.agent(repo, "t-susp");
    await agent.once();
    const kcfg = k.kube.kubeconfig;
    const s = await runCli(["suspend", "kustomization", "t-susp-apps", "--kubeconfig", kcfg]);
    expect(s).toMatchObject({ code: 0, stdout: "suspended Kustomization shipmate-system/t-susp-apps\n" });

    await patchObject(k.client, cm("t-susp", "cfg"), { data: { v: "manual" } });
    repo.commit({ "apps/cm.yaml": [configMap("cfg", "t-susp", { v: "git-2" })] });
    await agent.pass(never, false);
    expect((await getObject(k.client, cm("t-susp", "cfg")))?.data.v).toBe("manual");
    const get = await runCli(["get", "kustomizations", "--kubeconfig", kcfg]);
    expect(get.stdout).toMatch(/t-susp-apps\s+main@sha1:\w+\s+True\s+True/);

    const r = await runCli(["resume", "kustomization", "t-susp-apps", "--no-wait", "--kubeconfig", kcfg]);
    expect(r.code).toBe(0);
    await agent.pass(never, false);
    expect((await getObject(k.client, cm("t-susp", "cfg")))?.data.v).toBe("git-2");
    const status = await ksStatus(k.client, "t-susp-apps");
    expect(status.ks?.status.lastHandledReconcileAt).toBe(
      status.ks?.metadata.annotations["reconcile.fluxcd.io/requestedAt"],
    );
  });

  it("suspend and resume of a Kustomization that does not exist fail with one line", async () => {
    const res = await runCli(["suspend", "kustomization", "nope", "--kubeconfig", k.kube.kubeconfig]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe("shipmate suspend: Kustomization shipmate-system/nope not found\n");
  });
});

describe("leadership", () => {
  it("an apply whose leadership ended sends no write (validation only)", async () => {
    await k.client.raw({ method: "POST", path: "/api/v1/namespaces", body: namespace("t-lost") });
    const discovery = new Discovery(k.client);
    const applier = new Applier(k.client, discovery);
    const lost = new AbortController();
    lost.abort();
    const writesBefore = k.client.counts.writes;
    const attempt = applier.apply({
      objects: [configMap("x", "t-lost", { a: "1" })],
      previous: [],
      owner: { name: "t-lost", namespace: "shipmate-system" },
      writeAhead: async () => {},
      signal: lost.signal,
    });
    await expect(attempt).rejects.toThrow(/no longer holds the leader lease/);
    expect(k.client.counts.writes).toBe(writesBefore);
    expect(await getObject(k.client, cm("t-lost", "x"))).toBeUndefined();
  });
});

describe("git unreachable", () => {
  it("says so in the status and leaves the cluster as it was", async () => {
    const repo = k.fleet();
    repo.commit({ "clusters/test/cm.yaml": [namespace("t-git"), configMap("cfg", "t-git", { v: "1" })] });
    const agent = k.agent(repo, "t-git");
    await agent.once();
    const applied = (await ksStatus(k.client, "t-git")).ks?.status.lastAppliedRevision;
    await patchObject(k.client, cm("t-git", "cfg"), { data: { v: "drifted" } });
    const drifted = await getObject(k.client, cm("t-git", "cfg"));

    renameSync(repo.bare, `${repo.bare}.gone`);
    const res = await agent.pass(never, true);
    expect(res.sourceError).toMatch(/git fetch file:\/\/.*fleet\.git \(branch main\)/);
    const s = await ksStatus(k.client, "t-git");
    expect(s.ready).toMatchObject({ status: "False", reason: "ArtifactFailed" });
    expect(s.ready?.message).toMatch(/git fetch .*the cluster is left as last applied/);
    expect(s.ks?.status.lastAppliedRevision).toBe(applied);
    expect((await getObject(k.client, cm("t-git", "cfg")))?.metadata.resourceVersion).toBe(
      drifted?.metadata.resourceVersion,
    );
    const events = await getObject(
      k.client,
      "/api/v1/namespaces/shipmate-system/events?fieldSelector=involvedObject.name%3Dt-git",
    );
    expect(events?.items.some((e: { reason: string }) => e.reason === "ArtifactFailed")).toBe(true);

    renameSync(`${repo.bare}.gone`, repo.bare);
    const back = await agent.pass(never, false);
    expect(back.reconciled[0]?.ready).toBe(true);
    expect((await getObject(k.client, cm("t-git", "cfg")))?.data.v).toBe("1");
  });
});

const waitFor = <T>(fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> =>
  poll(fn, { ms, every: 100 });
