/**
 * HelmRelease multi-tenancy and remote clusters on real parts: two
 * kube-apiservers with RBAC on (a hub running the agent, a spoke reached
 * through `spec.kubeConfig.secretRef`), a static chart repository, the real
 * helm. A release is installed as its `serviceAccountName` (or the agent's
 * `--default-service-account`) in the HelmRelease's namespace, exactly as
 * Flux's helm-controller impersonates; a remote release lives on the spoke,
 * objects and storage. Whatever cannot be had (the account, the Secret, the
 * cluster) is Ready=False with nothing installed anywhere.
 */
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import {
  type ApiJson,
  adminClient,
  aggregateClusterRoles,
  applyTenant,
  FleetRepo,
  getObject,
  makeAgent,
  namespace,
} from "../agent/helpers.ts";
import { type ChartServer, configMapChart, startChartServer } from "../infra/charts.ts";
import { freePort, type KubeCluster, startKube } from "../infra/kube.ts";

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let hub: KubeCluster;
let spoke: KubeCluster;
let hubClient: KubeClient;
let spokeClient: KubeClient;
let charts: ChartServer;
const repos: FleetRepo[] = [];
const agents: Agent[] = [];

beforeAll(async () => {
  [hub, spoke, charts] = await Promise.all([
    startKube({ name: "helm-hub" }),
    startKube({ name: "helm-spoke" }),
    startChartServer(),
  ]);
  hubClient = adminClient(hub);
  spokeClient = adminClient(spoke);
  await Promise.all([aggregateClusterRoles(hubClient), aggregateClusterRoles(spokeClient)]);
});
afterAll(async () => {
  for (const a of agents) a.close();
  hubClient?.close();
  spokeClient?.close();
  for (const r of repos) r.remove();
  await charts?.stop();
  await Promise.all([hub?.stop(), spoke?.stop()]);
});

function setup(name: string, extra: Parameters<typeof makeAgent>[2] = {}): { repo: FleetRepo; agent: Agent } {
  const repo = FleetRepo.create();
  repos.push(repo);
  const agent = makeAgent(hub, repo, { name, remoteApiRetryMs: 500, ...extra });
  agents.push(agent);
  return { repo, agent };
}

const helmRepository = (ns: string, url: string) => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "HelmRepository",
  metadata: { name: "charts", namespace: ns },
  spec: { interval: "10m", url },
});
const helmRelease = (ns: string, name: string, chart: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: "helm.toolkit.fluxcd.io/v2",
  kind: "HelmRelease",
  metadata: { name, namespace: ns },
  spec: {
    interval: "10m",
    timeout: "30s",
    chart: { spec: { chart, sourceRef: { kind: "HelmRepository", name: "charts" } } },
    ...spec,
  },
});

/** A chart with an object no namespace admin may create: a ClusterRole, and a ConfigMap beside it. */
const grabbyChart = (clusterRole: string) =>
  configMapChart("grabby", "1.0.0", {
    templates: {
      ...configMapChart("grabby", "1.0.0").templates,
      "clusterrole.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ${clusterRole}
rules: []
`,
    },
  });

const hrPath = (ns: string, name: string) =>
  `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${ns}/helmreleases/${name}`;
const cmPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;
const rolePath = (name: string) => `/apis/rbac.authorization.k8s.io/v1/clusterroles/${name}`;
const ready = async (client: KubeClient, ns: string, name: string) =>
  ((await getObject(client, hrPath(ns, name)))?.status?.conditions ?? []).find(
    (c: ApiJson) => c.type === "Ready",
  );

/** The release's records in Helm's storage (`sh.helm.release.v1.<name>.v<N>` Secrets). */
async function stored(client: KubeClient, ns: string, release: string): Promise<string[]> {
  const res = await client.raw({
    method: "GET",
    path: `/api/v1/namespaces/${ns}/secrets`,
    query: { labelSelector: `owner=helm,name=${release}` },
  });
  if (res.code === 404) return [];
  return ((res.body as ApiJson).items ?? []).map((s: ApiJson) => s.metadata.name);
}

describe("HelmRelease serviceAccountName", () => {
  it("installs as the ServiceAccount: inside its rights the release is made, a ClusterRole outside them fails with nothing of it written, a missing account installs nothing", async () => {
    const ns = "ht-team";
    await applyTenant(hubClient, ns);
    const chartRepo = charts.repository("tenant");
    chartRepo.publish(configMapChart("app", "1.0.0"));
    chartRepo.publish(grabbyChart("ht-grab"));
    const { repo, agent } = setup("ht-sa");
    repo.commit({
      "clusters/test/team.yaml": [
        helmRepository(ns, chartRepo.url),
        helmRelease(ns, "app", "app", { serviceAccountName: "reconciler" }),
        helmRelease(ns, "grab", "grabby", { serviceAccountName: "reconciler" }),
        helmRelease(ns, "nosa", "app", { serviceAccountName: "nobody" }),
      ],
    });
    await agent.once();

    expect(await ready(hubClient, ns, "app")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    expect((await getObject(hubClient, cmPath(ns, "app-config")))?.data.version).toBe("1.0.0");
    expect(await stored(hubClient, ns, "app")).toEqual(["sh.helm.release.v1.app.v1"]);

    const grab = await ready(hubClient, ns, "grab");
    expect(grab).toMatchObject({ status: "False", reason: "InstallFailed" });
    expect(grab.message).toContain(
      'User "system:serviceaccount:ht-team:reconciler" cannot get resource "clusterroles"',
    );
    // Nothing of it written: Helm checks every object as the account before creating any, or a record.
    expect(await getObject(hubClient, rolePath("ht-grab"))).toBeUndefined();
    expect(await getObject(hubClient, cmPath(ns, "grab-config"))).toBeUndefined();
    expect(await stored(hubClient, ns, "grab")).toEqual([]);

    const nosa = await ready(hubClient, ns, "nosa");
    expect(nosa).toMatchObject({
      status: "False",
      reason: "RESTClientError",
      message:
        "ServiceAccount 'ht-team/nobody' (spec.serviceAccountName) not found on the local cluster: its objects are applied only as that account; nothing installed",
    });
    expect(await stored(hubClient, ns, "nosa")).toEqual([]);
    expect(await getObject(hubClient, cmPath(ns, "nosa-config"))).toBeUndefined();

    // Removed from git: uninstalled as the account.
    repo.commit({
      "clusters/test/team.yaml": [
        helmRepository(ns, chartRepo.url),
        helmRelease(ns, "grab", "grabby", { serviceAccountName: "reconciler" }),
        helmRelease(ns, "nosa", "app", { serviceAccountName: "nobody" }),
      ],
    });
    await agent.once();
    expect(await getObject(hubClient, hrPath(ns, "app"))).toBeUndefined();
    expect(await getObject(hubClient, cmPath(ns, "app-config"))).toBeUndefined();
    expect(await stored(hubClient, ns, "app")).toEqual([]);
  });

  it("--default-service-account: a HelmRelease without serviceAccountName is installed as that account of its own namespace, and is not Ready where the account is missing", async () => {
    await applyTenant(hubClient, "ht-default");
    await hubClient.raw({
      method: "POST",
      path: "/api/v1/namespaces",
      body: { apiVersion: "v1", kind: "Namespace", metadata: { name: "ht-nosa" } },
    });
    const chartRepo = charts.repository("default-sa");
    chartRepo.publish(configMapChart("app", "1.0.0"));
    chartRepo.publish(grabbyChart("ht-default-grab"));
    const { repo, agent } = setup("ht-default", { defaultServiceAccount: "reconciler" });
    repo.commit({
      "clusters/test/team.yaml": [
        helmRepository("ht-default", chartRepo.url),
        helmRelease("ht-default", "app", "app"),
        helmRelease("ht-default", "grab", "grabby"),
        helmRepository("ht-nosa", chartRepo.url),
        helmRelease("ht-nosa", "app", "app"),
      ],
    });
    await agent.once();
    expect(await ready(hubClient, "ht-default", "app")).toMatchObject({ status: "True" });
    const grab = await ready(hubClient, "ht-default", "grab");
    expect(grab).toMatchObject({ status: "False", reason: "InstallFailed" });
    expect(grab.message).toContain(
      'User "system:serviceaccount:ht-default:reconciler" cannot get resource "clusterroles"',
    );
    expect(await getObject(hubClient, rolePath("ht-default-grab"))).toBeUndefined();
    expect(await ready(hubClient, "ht-nosa", "app")).toMatchObject({
      status: "False",
      reason: "RESTClientError",
      message:
        "ServiceAccount 'ht-nosa/reconciler' (--default-service-account) not found on the local cluster: its objects are applied only as that account; nothing installed",
    });
    expect(await stored(hubClient, "ht-nosa", "app")).toEqual([]);
    expect(await getObject(hubClient, cmPath("ht-nosa", "app-config"))).toBeUndefined();
  });
});

async function createSecret(client: KubeClient, ns: string, name: string, data: Record<string, string>) {
  await client.raw({
    method: "POST",
    path: "/api/v1/namespaces",
    body: { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } },
  });
  const res = await client.raw({
    method: "POST",
    path: `/api/v1/namespaces/${ns}/secrets`,
    body: { apiVersion: "v1", kind: "Secret", metadata: { name, namespace: ns }, stringData: data },
  });
  if (res.code !== 201)
    throw new Error(`create secret ${ns}/${name}: ${res.code} ${JSON.stringify(res.body)}`);
}

describe("HelmRelease kubeConfig.secretRef", () => {
  it("installs on the spoke only, release storage included; upgrades and uninstalls there; a missing Secret or an unreachable spoke installs nothing anywhere", async () => {
    const ns = "hs-staging";
    const kubeconfigText = readFileSync(spoke.kubeconfigFor(spoke.adminToken, "spoke-admin"), "utf8");
    await createSecret(hubClient, ns, "cluster-kubeconfig", { "value.yaml": kubeconfigText });
    const port = await freePort();
    await createSecret(hubClient, ns, "gone-kubeconfig", {
      value: kubeconfigText.replace(
        /server: https:\/\/127\.0\.0\.1:\d+/,
        `server: https://127.0.0.1:${port}`,
      ),
    });
    const chartRepo = charts.repository("spoke");
    chartRepo.publish(configMapChart("podinfo", "1.0.0"));
    const { repo, agent } = setup("hs-remote");
    // As flux2-hub-spoke-example writes them: the release's namespaces on the spoke, created by the install;
    // the release is named `<targetNamespace>-<name>`, Flux's default.
    const spokeRelease = (name: string, secret: string) =>
      helmRelease(ns, name, "podinfo", {
        targetNamespace: "podinfo",
        storageNamespace: "podinfo",
        install: { createNamespace: true },
        kubeConfig: { secretRef: { name: secret } },
      });
    const files = (...releases: object[]) => ({
      "clusters/test/hub.yaml": [namespace(ns), helmRepository(ns, chartRepo.url), ...releases],
    });
    repo.commit(files(spokeRelease("podinfo", "cluster-kubeconfig")));
    await agent.once();
    expect(await ready(hubClient, ns, "podinfo")).toMatchObject({
      status: "True",
      reason: "InstallSucceeded",
    });
    expect((await getObject(spokeClient, cmPath("podinfo", "podinfo-podinfo-config")))?.data.version).toBe(
      "1.0.0",
    );
    expect(await stored(spokeClient, "podinfo", "podinfo-podinfo")).toEqual([
      "sh.helm.release.v1.podinfo-podinfo.v1",
    ]);
    // Nothing of it on the hub: no namespace, no object, no release record.
    expect(await getObject(hubClient, "/api/v1/namespaces/podinfo")).toBeUndefined();
    expect(await stored(hubClient, ns, "podinfo-podinfo")).toEqual([]);
    expect(await stored(hubClient, "podinfo", "podinfo-podinfo")).toEqual([]);

    // A new chart version: upgraded on the spoke; a second pass is a no-op.
    chartRepo.publish(configMapChart("podinfo", "1.1.0"));
    // (Each agent reconciles every HelmRelease of the cluster: the reports are filtered to this one.)
    const mine = (sum: Awaited<ReturnType<Agent["pass"]>>) =>
      sum.helmReleases.find((r) => r.namespace === ns && r.name === "podinfo");
    const upgraded = await agent.pass(new AbortController().signal, true);
    expect(mine(upgraded)).toMatchObject({ ready: true, reason: "UpgradeSucceeded", actions: ["upgrade"] });
    expect((await getObject(spokeClient, cmPath("podinfo", "podinfo-podinfo-config")))?.data.version).toBe(
      "1.1.0",
    );
    expect(await stored(spokeClient, "podinfo", "podinfo-podinfo")).toHaveLength(2);
    const noop = await agent.pass(new AbortController().signal, true);
    expect(mine(noop)).toMatchObject({ ready: true, actions: [] });

    // Missing Secret, unreachable spoke: Ready=False, nothing installed on either cluster.
    repo.commit(
      files(
        spokeRelease("podinfo", "cluster-kubeconfig"),
        { ...spokeRelease("nosecret", "missing") },
        { ...spokeRelease("unreachable", "gone-kubeconfig") },
      ),
    );
    await agent.once();
    expect(await ready(hubClient, ns, "nosecret")).toMatchObject({
      status: "False",
      reason: "RESTClientError",
      message: `unable to read KubeConfig secret '${ns}/missing': not found; nothing installed`,
    });
    const unreachable = await ready(hubClient, ns, "unreachable");
    expect(unreachable).toMatchObject({ status: "False", reason: "RESTClientError" });
    expect(unreachable.message).toMatch(
      new RegExp(
        `^cluster 127\\.0\\.0\\.1:${port} \\(kubeConfig secret '${ns}/gone-kubeconfig'\\): .*unreachable`,
      ),
    );
    expect(unreachable.message).not.toContain(spoke.adminToken);
    for (const c of [hubClient, spokeClient]) {
      for (const r of ["nosecret", "unreachable"]) {
        expect(await stored(c, "podinfo", `podinfo-${r}`)).toEqual([]);
        expect(await getObject(c, cmPath("podinfo", `podinfo-${r}-config`))).toBeUndefined();
      }
    }

    // Removed from git: uninstalled on the spoke.
    repo.commit(files());
    await agent.once();
    expect(await getObject(hubClient, hrPath(ns, "podinfo"))).toBeUndefined();
    expect(await getObject(spokeClient, cmPath("podinfo", "podinfo-podinfo-config"))).toBeUndefined();
    expect(await stored(spokeClient, "podinfo", "podinfo-podinfo")).toEqual([]);
    // Every kubeconfig written for helm (the spoke's credentials) is gone.
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith(agent.helm.tempPrefix))).toEqual([]);
  });
});

describe("HelmRelease targetNamespace apart from storageNamespace", () => {
  it("objects and .Release.Namespace in the target namespace, release records in the storage namespace (the HelmRelease's by default); upgrade, rollback and uninstall keep them apart; a changed targetNamespace moves the release", async () => {
    const ns = "hn-apps";
    const target = "hn-target";
    const release = `${target}-web`;
    const chartRepo = charts.repository("split");
    const chart = (version: string) =>
      configMapChart("web", version, {
        templates: {
          ...configMapChart("web", version).templates,
          // No metadata.namespace: Helm puts it in the release namespace.
          "plain.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-plain
data:
  releaseNamespace: {{ .Release.Namespace | quote }}
`,
        },
      });
    chartRepo.publish(chart("1.0.0"));
    const { repo, agent } = setup("hn-split");
    const files = (...releases: object[]) => ({
      "clusters/test/apps.yaml": [
        namespace(ns),
        namespace(target),
        helmRepository(ns, chartRepo.url),
        ...releases,
      ],
    });
    repo.commit(
      files(
        helmRelease(ns, "web", "web", { targetNamespace: target, upgrade: { remediation: { retries: 1 } } }),
      ),
    );
    await agent.once();
    const mine = (sum: Awaited<ReturnType<Agent["pass"]>>) =>
      sum.helmReleases.find((r) => r.namespace === ns && r.name === "web");
    let obj = await getObject(hubClient, hrPath(ns, "web"));
    expect(await ready(hubClient, ns, "web")).toMatchObject({
      status: "True",
      reason: "InstallSucceeded",
      message: `Helm install succeeded for release ${target}/${release}.v1 with chart web@1.0.0`,
    });
    expect(obj?.status.storageNamespace).toBe(ns);
    expect(obj?.status.history[0]).toMatchObject({ name: release, namespace: target, version: 1 });
    expect((await getObject(hubClient, cmPath(target, `${release}-plain`)))?.data).toEqual({
      releaseNamespace: target,
    });
    expect(await getObject(hubClient, cmPath(target, `${release}-config`))).toBeDefined();
    expect(await getObject(hubClient, cmPath(ns, `${release}-plain`))).toBeUndefined();
    expect(await stored(hubClient, ns, release)).toEqual([`sh.helm.release.v1.${release}.v1`]);
    expect(await stored(hubClient, target, release)).toEqual([]);

    // In sync: no Helm action.
    expect(mine(await agent.pass(new AbortController().signal, true))).toMatchObject({
      ready: true,
      actions: [],
    });

    // An upgrade the API server rejects is rolled back, records still in the storage namespace.
    const broken = chart("2.0.0");
    broken.templates["bad.yaml"] =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\ndata: {}\n";
    chartRepo.publish(broken);
    const failed = mine(await agent.pass(new AbortController().signal, true));
    expect(failed).toMatchObject({ ready: false, reason: "UpgradeFailed", actions: ["upgrade", "rollback"] });
    expect(failed?.message).toMatch(
      new RegExp(
        `^Helm upgrade failed for release ${target}/${release} with chart web@2\\.0\\.0: .*Not_A_Valid_Name`,
      ),
    );
    obj = await getObject(hubClient, hrPath(ns, "web"));
    expect(
      obj?.status.history.map((h: ApiJson) => [h.version, h.chartVersion, h.status, h.namespace]),
    ).toEqual([
      [3, "1.0.0", "deployed", target],
      [2, "2.0.0", "failed", target],
      [1, "1.0.0", "superseded", target],
    ]);
    expect(await stored(hubClient, ns, release)).toHaveLength(3);
    expect(await stored(hubClient, target, release)).toEqual([]);

    // A good version: upgraded in place.
    chartRepo.publish(chart("2.1.0"));
    expect(mine(await agent.pass(new AbortController().signal, true))).toMatchObject({
      ready: true,
      reason: "UpgradeSucceeded",
      actions: ["upgrade"],
    });
    expect((await getObject(hubClient, cmPath(target, `${release}-config`)))?.data.version).toBe("2.1.0");

    // targetNamespace changed: the release moves (helm-controller's rule): the old one is uninstalled
    // where it was, the new one installed where it now belongs.
    const moved = "hn-moved";
    repo.commit(
      files(
        namespace(moved),
        helmRelease(ns, "web", "web", { targetNamespace: moved, upgrade: { remediation: { retries: 1 } } }),
      ),
    );
    const afterMove = mine(await agent.once());
    expect(afterMove).toMatchObject({
      ready: true,
      reason: "InstallSucceeded",
      actions: ["uninstall", "install"],
    });
    expect(await stored(hubClient, ns, release)).toEqual([]);
    expect(await getObject(hubClient, cmPath(target, `${release}-config`))).toBeUndefined();
    expect(await stored(hubClient, ns, `${moved}-web`)).toEqual([`sh.helm.release.v1.${moved}-web.v1`]);
    expect((await getObject(hubClient, cmPath(moved, `${moved}-web-plain`)))?.data).toEqual({
      releaseNamespace: moved,
    });
    obj = await getObject(hubClient, hrPath(ns, "web"));
    expect(obj?.status.history.map((h: ApiJson) => [h.name, h.namespace, h.version])).toEqual([
      [`${moved}-web`, moved, 1],
    ]);

    // Removed from git: uninstalled, objects and records.
    repo.commit(files());
    await agent.once();
    expect(await getObject(hubClient, hrPath(ns, "web"))).toBeUndefined();
    expect(await getObject(hubClient, cmPath(moved, `${moved}-web-plain`))).toBeUndefined();
    expect(await stored(hubClient, ns, `${moved}-web`)).toEqual([]);
  });
});
