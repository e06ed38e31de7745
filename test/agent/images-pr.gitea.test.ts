/**
 * An in-cluster ImageUpdateAutomation whose `git.push.branch` is not its
 * checkout branch, on real parts: a kube-apiserver WITHOUT Flux's CRDs (the
 * agent installs its own), Debian's docker-registry and a real Gitea holding
 * the fleet. shipmate.yaml says production delivers by pull request and
 * staging by push: the production automation's branch is proposed into main
 * through Gitea (the GitRepository Secret's password is the forge token), and
 * a later bump updates the same request; the staging automation's branch is
 * pushed with no request. A request that fails after its push (a password
 * Gitea's API does not take as a token) is pending, Ready=False, and asked
 * for again on the next run once the Secret holds a token.
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { deployment, FLEET_YAML } from "../helpers/fleet.ts";
import { giteaFleet } from "../helpers/gitea.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";
import { seedImage, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { type ApiJson, adminClient, FleetRepo, getObject, makeAgent, namespace } from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

let kube: KubeCluster;
let client: KubeClient;
let registry: TestRegistry;
let gitea: GiteaServer;
let repo: GiteaRepo;
let fleet: FleetRepo;
let agent: Agent;

const IMG = "/apis/image.toolkit.fluxcd.io/v1";

async function create(path: string, obj: object): Promise<void> {
  const res = await client.raw({ method: "POST", path, body: obj });
  expect(res.code, JSON.stringify(res.body)).toBe(201);
}

const automation = (name: string, path: string, branch: string) => ({
  apiVersion: "image.toolkit.fluxcd.io/v1",
  kind: "ImageUpdateAutomation",
  metadata: { name, namespace: "flux-system" },
  spec: {
    interval: "30m",
    sourceRef: { kind: "GitRepository", name: "fleet" },
    git: {
      checkout: { ref: { branch: "main" } },
      commit: { author: { email: "fluxcdbot@users.noreply.github.com", name: "fluxcdbot" } },
      push: { branch },
    },
    update: { path, strategy: "Setters" },
  },
});

const ready = (o: ApiJson | undefined) =>
  (o?.status?.conditions as { type: string; status: string; message: string }[] | undefined)?.find(
    (c) => c.type === "Ready",
  );
const openRequests = () =>
  gitea.api<{ number: number; title: string; head: { ref: string }; base: { ref: string } }[]>(
    "GET",
    `/repos/${repo.fullName}/pulls?state=open`,
  );
const fileOn = async (ref: string, path: string) =>
  (
    await fetch(`${gitea.url}/api/v1/repos/${repo.fullName}/raw/${path}?ref=${ref}`, {
      headers: { Authorization: `token ${gitea.token}` },
    })
  ).text();

beforeAll(async () => {
  [kube, registry, gitea] = await Promise.all([startKube({ name: "imgpr" }), startRegistry(), startGitea()]);
  client = adminClient(kube);
  await seedImage(registry, { repository: "team/web", tags: ["1.0.0", "1.1.0"], salt: "a" });
  const image = `${registry.host}/team/web`;
  repo = await giteaFleet(gitea, "imgpr-fleet", {
    "shipmate.yaml": FLEET_YAML, // staging by push, production by pull request
    "apps/staging/web.yaml": deployment("web", "staging", image, "1.0.0", "web"),
    "apps/production/web.yaml": deployment("web", "production", image, "1.0.0", "web"),
  });
  fleet = FleetRepo.create();
  fleet.commit({ "clusters/test/ns.yaml": [namespace("imgpr-apps")] });
  agent = makeAgent(kube, fleet, { name: "imgpr", imageAutomation: true, forge: "gitea" });
  await agent.setup();
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  await create("/api/v1/namespaces", namespace("flux-system"));
  await create("/api/v1/namespaces/flux-system/secrets", {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "fleet-auth", namespace: "flux-system" },
    data: { username: b64(gitea.admin.username), password: b64(gitea.token) },
  });
  await create("/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories", {
    apiVersion: "source.toolkit.fluxcd.io/v1",
    kind: "GitRepository",
    metadata: { name: "fleet", namespace: "flux-system" },
    spec: {
      interval: "1h",
      url: `${gitea.url}/${repo.fullName}.git`,
      ref: { branch: "main" },
      secretRef: { name: "fleet-auth" },
    },
  });
  await create(`${IMG}/namespaces/flux-system/imagerepositories`, {
    apiVersion: "image.toolkit.fluxcd.io/v1",
    kind: "ImageRepository",
    metadata: { name: "web", namespace: "flux-system" },
    spec: { image, interval: "1h", insecure: true },
  });
  await create(`${IMG}/namespaces/flux-system/imagepolicies`, {
    apiVersion: "image.toolkit.fluxcd.io/v1",
    kind: "ImagePolicy",
    metadata: { name: "web", namespace: "flux-system" },
    spec: { imageRepositoryRef: { name: "web" }, policy: { semver: { range: "1.x" } } },
  });
  await create(
    `${IMG}/namespaces/flux-system/imageupdateautomations`,
    automation("production", "./apps/production", "image-updates/production"),
  );
  await create(
    `${IMG}/namespaces/flux-system/imageupdateautomations`,
    automation("staging", "./apps/staging", "image-updates/staging"),
  );
});

afterAll(async () => {
  agent?.close();
  client?.close();
  fleet?.remove();
  await Promise.all([registry?.stop(), gitea?.stop(), kube?.stop()]);
});

it("a push branch of a pull-request environment is proposed into main; staging's is only pushed", async () => {
  await agent.once();
  const prod = await getObject(client, `${IMG}/namespaces/flux-system/imageupdateautomations/production`);
  expect(ready(prod)?.status, ready(prod)?.message).toBe("True");
  const requests = await openRequests();
  expect(requests).toHaveLength(1);
  const [request] = requests;
  expect(request).toMatchObject({
    head: { ref: "image-updates/production" },
    base: { ref: "main" },
    title: `Update ${registry.host}/team/web to 1.1.0`,
  });
  expect(ready(prod)?.message).toMatch(
    new RegExp(
      `^pushed commit '[0-9a-f]{7}' to branch 'image-updates/production'; pull request .*/pulls/${request!.number} opened$`,
    ),
  );
  expect(await fileOn("image-updates/production", "apps/production/web.yaml")).toContain(":1.1.0 #");
  expect(await fileOn("main", "apps/production/web.yaml")).toContain(":1.0.0 #");

  const staging = await getObject(client, `${IMG}/namespaces/flux-system/imageupdateautomations/staging`);
  expect(ready(staging)?.message).toMatch(/^pushed commit '[0-9a-f]{7}' to branch 'image-updates\/staging'$/);
  expect(await fileOn("image-updates/staging", "apps/staging/web.yaml")).toContain(":1.1.0 #");
  // The forge token stays out of what the agent wrote.
  expect(JSON.stringify([prod, staging])).not.toContain(gitea.token);
});

it("a later bump updates the same request: one open request, the branch at the new tag", async () => {
  await seedImage(registry, { repository: "team/web", tags: ["1.2.0"], salt: "b" });
  await client.raw({
    method: "PATCH",
    path: `${IMG}/namespaces/flux-system/imagerepositories/web`,
    contentType: "application/merge-patch+json",
    body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "bump-2" } } },
  });
  await agent.once();
  const requests = await openRequests();
  expect(requests).toHaveLength(1);
  expect(requests[0]).toMatchObject({
    head: { ref: "image-updates/production" },
    title: `Update ${registry.host}/team/web to 1.2.0`,
  });
  expect(await fileOn("image-updates/production", "apps/production/web.yaml")).toContain(":1.2.0 #");
  const prod = await getObject(client, `${IMG}/namespaces/flux-system/imageupdateautomations/production`);
  expect(ready(prod)?.message).toMatch(/; pull request .* updated$/);
});

it("a request that fails after the push is pending, and asked for again on the next run with no new bump", async () => {
  // The Secret holds the admin's password: git accepts it, Gitea's API does not take it as a token.
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  await create("/api/v1/namespaces/flux-system/secrets", {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "fleet-password", namespace: "flux-system" },
    data: { username: b64(gitea.admin.username), password: b64(gitea.admin.password) },
  });
  await create("/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories", {
    apiVersion: "source.toolkit.fluxcd.io/v1",
    kind: "GitRepository",
    metadata: { name: "fleet-password", namespace: "flux-system" },
    spec: {
      interval: "1h",
      url: `${gitea.url}/${repo.fullName}.git`,
      ref: { branch: "main" },
      secretRef: { name: "fleet-password" },
    },
  });
  const retry = automation("retry", "./apps/production", "image-updates/retry");
  retry.spec.sourceRef.name = "fleet-password";
  await create(`${IMG}/namespaces/flux-system/imageupdateautomations`, retry);
  // Plain passes from here: only the automations that are due run (a new one, or one asked for).
  const path = `${IMG}/namespaces/flux-system/imageupdateautomations/retry`;
  await agent.pass(new AbortController().signal);
  const failed = await getObject(client, path);
  expect(ready(failed)).toMatchObject({ status: "False", reason: "PullRequestFailed" });
  expect(ready(failed)?.message).toMatch(
    /^pushed commit '[0-9a-f]{7}' to branch 'image-updates\/retry'; pull request pending \(retried on the next run\): .+/,
  );
  expect(ready(failed)?.message).not.toContain("\n");
  expect(JSON.stringify(failed)).not.toContain(gitea.admin.password);
  expect(failed?.status.lastPushCommit).toMatch(/^[0-9a-f]{40}$/);
  expect(await fileOn("image-updates/retry", "apps/production/web.yaml")).toContain(":1.2.0 #");
  const heads = async () => (await openRequests()).map((r) => r.head.ref);
  expect(await heads()).not.toContain("image-updates/retry");

  // The token fixed, nothing new to push: the next run (here a reconcile request) opens the request.
  await client.raw({
    method: "PATCH",
    path: "/api/v1/namespaces/flux-system/secrets/fleet-password",
    contentType: "application/merge-patch+json",
    body: { data: { password: b64(gitea.token) } },
  });
  await client.raw({
    method: "PATCH",
    path,
    contentType: "application/merge-patch+json",
    body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "retry-1" } } },
  });
  await agent.pass(new AbortController().signal);
  const opened = await getObject(client, path);
  const request = (await openRequests()).find((r) => r.head.ref === "image-updates/retry");
  expect(request).toMatchObject({
    base: { ref: "main" },
    title: `Update ${registry.host}/team/web to 1.2.0`,
  });
  expect(ready(opened)).toMatchObject({ status: "True", reason: "Succeeded" });
  expect(ready(opened)?.message).toMatch(
    new RegExp(`^branch 'image-updates/retry' is pushed; pull request .*/pulls/${request!.number} opened$`),
  );
  expect(opened?.status.lastPushCommit).toBe(failed?.status.lastPushCommit);

  // Done: the run after asks the forge nothing more and says the repository is up to date.
  await client.raw({
    method: "PATCH",
    path,
    contentType: "application/merge-patch+json",
    body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "retry-2" } } },
  });
  await agent.pass(new AbortController().signal);
  expect(ready(await getObject(client, path))?.message).toBe("repository up-to-date");
});
