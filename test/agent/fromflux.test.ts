/**
 * The agent on a cluster Flux ran, on a real kube-apiserver: a fleet shaped
 * like `flux bootstrap` output (gotk-components.yaml rendered from Flux's Go
 * modules, test/infra/flux.ts), applied the way kustomize-controller applies
 * it, then moved in git exactly as `bootstrap --from-flux` plans it (the
 * pure plan, committed to a file:// remote; the forge side is
 * test/bootstrap/fromflux.test.ts). Covers the refusal rule and the
 * adoption: uids kept, ownership taken from `kustomize-controller`,
 * inventories kept, Flux's controllers pruned, a second pass writes nothing.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planFromFlux } from "../../src/bootstrap/fromflux.ts";
import { agentFiles } from "../../src/bootstrap/layout.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { runCli } from "../helpers/cli.ts";
import {
  applyAsFlux,
  fluxBootstrapFiles,
  isFluxComponentId,
  parseDocs,
  pathOfInventoryId,
  setReadyReplicas,
} from "../infra/flux.ts";
import { findBinary, type KubeCluster, startKube } from "../infra/kube.ts";
import { type ApiJson, adminClient, FleetRepo, getObject, ksStatus } from "./helpers.ts";

const CP = "clusters/staging";
const DEPLOYS = "/apis/apps/v1/namespaces/flux-system/deployments";
let kube: KubeCluster;
let client: KubeClient;
let repo: FleetRepo;
const before = new Map<string, { uid: string; v: string }>();

const APPS_KS = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
`;
const APP = (greeting: string) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
  namespace: default
data:
  greeting: ${greeting}
`;

const onceArgs = () => [
  "agent",
  `--repo=${repo.url}`,
  `--path=${CP}`,
  "--name=flux-system",
  "--namespace=flux-system",
  "--once",
  "--json",
  "--log-level=warn",
  `--kubeconfig=${kube.kubeconfig}`,
  `--workdir=${mkdtempSync(join(repo.root, "agent-"))}`,
];

beforeAll(async () => {
  kube = await startKube({ name: "fromflux-agent" });
  client = adminClient(kube);
  repo = FleetRepo.create();
  const files = {
    ...fluxBootstrapFiles(CP, "ssh://git@git.example.com/acme/fleet"),
    [`${CP}/apps.yaml`]: APPS_KS,
    "apps/greeting.yaml": APP('"hello"'),
  };
  const revision = `main@sha1:${repo.commit(files, "flux bootstrap")}`;
  const kustomize = findBinary("kustomize");
  const rootObjects = [
    ...parseDocs(
      execFileSync(kustomize, ["build", join(repo.work, CP, "flux-system")], { encoding: "utf8" }),
    ),
    ...parseDocs(APPS_KS),
  ];
  const inventories = [
    ...(await applyAsFlux(client, { name: "flux-system", namespace: "flux-system" }, rootObjects, revision)),
    ...(await applyAsFlux(
      client,
      { name: "apps", namespace: "flux-system" },
      parseDocs(APP('"hello"')),
      revision,
    )),
  ];
  for (const e of inventories) {
    const obj = await getObject(client, pathOfInventoryId(e.id, e.v));
    if (!obj) throw new Error(`${e.id} was not applied`);
    before.set(e.id, { uid: obj.metadata.uid, v: e.v });
  }
  // The move, as bootstrap --from-flux commits it, plus a change Flux never applied.
  const read = (rel: string) =>
    existsSync(join(repo.work, rel)) ? readFileSync(join(repo.work, rel), "utf8") : undefined;
  const plan = planFromFlux({
    clusterPath: CP,
    read,
    agentFiles: agentFiles({ env: "staging", repoUrl: repo.url, branch: "main", version: "0.1.0" }),
  });
  repo.commit(
    {
      ...Object.fromEntries(plan.write),
      ...Object.fromEntries(plan.remove.map((r) => [r, null])),
      "apps/greeting.yaml": APP('"hello from shipmate"'),
    },
    "shipmate bootstrap --from-flux",
  );
}, 180_000);

afterAll(async () => {
  client?.close();
  repo?.remove();
  await kube?.stop();
});

describe("the refusal rule, on the real API server", () => {
  it("Flux's controllers at 1 replica: refused with one line, exit 1, nothing written", async () => {
    const rv = (
      await getObject(
        client,
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/flux-system",
      )
    )?.metadata.resourceVersion;
    const r = await runCli(onceArgs());
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      "shipmate agent: Flux controllers are running in this cluster: Deployment flux-system/kustomize-controller (replicas 1, ready 0), Deployment flux-system/source-controller (replicas 1, ready 0); the agent does not run beside them (both would apply and prune the same objects). Move this cluster over with 'shipmate bootstrap --from-flux', or scale them down (kubectl -n flux-system scale deployment kustomize-controller source-controller --replicas=0) and wait until they have no ready replicas",
    );
    expect(
      (
        await getObject(
          client,
          "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/flux-system",
        )
      )?.metadata.resourceVersion,
    ).toBe(rv);
  }, 60_000);

  it("scaled to 0 while a pod is still ready: still refused, naming that one only", async () => {
    for (const name of ["kustomize-controller", "source-controller"])
      await client.raw({
        method: "PATCH",
        path: `${DEPLOYS}/${name}`,
        body: { spec: { replicas: 0 } },
        contentType: "application/merge-patch+json",
      });
    await setReadyReplicas(client, "flux-system", "source-controller", 1);
    const r = await runCli(onceArgs());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "running in this cluster: Deployment flux-system/source-controller (replicas 0, ready 1); the agent",
    );
    await setReadyReplicas(client, "flux-system", "source-controller", 0);
  }, 60_000);
});

describe("adopting what Flux applied", () => {
  it("first pass: nothing deleted or re-created, ownership taken from kustomize-controller, inventories kept, Flux's controllers pruned", async () => {
    const r = await runCli(onceArgs());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as ApiJson;
    expect(summary.reconciled.map((k: ApiJson) => [k.name, k.ready])).toEqual([
      ["flux-system", true],
      ["apps", true],
    ]);
    expect([...before.keys()].filter(isFluxComponentId).length).toBeGreaterThanOrEqual(10);
    for (const [id, snap] of before) {
      const obj = await getObject(client, pathOfInventoryId(id, snap.v));
      if (isFluxComponentId(id)) {
        expect(obj, `${id} pruned`).toBeUndefined();
        continue;
      }
      expect(obj?.metadata.uid, `${id} kept, not re-created`).toBe(snap.uid);
      const managers = (obj?.metadata.managedFields ?? [])
        .filter((m: ApiJson) => !m.subresource)
        .map((m: ApiJson) => `${m.manager}/${m.operation}`);
      expect(managers, id).not.toContain("kustomize-controller/Apply");
      expect(managers, id).toContain("shipmate/Apply");
    }
    // Applied over kustomize-controller's ownership of the field (a conflict taken, not reported).
    expect((await getObject(client, "/api/v1/namespaces/default/configmaps/greeting"))?.data).toEqual({
      greeting: "hello from shipmate",
    });
    expect((await ksStatus(client, "apps", "flux-system")).inventory.map((e) => e.id)).toEqual([
      "default_greeting__ConfigMap",
    ]);
    const root = (await ksStatus(client, "flux-system", "flux-system")).inventory.map((e) => e.id);
    expect(root).toEqual(
      expect.arrayContaining([
        "_flux-system__Namespace",
        "_kustomizations.kustomize.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
        "flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization",
        "flux-system_flux-system_source.toolkit.fluxcd.io_GitRepository",
        "shipmate-system_shipmate-agent_apps_Deployment",
      ]),
    );
    // Flux's components left the root's inventory; the agent's own (shipmate-*) came in.
    expect(root.filter((id) => isFluxComponentId(id) && !id.includes("shipmate"))).toEqual([]);
    // The root GitRepository's status satisfies Flux's CRD (artifact.digest is required there).
    const source = await getObject(
      client,
      "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system",
    );
    expect(source?.status.artifact.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  }, 120_000);

  it("second pass writes nothing, though Flux's CRD drops the inventory hashes", async () => {
    const r = await runCli(onceArgs());
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as ApiJson).writes).toBe(0);
  }, 60_000);
});
