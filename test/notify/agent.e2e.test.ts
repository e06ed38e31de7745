/**
 * End to end, as Flux's notification-controller would do it: a fleet whose
 * git holds Flux `Provider` and `Alert` objects (v1beta3, Flux's own CRDs),
 * the agent applies a Kustomization, and a Slack-style message reaches a
 * receiver on 127.0.0.1 while a real Gitea gets a commit status on the
 * revision applied. A Provider whose address is not a URL is said in one
 * Warning event on it, with no secret, and holds nothing up.
 */
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type ApiJson,
  configMap,
  type FleetRepo,
  getObject,
  makeAgent,
  namespace,
} from "../agent/helpers.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { SlackIncomingWebhook } from "./slack-schema.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

let gitea: GiteaServer;
let giteaRepo: GiteaRepo;
let slack: Receiver;
let fleet: FleetRepo;

const NS = "shipmate-system";

const k = kubeSuite({
  name: "notify",
  fluxCrds: ["notification.toolkit.fluxcd.io_providers.yaml", "notification.toolkit.fluxcd.io_alerts.yaml"],
  namespaces: [NS],
  alongside: async () => {
    [gitea, slack] = await Promise.all([startGitea(), startReceiver()]);
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
  await Promise.all([gitea?.stop(), slack?.close()]);
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
        provider("slack", { type: "slack", channel: "#deploys", secretRef: { name: "slack-url" } }),
        provider("gitea", {
          type: "gitea",
          address: `${gitea.url}/${giteaRepo.fullName}`,
          secretRef: { name: "gitea-token" },
        }),
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
});
