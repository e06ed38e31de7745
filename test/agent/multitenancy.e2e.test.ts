/**
 * A fleet in the layout of Flux's multi-tenancy example, synced by the agent
 * into a real kube-apiserver with RBAC on: the platform repository onboards a
 * tenant (namespace, ServiceAccount bound to cluster-admin in that namespace
 * only, a GitRepository and a Kustomization running as that account), and
 * the tenant's own repository holds a HelmRepository and HelmReleases. The
 * agent runs with Flux's lockdown flags (`--default-service-account default`,
 * `--no-cross-namespace-refs`); the tenant's release installs in its
 * namespace, one that reaches outside it fails with nothing written there,
 * and one with no serviceAccountName runs as the namespace's `default`
 * account, which may do nothing. The platform's own Kustomization names the
 * platform's account, as the example's name kustomize-controller. (Fixture written for these tests in the
 * example's layout.)
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { type ChartServer, configMapChart, startChartServer } from "../infra/charts.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";
import {
  adminClient,
  aggregateClusterRoles,
  FleetRepo,
  getObject,
  kustomization,
  makeAgent,
  namespace,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 240_000 });

let kube: KubeCluster;
let charts: ChartServer;
let client: KubeClient;
const repos: FleetRepo[] = [];

beforeAll(async () => {
  [kube, charts] = await Promise.all([startKube({ name: "mt" }), startChartServer()]);
  client = adminClient(kube);
  await aggregateClusterRoles(client);
});
afterAll(async () => {
  client?.close();
  for (const r of repos) r.remove();
  await charts?.stop();
  await kube?.stop();
});

const release = (name: string, chart: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "helm.toolkit.fluxcd.io/v2",
  kind: "HelmRelease",
  metadata: { name },
  spec: {
    interval: "5m",
    chart: { spec: { chart, sourceRef: { kind: "HelmRepository", name: "podinfo" } } },
    ...extra,
  },
});

describe("Flux's multi-tenancy layout with HelmReleases", () => {
  it("the tenant's releases install as the tenant, inside its namespace only", async () => {
    const repo = charts.repository("tenant-charts");
    repo.publish(configMapChart("podinfo", "6.0.0"));
    // A chart whose template writes into a namespace the tenant does not own.
    repo.publish(
      configMapChart("escape", "1.0.0", {
        templates: {
          "cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-escaped
  namespace: kube-system
data:
  from: tenant
`,
        },
      }),
    );

    const tenantRepo = FleetRepo.create();
    repos.push(tenantRepo);
    tenantRepo.commit({
      "base/kustomization.yaml": "resources:\n  - repository.yaml\n  - release.yaml\n",
      "base/repository.yaml": [
        {
          apiVersion: "source.toolkit.fluxcd.io/v1",
          kind: "HelmRepository",
          metadata: { name: "podinfo" },
          spec: { interval: "5m", url: repo.url },
        },
      ],
      "base/release.yaml": [
        release("podinfo", "podinfo", { serviceAccountName: "dev-team", values: { greeting: "staging" } }),
        release("escape", "escape", { serviceAccountName: "dev-team" }),
        release("defaulted", "podinfo"),
      ],
      "staging/kustomization.yaml": "resources:\n  - ../base\n",
    });

    const fleet = FleetRepo.create();
    repos.push(fleet);
    fleet.commit({
      "clusters/test/tenants.yaml": [
        kustomization("mt-tenants", {
          path: "./tenants/staging",
          sourceRef: { kind: "GitRepository", name: "mt" },
          // As the example's flux-system Kustomizations name kustomize-controller under the lockdown.
          serviceAccountName: "platform",
        }),
      ],
      "tenants/base/dev-team/kustomization.yaml":
        "namespace: apps\nresources:\n  - rbac.yaml\n  - sync.yaml\n",
      "tenants/base/dev-team/rbac.yaml": [
        namespace("apps"),
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "dev-team" } },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name: "gotk-reconciler" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
          subjects: [{ kind: "ServiceAccount", name: "dev-team", namespace: "apps" }],
        },
      ],
      "tenants/base/dev-team/sync.yaml": [
        {
          apiVersion: "source.toolkit.fluxcd.io/v1",
          kind: "GitRepository",
          metadata: { name: "dev-team" },
          spec: { interval: "1m", url: tenantRepo.url, ref: { branch: "main" } },
        },
        {
          apiVersion: "kustomize.toolkit.fluxcd.io/v1",
          kind: "Kustomization",
          metadata: { name: "dev-team" },
          spec: {
            interval: "5m",
            serviceAccountName: "dev-team",
            path: "./base",
            prune: true,
            sourceRef: { kind: "GitRepository", name: "dev-team" },
            targetNamespace: "apps",
          },
        },
      ],
      "tenants/staging/kustomization.yaml":
        "resources:\n  - ../base/dev-team\npatches:\n  - path: dev-team-patch.yaml\n",
      "tenants/staging/dev-team-patch.yaml": [
        {
          apiVersion: "kustomize.toolkit.fluxcd.io/v1",
          kind: "Kustomization",
          metadata: { name: "dev-team", namespace: "apps" },
          spec: { path: "./staging" },
        },
      ],
    });

    // The platform's own account, set up with the agent (the example's kustomize-controller).
    await client.raw({
      method: "POST",
      path: "/api/v1/namespaces",
      body: namespace("shipmate-system"),
    });
    await client.raw({
      method: "POST",
      path: "/api/v1/namespaces/shipmate-system/serviceaccounts",
      body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "platform" } },
    });
    await client.raw({
      method: "POST",
      path: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
      body: {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "platform-admin" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ kind: "ServiceAccount", name: "platform", namespace: "shipmate-system" }],
      },
    });
    const agent = makeAgent(kube, fleet, {
      name: "mt",
      defaultServiceAccount: "default",
      noCrossNamespaceRefs: true,
    });
    try {
      const pass = await agent.once();
      const ks = Object.fromEntries(pass.reconciled.map((k) => [`${k.namespace}/${k.name}`, k]));
      expect(ks["shipmate-system/mt-tenants"]?.ready).toBe(true);
      expect(ks["apps/dev-team"]).toMatchObject({ ready: true });

      const hr = Object.fromEntries(pass.helmReleases.map((r) => [`${r.namespace}/${r.name}`, r]));
      // The tenant's release, as the tenant: installed in its namespace, stored there.
      expect(hr["apps/podinfo"]?.ready).toBe(true);
      const cm = await getObject(client, "/api/v1/namespaces/apps/configmaps/podinfo-config");
      expect(cm?.data.greeting).toBe("staging");
      // Reaching outside the namespace fails, and nothing is written there.
      expect(hr["apps/escape"]?.ready).toBe(false);
      expect(hr["apps/escape"]?.message).toMatch(/forbidden|cannot/i);
      expect(
        await getObject(client, "/api/v1/namespaces/kube-system/configmaps/escape-escaped"),
      ).toBeUndefined();
      // No serviceAccountName: the namespace's `default` account, which may do nothing here.
      expect(hr["apps/defaulted"]?.ready).toBe(false);
      expect(await getObject(client, "/api/v1/namespaces/apps/configmaps/defaulted-config")).toBeUndefined();

      // Helm's own storage, in the tenant's namespace; a second pass does not upgrade it again.
      const storage = "/api/v1/namespaces/apps/secrets/sh.helm.release.v1.podinfo";
      expect(await getObject(client, `${storage}.v1`)).toBeDefined();
      await agent.pass(new AbortController().signal);
      expect(await getObject(client, `${storage}.v2`)).toBeUndefined();
    } finally {
      agent.close();
    }
  });
});
