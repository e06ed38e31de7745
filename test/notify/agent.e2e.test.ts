/**
 * End to end, as Flux's notification-controller would do it: a fleet whose
 * git holds Flux `Provider` and `Alert` objects (v1beta3, Flux's own CRDs),
 * the agent applies a Kustomization, and a Slack-style message reaches a
 * receiver on 127.0.0.1 while a real Gitea gets a commit status on the
 * revision applied. A Provider whose address is not a URL is said in one
 * Warning event on it, with no secret, and holds nothing up. Then image
 * automation end to end, on Debian's docker-registry: ImageRepository,
 * ImagePolicy and ImageUpdateAutomation written as Flux's image-update guide
 * gives them, a new tag pushed, the agent selects it, pushes the bump to
 * Gitea's main, applies that commit, and the Slack-style receiver and a
 * Gitea commit status on the pushed commit say so.
 */
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { stringify } from "yaml";
import {
  type ApiJson,
  configMap,
  deployment,
  type FleetRepo,
  getObject,
  makeAgent,
  namespace,
  waitFor,
} from "../agent/helpers.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";
import { seedImage, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { SlackIncomingWebhook } from "./slack-schema.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

let gitea: GiteaServer;
let giteaRepo: GiteaRepo;
let slack: Receiver;
let fleet: FleetRepo;
let registry: TestRegistry;

const NS = "shipmate-system";

const k = kubeSuite({
  name: "notify",
  fluxCrds: [
    "notification.toolkit.fluxcd.io_providers.yaml",
    "notification.toolkit.fluxcd.io_alerts.yaml",
    "image.toolkit.fluxcd.io_imagerepositories.yaml",
    "image.toolkit.fluxcd.io_imagepolicies.yaml",
    "image.toolkit.fluxcd.io_imageupdateautomations.yaml",
  ],
  namespaces: [NS],
  alongside: async () => {
    [gitea, slack, registry] = await Promise.all([startGitea(), startReceiver(), startRegistry()]);
  },
});
beforeAll(async () => {
  giteaRepo = await gitea.createRepo("fleet");
  fleet = k.fleet();
  // Secrets as a person creates them (never in git): the webhook URL and the forge token.
  await createSecret("slack-url", { address: `${slack.url}/services/T0/B0/secret-webhook-path` });
  await createSecret("gitea-token", { token: gitea.token });
  await createSecret("audit-hook", {
    address: `${slack.url}/audit`,
    token: "audit-hmac-key-1234",
    headers: "X-Team: platform\n",
  });
});
afterAll(async () => {
  await Promise.all([gitea?.stop(), slack?.close(), registry?.stop()]);
});

async function createSecret(name: string, data: Record<string, string>): Promise<void> {
  const res = await k.client.raw({
    method: "POST",
    path: `/api/v1/namespaces/${NS}/secrets`,
    body: { apiVersion: "v1", kind: "Secret", metadata: { name, namespace: NS }, stringData: data },
  });
  if (res.code !== 201) throw new Error(`Secret ${name}: ${res.code}`);
}

const provider = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "notification.toolkit.fluxcd.io/v1beta3",
  kind: "Provider",
  metadata: { name, namespace: NS },
  spec,
});
/** The Slack-style Provider (webhook URL from its Secret) and the Gitea commit-status Provider. */
const chatAndStatus = () => [
  provider("slack", { type: "slack", channel: "#deploys", secretRef: { name: "slack-url" } }),
  provider("gitea", {
    type: "gitea",
    address: `${gitea.url}/${giteaRepo.fullName}`,
    secretRef: { name: "gitea-token" },
  }),
];
const alert = (name: string, providerName: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: "notification.toolkit.fluxcd.io/v1beta3",
  kind: "Alert",
  metadata: { name, namespace: NS },
  spec: {
    providerRef: { name: providerName },
    eventSources: [{ kind: "Kustomization", name: "*" }],
    ...spec,
  },
});

describe("the agent sends its events to Flux Alerts", () => {
  it("a Kustomization applied: a Slack message and a Gitea commit status on the applied revision", async () => {
    const sha = fleet.commit({
      "clusters/test/apps.yaml": [
        namespace("notify-apps"),
        configMap("settings", "notify-apps", { level: "1" }),
      ],
      "clusters/test/notifications.yaml": [
        ...chatAndStatus(),
        provider("audit", { type: "generic-hmac", secretRef: { name: "audit-hook" } }),
        // matchLabels: the root Kustomization carries managed-by=shipmate, so only the first selects it.
        alert("audit", "audit", {
          eventSources: [
            { kind: "Kustomization", name: "*", matchLabels: { "app.kubernetes.io/managed-by": "shipmate" } },
          ],
        }),
        alert("audit-other", "audit", {
          eventSources: [
            { kind: "Kustomization", name: "*", matchLabels: { "app.kubernetes.io/managed-by": "helm" } },
          ],
          summary: "must not be sent",
        }),
        provider("broken", { type: "generic", address: "not a url" }),
        provider("proxied", {
          type: "generic",
          address: "http://127.0.0.1:9/",
          proxy: "http://127.0.0.1:3128",
        }),
        alert("proxied", "proxied"),
        alert("chat", "slack", { summary: "cluster test" }),
        alert("status", "gitea"),
        alert("broken", "broken"),
      ],
    });
    execFileSync("git", ["push", "-q", "-f", giteaRepo.authedCloneUrl, "HEAD:refs/heads/main"], {
      cwd: fleet.work,
      stdio: "pipe",
    });

    const agent = makeAgent(k.kube, fleet);
    try {
      const summary = await agent.once();
      expect(summary.reconciled.find((k) => k.name === "fleet")?.ready).toBe(true);
    } finally {
      agent.close();
    }

    // Slack: the message Flux's slack provider sends, of Slack's shape, naming the revision.
    const messages = slack.requests.filter((r) => r.path === "/services/T0/B0/secret-webhook-path");
    expect(messages.length).toBeGreaterThanOrEqual(1);
    const body = SlackIncomingWebhook.parse(messages[0]?.json);
    expect(body).toMatchObject({ channel: "#deploys", username: "kustomize-controller" });
    const attachment = body.attachments?.[0];
    expect(attachment).toMatchObject({ color: "good", author_name: `kustomization/fleet.${NS}` });
    expect(attachment?.text).toContain("ConfigMap/notify-apps/settings created");
    expect(attachment?.fields).toEqual(
      expect.arrayContaining([
        { title: "revision", value: `main@sha1:${sha}`, short: false },
        { title: "summary", value: "cluster test", short: false },
      ]),
    );

    // generic-hmac from the Secret: address, HMAC token and headers; matchLabels read from the object.
    const audit = slack.requests.filter((r) => r.path === "/audit");
    expect(audit).toHaveLength(1);
    expect(audit[0]?.headers["x-team"]).toBe("platform");
    expect(audit[0]?.headers["x-signature"]).toBe(
      `sha256=${createHmac("sha256", "audit-hmac-key-1234")
        .update(audit[0]?.body ?? "")
        .digest("hex")}`,
    );
    expect(audit[0]?.json).toMatchObject({
      involvedObject: { kind: "Kustomization", name: "fleet", namespace: NS },
      severity: "info",
      reason: "ReconciliationSucceeded",
      metadata: { revision: `main@sha1:${sha}` },
      reportingController: "kustomize-controller",
    });

    // Gitea: the status on the very commit applied, context and description as Flux makes them.
    const uid = (
      await getObject(
        k.client,
        `/apis/notification.toolkit.fluxcd.io/v1beta3/namespaces/${NS}/providers/gitea`,
      )
    )?.metadata.uid as string;
    const statuses = await gitea.api<ApiJson[]>(
      "GET",
      `/repos/${giteaRepo.fullName}/commits/${sha}/statuses`,
    );
    expect(
      statuses.map((s) => ({ context: s.context, status: s.status, description: s.description })),
    ).toEqual([
      {
        context: `kustomization/fleet/${uid.split("-")[0]}`,
        status: "success",
        description: "reconciliation succeeded",
      },
    ]);

    // The broken Provider: one Warning event on it, one line, and nothing else held up.
    const events = await getObject(
      k.client,
      `/api/v1/namespaces/${NS}/events?fieldSelector=involvedObject.kind%3DProvider,involvedObject.name%3Dbroken`,
    );
    expect(events?.items.map((e: ApiJson) => [e.type, e.reason, e.message])).toEqual([
      ["Warning", "InvalidProvider", `Provider ${NS}/broken: address is not a URL`],
    ]);

    const proxied = await getObject(
      k.client,
      `/api/v1/namespaces/${NS}/events?fieldSelector=involvedObject.kind%3DProvider,involvedObject.name%3Dproxied`,
    );
    expect(proxied?.items.map((e: ApiJson) => [e.reason, e.message])).toEqual([
      [
        "UnsupportedField",
        `Provider ${NS}/proxied: Provider field not supported by the shipmate agent, refused rather than ignored: spec.proxy (sending notifications through a proxy is not implemented)`,
      ],
    ]);

    // No secret anywhere the agent writes: events carry neither the webhook path nor the token.
    const all = JSON.stringify(await getObject(k.client, `/api/v1/namespaces/${NS}/events`));
    expect(all).not.toContain("secret-webhook-path");
    expect(all).not.toContain(gitea.token);
  });

  it("a build that fails: an error message (danger) and a failure status on the new revision", async () => {
    slack.requests.length = 0;
    const sha = fleet.commit({
      "clusters/test/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n",
    });
    execFileSync("git", ["push", "-q", "-f", giteaRepo.authedCloneUrl, "HEAD:refs/heads/main"], {
      cwd: fleet.work,
      stdio: "pipe",
    });
    const agent = makeAgent(k.kube, fleet);
    try {
      await agent.once();
    } finally {
      agent.close();
    }
    const message = slack.requests
      .filter((r) => r.path.startsWith("/services/"))
      .map((r) => SlackIncomingWebhook.parse(r.json))
      .find((m) => m.attachments?.[0]?.color === "danger");
    expect(message?.attachments?.[0]?.fields).toContainEqual({
      title: "revision",
      value: `main@sha1:${sha}`,
      short: false,
    });
    const statuses = await gitea.api<ApiJson[]>(
      "GET",
      `/repos/${giteaRepo.fullName}/commits/${sha}/statuses`,
    );
    expect(statuses.map((s) => [s.status, s.description])).toEqual([["failure", "build failed"]]);
  });

  it("image automation: a new tag is selected, pushed to Gitea and applied; Slack and a commit status say so", async () => {
    slack.requests.length = 0;
    const image = `${registry.host}/stefanprodan/podinfo`;
    await seedImage(registry, { repository: "stefanprodan/podinfo", tags: ["1.0.0"], salt: "a" });
    // As `flux create secret git` makes it: the credentials the automation pushes with.
    await createSecret("fleet-git", { username: gitea.admin.username, password: gitea.token });
    const remote = `${gitea.url}/${giteaRepo.fullName}.git`;
    fleet.commit({
      "clusters/test/broken.yaml": null,
      // The fleet's own source, as `flux bootstrap` writes gotk-sync.yaml.
      "clusters/test/fleet-sync.yaml": [
        {
          apiVersion: "source.toolkit.fluxcd.io/v1",
          kind: "GitRepository",
          metadata: { name: "fleet", namespace: NS },
          spec: { interval: "1m0s", ref: { branch: "main" }, secretRef: { name: "fleet-git" }, url: remote },
        },
      ],
      // Flux's image-update guide, as written there (its podinfo on this registry: plain HTTP, hence insecure).
      "clusters/test/podinfo-automation.yaml": `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: ${NS}
spec:
  image: ${image}
  interval: 5m
  insecure: true
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: ${NS}
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: 1.0.x
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: fleet
  namespace: ${NS}
spec:
  interval: 30m
  sourceRef:
    kind: GitRepository
    name: fleet
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      messageTemplate: '{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}'
    push:
      branch: main
  update:
    path: ./clusters/test
    strategy: Setters
`,
      // The guide's Deployment, its image marked for the policy (a comment, so written as text).
      "clusters/test/podinfo.yaml": [
        stringify(namespace("apps")),
        stringify(deployment("podinfo", "apps", `${image}:1.0.0`)).replace(
          `image: ${image}:1.0.0`,
          `image: ${image}:1.0.0 # {"$imagepolicy": "${NS}:podinfo"}`,
        ),
      ].join("---\n"),
      // As Flux's notification guides write them: chat for the image and apply events, status for the commits.
      "clusters/test/notifications.yaml": [
        ...chatAndStatus(),
        alert("chat", "slack", {
          eventSeverity: "info",
          eventSources: [
            { kind: "ImagePolicy", name: "*" },
            { kind: "ImageUpdateAutomation", name: "*" },
            { kind: "Kustomization", name: "*" },
          ],
        }),
        alert("status", "gitea"),
      ],
    });
    execFileSync("git", ["push", "-q", "-f", giteaRepo.authedCloneUrl, "HEAD:refs/heads/main"], {
      cwd: fleet.work,
      stdio: "pipe",
    });

    // The agent as the manifests run it: image automation on, the fleet fetched from Gitea.
    const agent = k.agent(fleet, "fleet", { imageAutomation: true, repo: remote });
    const pass = (force = false) => agent.pass(new AbortController().signal, force);
    const iua = () =>
      getObject(k.client, `/apis/image.toolkit.fluxcd.io/v1/namespaces/${NS}/imageupdateautomations/fleet`);
    const deployedImage = async () =>
      (await getObject(k.client, "/apis/apps/v1/namespaces/apps/deployments/podinfo"))?.spec.template.spec
        .containers[0].image as string | undefined;
    await agent.once();
    // The steady state: 1.0.0 selected, nothing to push.
    await waitFor(async () => {
      const ready = (await iua())?.status?.conditions?.find((c: ApiJson) => c.type === "Ready");
      if (ready?.message === "repository up-to-date") return true;
      await pass();
    });
    expect(await deployedImage()).toBe(`${image}:1.0.0`);
    const before = (await gitea.api<ApiJson>("GET", `/repos/${giteaRepo.fullName}/branches/main`)).commit.id;

    // A new tag; `flux reconcile image repository podinfo` asks for the scan now.
    await seedImage(registry, { repository: "stefanprodan/podinfo", tags: ["1.0.1"], salt: "b" });
    await k.client.raw({
      method: "PATCH",
      path: `/apis/image.toolkit.fluxcd.io/v1/namespaces/${NS}/imagerepositories/podinfo`,
      contentType: "application/merge-patch+json",
      body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "new-tag" } } },
    });
    const pushed = await waitFor(async () => {
      const commit = (await iua())?.status?.lastPushCommit as string | undefined;
      if (commit) return commit;
      await pass();
    });
    const tip = await gitea.api<ApiJson>("GET", `/repos/${giteaRepo.fullName}/branches/main`);
    expect(tip.commit.id).toBe(pushed);
    expect(pushed).not.toBe(before);
    const commit = await gitea.api<ApiJson>("GET", `/repos/${giteaRepo.fullName}/git/commits/${pushed}`);
    expect(commit.commit.message.trim()).toBe(`${image}:1.0.0 -> ${image}:1.0.1`);
    expect(commit.commit.author).toMatchObject({
      name: "fluxcdbot",
      email: "fluxcdbot@users.noreply.github.com",
    });
    expect(commit.parents.map((p: ApiJson) => p.sha)).toEqual([before]);

    // The agent applies the pushed commit (no kubelet here: the applied object is what is checked).
    await waitFor(async () => {
      if ((await deployedImage()) === `${image}:1.0.1`) return true;
      await pass(true);
    });
    const root = await getObject(
      k.client,
      `/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/${NS}/kustomizations/fleet`,
    );
    expect(root?.status.lastAppliedRevision).toBe(`main@sha1:${pushed}`);

    // Slack: the tag selected, the commit pushed, the commit applied; each of Slack's shape.
    const chat = async (author: string, match: (text: string) => boolean) =>
      waitFor(async () =>
        slack.requests
          .filter((r) => r.path === "/services/T0/B0/secret-webhook-path")
          .map((r) => SlackIncomingWebhook.parse(r.json).attachments?.[0])
          .find((a) => a?.author_name === author && match(a.text ?? "")),
      );
    const policy = await chat(`imagepolicy/podinfo.${NS}`, (t) => t.includes("1.0.1"));
    expect(policy?.text).toBe(`Latest image tag for '${image}' updated from 1.0.0 to 1.0.1`);
    expect(policy?.color).toBe("good");
    const automation = await chat(`imageupdateautomation/fleet.${NS}`, (t) =>
      t.includes(`pushed commit '${pushed.slice(0, 7)}' to branch 'main'`),
    );
    expect(automation?.text).toContain(`${image}:1.0.0 -> ${image}:1.0.1`);
    const applied = await chat(`kustomization/fleet.${NS}`, (t) =>
      t.includes("Deployment/apps/podinfo configured"),
    );
    expect(applied?.fields).toContainEqual({ title: "revision", value: `main@sha1:${pushed}`, short: false });

    // Gitea: a success status on the very commit the automation pushed.
    const uid = (
      await getObject(
        k.client,
        `/apis/notification.toolkit.fluxcd.io/v1beta3/namespaces/${NS}/providers/gitea`,
      )
    )?.metadata.uid as string;
    const statuses = await waitFor(async () => {
      const list = await gitea.api<ApiJson[]>(
        "GET",
        `/repos/${giteaRepo.fullName}/commits/${pushed}/statuses`,
      );
      return list.length ? list : undefined;
    });
    expect(statuses.map((s) => [s.context, s.status, s.description])).toEqual([
      [`kustomization/fleet/${uid.split("-")[0]}`, "success", "reconciliation succeeded"],
    ]);
    // No credential in anything the agent wrote.
    expect(JSON.stringify(await getObject(k.client, `/api/v1/namespaces/${NS}/events`))).not.toContain(
      gitea.token,
    );
    expect(JSON.stringify(await iua())).not.toContain(gitea.token);
  });
});
