/**
 * Remote clusters on two real kube-apiservers: a hub running the agent and
 * a spoke reached through `spec.kubeConfig.secretRef`, in the shape of
 * fluxcd/flux2-hub-spoke-example (`hub/staging.yaml`: a Namespace per spoke
 * on the hub, holding the spoke's kubeconfig Secret and its Kustomizations,
 * whose sourceRef is the hub's flux-system GitRepository). Apply, drift
 * revert, prune, health and garbage collection happen on the spoke only;
 * a missing Secret or an unreachable spoke applies nothing anywhere.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { freePort, type KubeCluster, startKube } from "../infra/kube.ts";
import {
  adminClient,
  aggregateClusterRoles,
  applyTenant,
  configMap,
  deployment,
  FleetRepo,
  getObject,
  ksStatus,
  makeAgent,
  namespace,
  patchObject,
  rollOutWhenCreated,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

let hub: KubeCluster;
let spoke: KubeCluster;
let hubClient: KubeClient;
let spokeClient: KubeClient;
let repo: FleetRepo;
const agents: Agent[] = [];

beforeAll(async () => {
  [hub, spoke] = await Promise.all([startKube({ name: "hub" }), startKube({ name: "spoke" })]);
  hubClient = adminClient(hub);
  spokeClient = adminClient(spoke);
  await aggregateClusterRoles(spokeClient);
  repo = FleetRepo.create();
  // The spoke's kubeconfig is put on the hub by whoever made the spoke (Cluster API, a script), not by git.
  await createSecret(hubClient, "staging", "cluster-kubeconfig", {
    "value.yaml": readFileText(spoke.kubeconfigFor(spoke.adminToken, "spoke-admin")),
  });
});
afterAll(async () => {
  for (const a of agents) a.close();
  hubClient?.close();
  spokeClient?.close();
  repo?.remove();
  await Promise.all([hub?.stop(), spoke?.stop()]);
});

const readFileText = (path: string): string => readFileSync(path, "utf8");

async function createSecret(
  client: KubeClient,
  ns: string,
  name: string,
  data: Record<string, string>,
): Promise<void> {
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

function hubAgent(extra: Parameters<typeof makeAgent>[2] = {}): Agent {
  const a = makeAgent(hub, repo, {
    name: "flux-system",
    namespace: "flux-system",
    path: "hub",
    remoteApiRetryMs: 500,
    ...extra,
  });
  agents.push(a);
  return a;
}

/** A spoke Kustomization as hub/staging.yaml writes them. */
const spokeKs = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "kustomize.toolkit.fluxcd.io/v1",
  kind: "Kustomization",
  metadata: { name, namespace: "staging" },
  spec: {
    interval: "1h",
    retryInterval: "3m",
    timeout: "20s",
    prune: true,
    sourceRef: { kind: "GitRepository", name: "flux-system", namespace: "flux-system" },
    kubeConfig: { secretRef: { name: "cluster-kubeconfig" } },
    ...spec,
  },
});

const cm = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;
const deployPath = "/apis/apps/v1/namespaces/podinfo/deployments/podinfo";

function byKey(res: Awaited<ReturnType<Agent["once"]>>) {
  return Object.fromEntries(res.reconciled.map((k) => [`${k.namespace}/${k.name}`, k]));
}

describe("hub and spoke: spec.kubeConfig.secretRef", () => {
  it("the spoke's objects land on the spoke only, health is read there, drift is reverted there and pruning deletes there", async () => {
    repo.commit({
      "hub/staging.yaml": [namespace("staging"), spokeKs("apps", { path: "./spokes/staging", wait: true })],
      "spokes/staging/apps.yaml": [
        namespace("podinfo"),
        configMap("settings", "podinfo", { env: "staging" }),
        configMap("extra", "podinfo", { v: "1" }),
        deployment("podinfo", "podinfo"),
      ],
    });
    const running = hubAgent().once();
    // No controller-manager on the spoke: play its part once the Deployment appears there.
    await rollOutWhenCreated(spokeClient, deployPath);
    const res = byKey(await running);
    expect(res["flux-system/flux-system"]).toMatchObject({ ready: true });
    expect(res["staging/apps"]).toMatchObject({ ready: true, inventory: 4 });
    expect((await getObject(spokeClient, cm("podinfo", "settings")))?.data).toEqual({ env: "staging" });
    // Nothing of the spoke on the hub.
    expect(await getObject(hubClient, "/api/v1/namespaces/podinfo")).toBeUndefined();
    expect(await getObject(hubClient, deployPath)).toBeUndefined();
    const healthy = (await ksStatus(hubClient, "apps", "staging")).ks?.status.conditions.find(
      (c: { type: string }) => c.type === "Healthy",
    );
    expect(healthy?.status).toBe("True");

    // Drift on the spoke is taken back on the spoke.
    await patchObject(spokeClient, cm("podinfo", "settings"), { data: { env: "hand-edited" } });
    repo.commit({
      "spokes/staging/apps.yaml": [
        namespace("podinfo"),
        configMap("settings", "podinfo", { env: "staging" }),
        deployment("podinfo", "podinfo"),
      ],
    });
    const again = byKey(await hubAgent().once());
    expect(again["staging/apps"]).toMatchObject({ ready: true, inventory: 3 });
    expect((await getObject(spokeClient, cm("podinfo", "settings")))?.data).toEqual({ env: "staging" });
    expect(await getObject(spokeClient, cm("podinfo", "extra"))).toBeUndefined();

    // A spoke Kustomization removed from git takes its objects on the spoke with it.
    repo.commit({ "hub/staging.yaml": [namespace("staging")] });
    await hubAgent().once();
    expect((await ksStatus(hubClient, "apps", "staging")).ks).toBeUndefined();
    expect(await getObject(spokeClient, cm("podinfo", "settings"))).toBeUndefined();
    expect(await getObject(spokeClient, deployPath)).toBeUndefined();
  });

  it("with serviceAccountName too, the account is impersonated on the spoke, in the Kustomization's namespace there", async () => {
    // The account exists on the spoke only: the hub has no staging/flux.
    await applyTenant(spokeClient, "staging", "flux");
    repo.commit({
      "hub/staging.yaml": [
        namespace("staging"),
        spokeKs("releases", {
          path: "./spokes/releases",
          serviceAccountName: "flux",
          targetNamespace: "staging",
        }),
        spokeKs("cluster-wide", { path: "./spokes/cluster-wide", serviceAccountName: "flux" }),
      ],
      "spokes/releases/cm.yaml": [configMap("release", "placeholder", { chart: "podinfo" })],
      "spokes/cluster-wide/role.yaml": [
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          metadata: { name: "spoke-grab" },
          rules: [],
        },
      ],
    });
    const res = byKey(await hubAgent().once());
    expect(res["staging/releases"]).toMatchObject({ ready: true });
    expect(await getObject(spokeClient, cm("staging", "release"))).toBeDefined();
    expect(await getObject(hubClient, cm("staging", "release"))).toBeUndefined();
    expect(res["staging/cluster-wide"]).toMatchObject({ ready: false, reason: "ReconciliationFailed" });
    expect(res["staging/cluster-wide"]?.message).toContain(
      'ClusterRole/spoke-grab: clusterroles.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:staging:flux"',
    );
    expect(
      await getObject(spokeClient, "/apis/rbac.authorization.k8s.io/v1/clusterroles/spoke-grab"),
    ).toBeUndefined();
    repo.commit({ "hub/staging.yaml": [namespace("staging")] });
    await hubAgent().once();
    expect(await getObject(spokeClient, cm("staging", "release"))).toBeUndefined();
  });

  it("a missing kubeconfig Secret, a bad kubeconfig or an unreachable spoke is Ready=False with the reason, and nothing is applied anywhere", async () => {
    const port = await freePort();
    await createSecret(hubClient, "staging", "gone-kubeconfig", {
      value: readFileText(spoke.kubeconfigFor(spoke.adminToken, "gone")).replace(
        /server: https:\/\/127\.0\.0\.1:\d+/,
        `server: https://127.0.0.1:${port}`,
      ),
    });
    await createSecret(hubClient, "staging", "file-kubeconfig", {
      config: readFileText(spoke.kubeconfigFor(spoke.adminToken, "files")).replace(
        /token: .*/,
        "tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
      ),
    });
    const withSecret = (name: string, secretRef: Record<string, string>) =>
      spokeKs(name, { path: "./spokes/broken", kubeConfig: { secretRef } });
    repo.commit({
      "hub/staging.yaml": [
        namespace("staging"),
        withSecret("no-secret", { name: "missing" }),
        withSecret("unreachable", { name: "gone-kubeconfig" }),
        withSecret("token-file", { name: "file-kubeconfig", key: "config" }),
        withSecret("wrong-key", { name: "file-kubeconfig" }),
      ],
      "spokes/broken/cm.yaml": [namespace("broken"), configMap("never", "broken", { v: "1" })],
    });
    const res = byKey(await hubAgent().once());
    expect(res["staging/no-secret"]).toMatchObject({
      ready: false,
      reason: "ReconciliationFailed",
      message: "unable to read KubeConfig secret 'staging/missing': not found; nothing applied",
    });
    expect(res["staging/unreachable"]).toMatchObject({ ready: false, reason: "ReconciliationFailed" });
    expect(res["staging/unreachable"]?.message).toMatch(
      new RegExp(
        `^cluster 127\\.0\\.0\\.1:${port} \\(kubeConfig secret 'staging/gone-kubeconfig'\\): .*unreachable.*; nothing applied$`,
      ),
    );
    expect(res["staging/token-file"]?.message).toBe(
      "KubeConfig in Secret 'staging/file-kubeconfig': user 'files' references a tokenFile, only an inline token is supported; nothing applied",
    );
    expect(res["staging/wrong-key"]?.message).toBe(
      "KubeConfig secret 'staging/file-kubeconfig' does not contain a 'value' (or 'value.yaml') key with a kubeconfig; nothing applied",
    );
    for (const c of [hubClient, spokeClient]) {
      expect(await getObject(c, "/api/v1/namespaces/broken")).toBeUndefined();
      expect(await getObject(c, cm("broken", "never"))).toBeUndefined();
    }
    // No credential of the kubeconfig in any message.
    for (const k of Object.values(res)) expect(k.message).not.toContain(spoke.adminToken);
  });
});
