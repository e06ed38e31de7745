/**
 * Multi-tenancy on a real kube-apiserver with RBAC on: Kustomizations with
 * `serviceAccountName` are applied, pruned and health-checked as that
 * ServiceAccount (Flux's impersonation), and the lockdown flags
 * (`--default-service-account`, `--no-cross-namespace-refs`,
 * `--no-remote-bases`) refuse what Flux refuses. Each test owns its root
 * Kustomization name and its `te-*` namespaces.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import {
  applyTenant,
  configMap,
  type FleetRepo,
  getObject,
  ksStatus,
  namespace,
  patchObject,
  serviceAccountToken,
  tenant,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

const k = kubeSuite({ name: "tenancy", aggregateRoles: true });

const cm = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;

/** A tenant's Kustomization in its own namespace, reading the agent's fleet repository. */
const tenantKs = (ns: string, name: string, root: string, spec: Record<string, unknown>) => ({
  apiVersion: "kustomize.toolkit.fluxcd.io/v1",
  kind: "Kustomization",
  metadata: { name, namespace: ns },
  spec: {
    interval: "1m",
    prune: true,
    sourceRef: { kind: "GitRepository", name: root, namespace: "shipmate-system" },
    ...spec,
  },
});

/** `shipmate agent --once --json` with this kubeconfig, as a deployed agent would run. */
async function cliOnce(repo: FleetRepo, name: string, kubeconfig: string, ...flags: string[]) {
  const r = await runCli([
    "agent",
    ...["--repo", repo.url, "--path", "clusters/test", "--name", name, "--namespace", "shipmate-system"],
    ...["--kubeconfig", kubeconfig, "--workdir", join(repo.root, `cli-${name}`)],
    ...["--once", "--json", "--log-level", "silent", ...flags],
  ]);
  return { code: r.code, byKey: byKey(JSON.parse(r.stdout)) };
}

function byKey(res: Awaited<ReturnType<Agent["once"]>>) {
  return Object.fromEntries(res.reconciled.map((k) => [`${k.namespace}/${k.name}`, k]));
}

describe("spec.serviceAccountName: a tenant writes only what its ServiceAccount may", () => {
  it("inside its namespace it reconciles; a ClusterRoleBinding, a Namespace and another team's object fail the apply with nothing written; the other tenant is untouched", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/tenants.yaml": [
        ...tenant("te-a"),
        ...tenant("te-b"),
        tenantKs("te-a", "apps", "te-sa", { path: "./teams/a/apps", serviceAccountName: "reconciler" }),
        tenantKs("te-a", "escape", "te-sa", { path: "./teams/a/escape", serviceAccountName: "reconciler" }),
        tenantKs("te-b", "apps", "te-sa", { path: "./teams/b/apps", serviceAccountName: "reconciler" }),
      ],
      "teams/a/apps/cm.yaml": [configMap("settings", "te-a", { team: "a" })],
      "teams/a/escape/all.yaml": [
        configMap("harmless", "te-a", { v: "1" }),
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: "te-a-takeover" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
          subjects: [{ kind: "ServiceAccount", name: "reconciler", namespace: "te-a" }],
        },
        namespace("te-a-extra"),
        configMap("planted", "te-b", { by: "team a" }),
      ],
      "teams/b/apps/cm.yaml": [configMap("settings", "te-b", { team: "b" })],
    });
    const res = byKey(await k.agent(repo, "te-sa").once());
    expect(res["te-a/apps"]).toMatchObject({ ready: true });
    expect(res["te-b/apps"]).toMatchObject({ ready: true });
    const escaping = res["te-a/escape"];
    expect(escaping).toMatchObject({ ready: false, reason: "ReconciliationFailed" });
    expect(escaping?.message).toMatch(/^validation failed, nothing applied: /);
    for (const forbidden of [
      "ClusterRoleBinding/te-a-takeover",
      "Namespace/te-a-extra",
      "ConfigMap/te-b/planted",
    ])
      expect(escaping?.message).toContain(forbidden);
    expect(escaping?.message).toContain('User "system:serviceaccount:te-a:reconciler" cannot');
    expect(escaping?.message).not.toContain("\n");
    // Nothing of it half-applied: not even the object it was allowed to write.
    expect(await getObject(k.client, cm("te-a", "harmless"))).toBeUndefined();
    expect(
      await getObject(k.client, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/te-a-takeover"),
    ).toBeUndefined();
    expect(await getObject(k.client, "/api/v1/namespaces/te-a-extra")).toBeUndefined();
    expect(await getObject(k.client, cm("te-b", "planted"))).toBeUndefined();
    expect((await getObject(k.client, cm("te-b", "settings")))?.data).toEqual({ team: "b" });
    expect((await ksStatus(k.client, "escape", "te-a")).ks?.status.inventory?.entries ?? []).toEqual([]);

    // Pruning runs as the tenant too, and so does the deletion of a tenant's Kustomization.
    repo.commit({
      "teams/a/apps/cm.yaml": [configMap("renamed", "te-a", { team: "a" })],
      "clusters/test/tenants.yaml": [
        ...tenant("te-a"),
        ...tenant("te-b"),
        tenantKs("te-a", "apps", "te-sa", { path: "./teams/a/apps", serviceAccountName: "reconciler" }),
      ],
    });
    const again = byKey(await k.agent(repo, "te-sa").once());
    expect(again["te-a/apps"]).toMatchObject({ ready: true });
    expect(await getObject(k.client, cm("te-a", "settings"))).toBeUndefined();
    expect(await getObject(k.client, cm("te-a", "renamed"))).toBeDefined();
    expect(await getObject(k.client, cm("te-b", "settings"))).toBeUndefined();
    expect((await ksStatus(k.client, "apps", "te-b")).ks).toBeUndefined();
  });

  it("a missing ServiceAccount is never Ready, even where RBAC still grants its name, and is retried until it exists", async () => {
    const repo = k.fleet();
    const ghostBinding = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "ghost-admin", namespace: "te-c" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
      subjects: [{ kind: "ServiceAccount", name: "ghost", namespace: "te-c" }],
    };
    repo.commit({
      "clusters/test/tenants.yaml": [
        namespace("te-c"),
        ghostBinding,
        tenantKs("te-c", "apps", "te-ghost", { path: "./apps", serviceAccountName: "ghost" }),
      ],
      "apps/cm.yaml": [configMap("settings", "te-c", { v: "1" })],
    });
    const res = byKey(await k.agent(repo, "te-ghost").once());
    expect(res["te-c/apps"]).toMatchObject({
      ready: false,
      reason: "ReconciliationFailed",
      message:
        "ServiceAccount 'te-c/ghost' (spec.serviceAccountName) not found on the local cluster: its objects are applied only as that account; nothing applied",
    });
    expect(await getObject(k.client, cm("te-c", "settings"))).toBeUndefined();
    const stalled = (await ksStatus(k.client, "apps", "te-c")).ks?.status.conditions.find(
      (c: { type: string }) => c.type === "Stalled",
    );
    expect(stalled?.status ?? "False").toBe("False");

    repo.commit({
      "clusters/test/tenants.yaml": [
        namespace("te-c"),
        ghostBinding,
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "ghost", namespace: "te-c" } },
        tenantKs("te-c", "apps", "te-ghost", { path: "./apps", serviceAccountName: "ghost" }),
      ],
    });
    const again = byKey(await k.agent(repo, "te-ghost").once());
    expect(again["te-c/apps"]).toMatchObject({ ready: true });
    expect(await getObject(k.client, cm("te-c", "settings"))).toBeDefined();
  });

  it("the API server gives the impersonated account its groups: rights granted to system:serviceaccounts:<ns> apply", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/tenants.yaml": [
        namespace("te-d"),
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "reconciler", namespace: "te-d" } },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name: "all-accounts-edit", namespace: "te-d" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
          subjects: [
            { apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:serviceaccounts:te-d" },
          ],
        },
        tenantKs("te-d", "apps", "te-group", { path: "./apps", serviceAccountName: "reconciler" }),
      ],
      "apps/cm.yaml": [configMap("settings", "te-d", { v: "1" })],
    });
    const res = byKey(await k.agent(repo, "te-group").once());
    expect(res["te-d/apps"]).toMatchObject({ ready: true });
    expect(await getObject(k.client, cm("te-d", "settings"))).toBeDefined();
  });

  it("drift is read and reverted as the tenant, and health checks read as the tenant too", async () => {
    // An object only the agent could read: a tenant's health check on it never passes.
    await k.client.raw({ method: "POST", path: "/api/v1/namespaces", body: namespace("te-i-platform") });
    await k.client.raw({
      method: "POST",
      path: "/api/v1/namespaces/te-i-platform/configmaps",
      body: configMap("probe", "te-i-platform", { v: "1" }),
    });
    const repo = k.fleet();
    repo.commit({
      "clusters/test/tenants.yaml": [
        ...tenant("te-i"),
        tenantKs("te-i", "apps", "te-drift", { path: "./apps", serviceAccountName: "reconciler" }),
        tenantKs("te-i", "watch", "te-drift", {
          path: "./watch",
          serviceAccountName: "reconciler",
          timeout: "2s",
          healthChecks: [{ apiVersion: "v1", kind: "ConfigMap", name: "probe", namespace: "te-i-platform" }],
        }),
      ],
      "apps/cm.yaml": [configMap("settings", "te-i", { v: "git" })],
      "watch/cm.yaml": [configMap("watched", "te-i", { v: "1" })],
    });
    const res = byKey(await k.agent(repo, "te-drift").once());
    expect(res["te-i/apps"]).toMatchObject({ ready: true });
    expect(res["te-i/watch"]).toMatchObject({
      ready: false,
      reason: "HealthCheckFailed",
      message: "timeout waiting for: ConfigMap/te-i-platform/probe: unreadable (Forbidden)",
    });
    await patchObject(k.client, cm("te-i", "settings"), { data: { v: "hand-edited" } });
    const again = byKey(await k.agent(repo, "te-drift").once());
    expect(again["te-i/apps"]).toMatchObject({ ready: true });
    expect((await getObject(k.client, cm("te-i", "settings")))?.data).toEqual({ v: "git" });
  });
});

describe("deploy/agent RBAC, with the agent's real service-account token", () => {
  it("grants impersonation: a tenant's Kustomization is applied as the tenant by the least-privilege agent", async () => {
    execFileSync("kubectl", [
      "--kubeconfig",
      k.kube.kubeconfig,
      "apply",
      "--server-side",
      "-k",
      join(import.meta.dirname, "../../deploy/agent"),
    ]);
    const token = await serviceAccountToken(k.client, "shipmate-system", "shipmate-agent");
    // The platform's part (RBAC, which the least-privilege agent may not write) is done by an admin.
    await applyTenant(k.client, "te-j");
    const repo = k.fleet();
    repo.commit({
      "clusters/test/tenants.yaml": [
        tenantKs("te-j", "apps", "te-rbac", { path: "./apps", serviceAccountName: "reconciler" }),
      ],
      "apps/cm.yaml": [configMap("settings", "te-j", { v: "1" })],
    });
    const { code, byKey: out } = await cliOnce(
      repo,
      "te-rbac",
      k.kube.kubeconfigFor(token, "shipmate-agent"),
    );
    expect(out["te-j/apps"]).toMatchObject({ ready: true });
    expect(code).toBe(0);
    expect(await getObject(k.client, cm("te-j", "settings"))).toBeDefined();
  });
});

describe("lockdown flags, as Flux's kustomize-controller has them", () => {
  it("--default-service-account: a Kustomization without serviceAccountName is reconciled as that account of its namespace; the agent's root is not", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/tenants.yaml": [
        ...tenant("te-e"),
        tenantKs("te-e", "apps", "te-default", { path: "./apps" }),
        tenantKs("te-e", "cluster-wide", "te-default", { path: "./cluster" }),
      ],
      "apps/cm.yaml": [configMap("settings", "te-e", { v: "1" })],
      "cluster/role.yaml": [
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          metadata: { name: "te-e-wants-this" },
          rules: [],
        },
      ],
    });
    const res = byKey(await k.agent(repo, "te-default", { defaultServiceAccount: "reconciler" }).once());
    expect(res["shipmate-system/te-default"]).toMatchObject({ ready: true });
    expect(res["te-e/apps"]).toMatchObject({ ready: true });
    expect(res["te-e/cluster-wide"]).toMatchObject({ ready: false, reason: "ReconciliationFailed" });
    expect(res["te-e/cluster-wide"]?.message).toContain(
      'ClusterRole/te-e-wants-this: clusterroles.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:te-e:reconciler"',
    );
    expect(
      await getObject(k.client, "/apis/rbac.authorization.k8s.io/v1/clusterroles/te-e-wants-this"),
    ).toBeUndefined();
  });

  it("--no-cross-namespace-refs: a sourceRef or dependsOn into another namespace is Stalled AccessDenied before the source is read", async () => {
    const repo = k.fleet();
    const ownSource = {
      apiVersion: "source.toolkit.fluxcd.io/v1",
      kind: "GitRepository",
      metadata: { name: "team", namespace: "te-f" },
      spec: { interval: "1m", url: repo.url, ref: { branch: "main" } },
    };
    repo.commit({
      "clusters/test/tenants.yaml": [
        namespace("te-f"),
        ownSource,
        tenantKs("te-f", "borrowed", "te-xns", { path: "./apps" }),
        {
          ...tenantKs("te-f", "own", "te-xns", { path: "./apps" }),
          spec: {
            interval: "1m",
            prune: true,
            path: "./apps",
            sourceRef: { kind: "GitRepository", name: "team" },
          },
        },
        {
          ...tenantKs("te-f", "after", "te-xns", {}),
          spec: {
            interval: "1m",
            prune: true,
            path: "./later",
            sourceRef: { kind: "GitRepository", name: "team" },
            dependsOn: [{ name: "te-xns", namespace: "shipmate-system" }],
          },
        },
      ],
      "apps/cm.yaml": [configMap("settings", "te-f", { v: "1" })],
      "later/cm.yaml": [configMap("later", "te-f", { v: "1" })],
    });
    const res = byKey(await k.agent(repo, "te-xns", { noCrossNamespaceRefs: true }).once());
    expect(res["te-f/own"]).toMatchObject({ ready: true });
    expect(res["te-f/borrowed"]).toMatchObject({
      ready: false,
      reason: "AccessDenied",
      message:
        "can't access 'GitRepository/shipmate-system/te-xns', cross-namespace references have been blocked (--no-cross-namespace-refs)",
    });
    expect(res["te-f/after"]).toMatchObject({ ready: false, reason: "AccessDenied" });
    expect(res["te-f/after"]?.message).toContain("can't depend on 'shipmate-system/te-xns'");
    const stalled = (await ksStatus(k.client, "borrowed", "te-f")).ks?.status.conditions.find(
      (c: { type: string }) => c.type === "Stalled",
    );
    expect(stalled).toMatchObject({ status: "True", reason: "AccessDenied" });
    expect(await getObject(k.client, cm("te-f", "later"))).toBeUndefined();
  });

  it("--no-remote-bases: a kustomization that would fetch from the network fails its build before kustomize runs", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("te-g"),
        tenantKs("te-g", "remote", "te-bases", { path: "./remote" }),
        tenantKs("te-g", "local", "te-bases", { path: "./local" }),
      ],
      "remote/kustomization.yaml":
        "resources:\n  - cm.yaml\n  - https://raw.githubusercontent.com/example/fleet/main/cm.yaml\n",
      "remote/cm.yaml": [configMap("remote", "te-g", { v: "1" })],
      "local/cm.yaml": [configMap("local", "te-g", { v: "1" })],
    });
    const res = byKey(await k.agent(repo, "te-bases", { noRemoteBases: true }).once());
    expect(res["te-g/local"]).toMatchObject({ ready: true });
    expect(res["te-g/remote"]).toMatchObject({
      ready: false,
      reason: "BuildFailed",
      message:
        'remote bases are not allowed (--no-remote-bases): path "./remote" refers to "https://raw.githubusercontent.com/example/fleet/main/cm.yaml" in remote/kustomization.yaml; every resource must be a file or directory of the source',
    });
    expect(await getObject(k.client, cm("te-g", "remote"))).toBeUndefined();
  });

  it("the CLI takes the three flags (shipmate agent --once)", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/tenants.yaml": [
        ...tenant("te-h"),
        tenantKs("te-h", "apps", "te-cli", { path: "./apps" }),
      ],
      "apps/cm.yaml": [configMap("settings", "te-h", { v: "1" })],
    });
    const { code, byKey: out } = await cliOnce(
      repo,
      "te-cli",
      k.kube.kubeconfig,
      ...["--default-service-account", "reconciler", "--no-cross-namespace-refs", "--no-remote-bases"],
    );
    expect(out["te-h/apps"]).toMatchObject({ ready: false, reason: "AccessDenied" });
    expect(code).toBe(1);
    const bad = await runCli([
      "agent",
      "--repo",
      repo.url,
      "--path",
      "x",
      "--default-service-account",
      "Not_A_Name",
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--default-service-account "Not_A_Name" is not a service account name');
  });
});
