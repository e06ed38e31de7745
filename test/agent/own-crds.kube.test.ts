/**
 * The agent's own CRDs on a real kube-apiserver WITHOUT Flux's: an agent
 * installs (or requires) only the kinds its flags serve; with
 * `--image-automation` it installs the image and Receiver kinds and serves an
 * ImageRepository + ImagePolicy against Debian's docker-registry under them,
 * and `kubectl get`'s server-side table shows Flux's printer columns;
 * without the Alert/Provider kinds the agent still starts and reconciles
 * (notifications off).
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { kubeSuite } from "../helpers/kube.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { type ApiJson, type FleetRepo, getObject, makeAgent, namespace, waitFor } from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000 });

let registry: TestRegistry;
let repo: FleetRepo;

const k = kubeSuite({
  name: "owncrds",
  alongside: async () => {
    registry = await startRegistry();
  },
});
beforeAll(async () => {
  await seedTags(registry, "team/web", ["1.0.0", "1.2.0", "2.0.0-rc.1"]);
  repo = k.fleet();
  repo.commit({ "clusters/test/ns.yaml": [namespace("own-fleet")] });
});
afterAll(async () => {
  await registry?.stop();
});

const CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const IMG = "/apis/image.toolkit.fluxcd.io/v1";
const TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io";
const crdServed = async (name: string) =>
  (await k.client.raw({ method: "GET", path: `${CRDS}/${name}` })).code === 200;

async function create(path: string, obj: object): Promise<void> {
  const res = await k.client.raw({ method: "POST", path, body: obj });
  expect(res.code, JSON.stringify(res.body)).toBe(201);
}

it("an agent without --image-automation or --receivers installs neither kind; Alert and Provider it installs", async () => {
  const agent = makeAgent(k.kube, repo, { name: "plain" });
  try {
    expect((await agent.once()).reconciled[0]?.ready).toBe(true);
  } finally {
    agent.close();
  }
  expect(await crdServed("kustomizations.kustomize.toolkit.fluxcd.io")).toBe(true);
  expect(await crdServed("alerts.notification.toolkit.fluxcd.io")).toBe(true);
  expect(await crdServed("providers.notification.toolkit.fluxcd.io")).toBe(true);
  for (const name of [
    "imagerepositories.image.toolkit.fluxcd.io",
    "imagepolicies.image.toolkit.fluxcd.io",
    "imageupdateautomations.image.toolkit.fluxcd.io",
    "receivers.notification.toolkit.fluxcd.io",
  ])
    expect(await crdServed(name), name).toBe(false);
});

it("without CRD rights, --image-automation requires the image kinds and names the missing CRD", async () => {
  const agent = makeAgent(k.kube, repo, { name: "strict", installCrds: false, imageAutomation: true });
  try {
    await expect(agent.setup()).rejects.toThrow(
      "CRD imagerepositories.image.toolkit.fluxcd.io is not installed: apply deploy/agent/crds.yaml",
    );
  } finally {
    agent.close();
  }
});

it("without CRD rights and without the Alert/Provider kinds, the agent starts and reconciles (notifications off)", async () => {
  for (const name of ["alerts.notification.toolkit.fluxcd.io", "providers.notification.toolkit.fluxcd.io"]) {
    const res = await k.client.raw({ method: "DELETE", path: `${CRDS}/${name}` });
    expect(res.code).toBe(200);
  }
  await waitFor(async () =>
    !(await crdServed("alerts.notification.toolkit.fluxcd.io")) &&
    !(await crdServed("providers.notification.toolkit.fluxcd.io"))
      ? true
      : undefined,
  );
  const agent = makeAgent(k.kube, repo, { name: "bare", installCrds: false });
  try {
    expect((await agent.once()).reconciled[0]?.ready).toBe(true);
  } finally {
    agent.close();
  }
  expect(await crdServed("alerts.notification.toolkit.fluxcd.io")).toBe(false);
});

it("--image-automation installs the image and Receiver kinds; an ImageRepository and ImagePolicy get Flux's status and columns", async () => {
  const agent = makeAgent(k.kube, repo, { name: "images", imageAutomation: true });
  try {
    await agent.setup();
    for (const name of [
      "imagerepositories.image.toolkit.fluxcd.io",
      "imagepolicies.image.toolkit.fluxcd.io",
      "imageupdateautomations.image.toolkit.fluxcd.io",
      "receivers.notification.toolkit.fluxcd.io",
      "alerts.notification.toolkit.fluxcd.io",
    ])
      expect(await crdServed(name), name).toBe(true);
    // Flux's short names answer, as `kubectl get imgrepo` needs.
    const discovery = (await getObject(k.client, IMG)) as ApiJson;
    const resources = discovery.resources as { name: string; shortNames?: string[] }[];
    expect(resources.find((r) => r.name === "imagerepositories")?.shortNames).toEqual([
      "imgrepo",
      "imagerepo",
    ]);
    expect(resources.find((r) => r.name === "imageupdateautomations")?.shortNames).toEqual([
      "iua",
      "imgupd",
      "imgauto",
    ]);

    await create("/api/v1/namespaces", namespace("own-apps"));
    await create(`${IMG}/namespaces/own-apps/imagerepositories`, {
      apiVersion: "image.toolkit.fluxcd.io/v1",
      kind: "ImageRepository",
      metadata: { name: "web", namespace: "own-apps" },
      spec: { image: `${registry.host}/team/web`, interval: "1h", insecure: true },
    });
    await create(`${IMG}/namespaces/own-apps/imagepolicies`, {
      apiVersion: "image.toolkit.fluxcd.io/v1",
      kind: "ImagePolicy",
      metadata: { name: "web", namespace: "own-apps" },
      spec: { imageRepositoryRef: { name: "web" }, policy: { semver: { range: ">=1.0.0" } } },
    });
    expect((await agent.once()).reconciled[0]?.ready).toBe(true);

    const ir = (await getObject(k.client, `${IMG}/namespaces/own-apps/imagerepositories/web`)) as ApiJson;
    expect(ir.status.lastScanResult.tagCount).toBe(3);
    expect(ir.status.canonicalImageName).toBe(`${registry.host}/team/web`);
    const ip = (await getObject(k.client, `${IMG}/namespaces/own-apps/imagepolicies/web`)) as ApiJson;
    expect(ip.status.latestRef).toMatchObject({ name: `${registry.host}/team/web`, tag: "1.2.0" });

    // What `kubectl get imagerepositories,imagepolicies -o wide` prints: the server's table.
    const table = async (plural: string) => {
      const res = await k.client.raw({
        method: "GET",
        path: `${IMG}/namespaces/own-apps/${plural}`,
        accept: TABLE,
      });
      expect(res.code).toBe(200);
      const body = res.body as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
      const names = body.columnDefinitions.map((c) => c.name);
      return Object.fromEntries(names.map((n, i) => [n, body.rows[0]!.cells[i]]));
    };
    expect(await table("imagerepositories")).toMatchObject({
      Name: "web",
      Image: `${registry.host}/team/web`,
      Tags: "3",
      Ready: "True",
      Status: "successful scan: found 3 tags",
      "Last scan": ir.status.lastScanResult.scanTime,
    });
    expect(await table("imagepolicies")).toMatchObject({
      Name: "web",
      Image: `${registry.host}/team/web`,
      Tag: "1.2.0",
      Ready: "True",
    });
  } finally {
    agent.close();
  }
});
