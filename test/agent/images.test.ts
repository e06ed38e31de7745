/**
 * In-cluster image reflection (`shipmate agent --image-automation`) against a
 * real kube-apiserver with Flux's own image CRDs and Debian's docker-registry
 * (token auth): ImageRepository scans and status, ImagePolicy selection,
 * digest reflection, a new tag picked up on request, cross-namespace access,
 * refused fields, and a steady pass that costs no registry request and no write.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { seedImage, seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { type ApiJson, getObject, namespace } from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

let registry: TestRegistry;
let agent: Agent;

const k = kubeSuite({
  name: "images",
  fluxCrds: ["image.toolkit.fluxcd.io_imagerepositories.yaml", "image.toolkit.fluxcd.io_imagepolicies.yaml"],
  namespaces: ["img-apps", "img-other", "img-team"].map((ns) => ({ name: ns, labels: { team: ns } })),
  alongside: async () => {
    registry = await startRegistry({
      auth: "token",
      users: [{ username: "puller", password: "pull-secret-1" }],
    });
  },
});
beforeAll(async () => {
  const auth = Buffer.from("puller:pull-secret-1").toString("base64");
  await create("/api/v1/namespaces/img-apps/secrets", {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "regcred", namespace: "img-apps" },
    type: "kubernetes.io/dockerconfigjson",
    data: {
      ".dockerconfigjson": Buffer.from(JSON.stringify({ auths: { [registry.host]: { auth } } })).toString(
        "base64",
      ),
    },
  });
  await seedTags(registry, "team/app", ["1.0.0", "1.1.0", "1.1.0.sig", "2.0.0-rc.1", "latest"]);
  const repo = k.fleet();
  repo.commit({ "clusters/test/ns.yaml": [namespace("img-fleet")] });
  agent = k.agent(repo, "images", { imageAutomation: true });
});
afterAll(async () => {
  await registry?.stop();
});

const IMG = "/apis/image.toolkit.fluxcd.io/v1";

async function create(path: string, obj: object): Promise<void> {
  const res = await k.client.raw({ method: "POST", path, body: obj });
  expect(res.code, JSON.stringify(res.body)).toBe(201);
}

const imageRepo = (ns: string, name: string, spec: object) => ({
  apiVersion: "image.toolkit.fluxcd.io/v1",
  kind: "ImageRepository",
  metadata: { name, namespace: ns },
  spec: { interval: "1h", ...spec },
});
const imagePolicy = (ns: string, name: string, spec: object) => ({
  apiVersion: "image.toolkit.fluxcd.io/v1",
  kind: "ImagePolicy",
  metadata: { name, namespace: ns },
  spec,
});
const get = (ns: string, plural: string, name: string) =>
  getObject(k.client, `${IMG}/namespaces/${ns}/${plural}/${name}`);
const ready = (o: ApiJson | undefined) =>
  (
    o?.status?.conditions as { type: string; status: string; reason: string; message: string }[] | undefined
  )?.find((c) => c.type === "Ready");

describe("ImageRepository and ImagePolicy in the cluster", () => {
  it("scans with the pull secret, writes Flux's status, and the policy selects", async () => {
    await create(
      `${IMG}/namespaces/img-apps/imagerepositories`,
      imageRepo("img-apps", "app", {
        image: `${registry.host}/team/app`,
        insecure: true,
        secretRef: { name: "regcred" },
        accessFrom: { namespaceSelectors: [{ matchLabels: { team: "img-team" } }] },
      }),
    );
    await create(
      `${IMG}/namespaces/img-apps/imagepolicies`,
      imagePolicy("img-apps", "app", {
        imageRepositoryRef: { name: "app" },
        policy: { semver: { range: ">=1.0.0" } },
        digestReflectionPolicy: "IfNotPresent",
      }),
    );
    const pass = await agent.once();
    expect(pass.reconciled[0]?.ready).toBe(true);

    const ir = await get("img-apps", "imagerepositories", "app");
    expect(ready(ir)).toMatchObject({
      status: "True",
      reason: "Succeeded",
      message: "successful scan: found 4 tags",
    });
    expect(ir?.status.canonicalImageName).toBe(`${registry.host}/team/app`);
    expect(ir?.status.lastScanResult.tagCount).toBe(4);
    expect(ir?.status.lastScanResult.latestTags).toEqual(["latest", "2.0.0-rc.1", "1.1.0", "1.0.0"]);
    expect(ir?.status.observedExclusionList).toEqual(["^.*\\.sig$"]);

    const ip = await get("img-apps", "imagepolicies", "app");
    expect(ready(ip)).toMatchObject({ status: "True", reason: "Succeeded" });
    expect(ip?.status.latestRef.name).toBe(`${registry.host}/team/app`);
    expect(ip?.status.latestRef.tag).toBe("1.1.0");
    expect(ip?.status.latestRef.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // No credential anywhere in what the agent wrote.
    expect(JSON.stringify([ir, ip])).not.toContain("pull-secret-1");
  });

  it("a steady pass costs no registry request and no write; a request picks up a new tag", async () => {
    const requests = agent.images!.registryRequests();
    const writes = agent.client.counts.writes;
    await agent.pass(new AbortController().signal);
    expect(agent.images!.registryRequests() - requests).toBe(0);
    expect(agent.client.counts.writes - writes).toBe(0);

    const pushed = await seedImage(registry, { repository: "team/app", tags: ["1.2.0"], salt: "new" });
    await k.client.raw({
      method: "PATCH",
      path: `${IMG}/namespaces/img-apps/imagerepositories/app`,
      contentType: "application/merge-patch+json",
      body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "now-1" } } },
    });
    await agent.pass(new AbortController().signal);
    const ir = await get("img-apps", "imagerepositories", "app");
    expect(ir?.status.lastHandledReconcileAt).toBe("now-1");
    expect(ir?.status.lastScanResult.tagCount).toBe(5);
    const ip = await get("img-apps", "imagepolicies", "app");
    expect(ip?.status.latestRef).toMatchObject({ tag: "1.2.0", digest: pushed.digest });
    expect(ip?.status.observedPreviousRef.tag).toBe("1.1.0");
    expect(ready(ip)?.message).toBe(
      `Latest image tag for '${registry.host}/team/app' updated from 1.1.0 to 1.2.0`,
    );
  });

  it("shipmate get images shows what flux get images shows", async () => {
    const all = await runCli(["get", "images", "all", "-n", "img-apps", "--kubeconfig", k.kube.kubeconfig]);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain("ImageRepository:");
    expect(all.stdout).toMatch(
      /img-apps\s+app\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+False\s+True\s+successful scan: found 5 tags/,
    );
    expect(all.stdout).toMatch(
      new RegExp(
        `img-apps\\s+app\\s+${registry.host}/team/app:1\\.2\\.0@sha256:[0-9a-f]{64}\\s+False\\s+True`,
      ),
    );
    const json = await runCli([
      "get",
      "images",
      "policy",
      "app",
      "-n",
      "img-apps",
      "--json",
      "--kubeconfig",
      k.kube.kubeconfig,
    ]);
    expect(JSON.parse(json.stdout)[0]).toMatchObject({ name: "app", ready: "True" });
    const missing = await runCli([
      "get",
      "images",
      "policy",
      "nope",
      "-n",
      "img-apps",
      "--kubeconfig",
      k.kube.kubeconfig,
    ]);
    expect(missing.code).toBe(1);
  });

  it("cross-namespace use follows accessFrom", async () => {
    const policy = {
      imageRepositoryRef: { name: "app", namespace: "img-apps" },
      policy: { alphabetical: {} },
    };
    await create(`${IMG}/namespaces/img-team/imagepolicies`, imagePolicy("img-team", "allowed", policy));
    await create(`${IMG}/namespaces/img-other/imagepolicies`, imagePolicy("img-other", "denied", policy));
    await agent.pass(new AbortController().signal);
    expect((await get("img-team", "imagepolicies", "allowed"))?.status.latestRef.tag).toBe("latest");
    const denied = await get("img-other", "imagepolicies", "denied");
    expect(ready(denied)).toMatchObject({ status: "False", reason: "AccessDenied" });
    expect(denied?.status.latestRef).toBeUndefined();
  });

  it("a field the agent does not honour is refused, naming it; a bad secret is one clear line", async () => {
    await create(
      `${IMG}/namespaces/img-apps/imagerepositories`,
      imageRepo("img-apps", "cloud", { image: `${registry.host}/team/app`, provider: "aws" }),
    );
    await create(
      `${IMG}/namespaces/img-apps/imagerepositories`,
      imageRepo("img-apps", "nosecret", {
        image: `${registry.host}/team/app`,
        insecure: true,
        secretRef: { name: "missing" },
      }),
    );
    await agent.pass(new AbortController().signal);
    const cloud = await get("img-apps", "imagerepositories", "cloud");
    expect(ready(cloud)).toMatchObject({ status: "False", reason: "UnsupportedField" });
    expect(ready(cloud)?.message).toContain("provider");
    expect(cloud?.status.conditions.find((c: { type: string }) => c.type === "Stalled")?.status).toBe("True");
    const nosecret = await get("img-apps", "imagerepositories", "nosecret");
    expect(ready(nosecret)).toMatchObject({
      status: "False",
      reason: "AuthenticationFailed",
      message: "secret img-apps/missing: not found",
    });
  });
});
