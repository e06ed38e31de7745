/**
 * Every chat/webhook provider against a real receiver on 127.0.0.1, through
 * the Notifier as the agent and the CLI use it: the payload each one posts
 * (Slack's checked against Slack's documented shape), HMAC signatures,
 * retries with backoff, no retry on a 4xx, the 5-minute dedupe, a dead
 * provider that never holds the caller, and no secret in any log line.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ProviderConfigError } from "../../src/notify/errors.ts";
import type { NotifyEvent } from "../../src/notify/event.ts";
import { Notifier, type NotifyTarget } from "../../src/notify/notifier.ts";
import { createProvider, type ProviderSettings } from "../../src/notify/providers/index.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { SlackIncomingWebhook } from "./slack-schema.ts";

const SHA = "0123456789abcdef0123456789abcdef01234567";
let rx: Receiver;
beforeAll(async () => {
  rx = await startReceiver();
});
afterAll(async () => rx?.close());
beforeEach(() => {
  rx.requests.length = 0;
  rx.answers.length = 0;
  rx.hang = false;
});

let seq = 0;
function event(over: Partial<NotifyEvent> = {}): NotifyEvent {
  return {
    involvedObject: {
      apiVersion: "kustomize.toolkit.fluxcd.io/v1",
      kind: "Kustomization",
      name: "apps",
      namespace: "flux-system",
    },
    severity: "info",
    timestamp: "2026-01-01T00:00:00Z",
    message: `ConfigMap/default/a configured (${++seq})`,
    reason: "ReconciliationSucceeded",
    metadata: { revision: `main@sha1:${SHA}`, summary: "cluster eu-1" },
    reportingController: "kustomize-controller",
    ...over,
  };
}

const lines: string[] = [];
const log = {
  warn: (obj: object, msg: string) => void lines.push(`${JSON.stringify(obj)} ${msg}`),
  debug: (obj: object, msg: string) => void lines.push(`${JSON.stringify(obj)} ${msg}`),
};

function target(settings: Partial<ProviderSettings> & { type: string }, path = "/hook"): NotifyTarget {
  const label = `Provider test/${settings.type}`;
  return {
    id: `${label}-${seq}`,
    provider: createProvider({ label, address: `${rx.url}${path}`, ...settings }),
  };
}

async function deliver(settings: Partial<ProviderSettings> & { type: string }, ev = event(), path?: string) {
  const n = new Notifier({ log, retry: { attempts: 3, baseMs: 10, maxMs: 50 } });
  n.send(ev, [target(settings, path)]);
  await n.idle();
  return { notifier: n, request: rx.requests.at(-1) };
}

describe("providers post what Flux posts", () => {
  it("slack: an incoming-webhook message of Slack's documented shape", async () => {
    const { request } = await deliver(
      { type: "slack", channel: "#ops" },
      event({ severity: "error", reason: "HealthCheckFailed" }),
    );
    const body = SlackIncomingWebhook.parse(request?.json);
    expect(body).toMatchObject({ channel: "#ops", username: "kustomize-controller" });
    expect(body.attachments?.[0]).toMatchObject({
      color: "danger",
      author_name: "kustomization/apps.flux-system",
      mrkdwn_in: ["text"],
      fields: [
        { title: "revision", value: `main@sha1:${SHA}`, short: false },
        { title: "summary", value: "cluster eu-1", short: false },
      ],
    });
    expect(body.attachments?.[0]?.text).toMatch(/^ConfigMap\/default\/a configured/);
    expect(request?.headers.authorization).toBeUndefined();
  });

  it("slack with a bot token: bearer auth, username as given", async () => {
    const { request } = await deliver({
      type: "slack",
      token: "xoxb-not-a-real-token-123",
      username: "shipmate",
    });
    expect(request?.headers.authorization).toBe("Bearer xoxb-not-a-real-token-123");
    expect(SlackIncomingWebhook.parse(request?.json)).toMatchObject({ username: "shipmate" });
  });

  it("discord: Slack's payload at the webhook's /slack endpoint", async () => {
    const { request } = await deliver({ type: "discord" }, event(), "/api/webhooks/1/abc");
    expect(request?.path).toBe("/api/webhooks/1/abc/slack");
    expect(SlackIncomingWebhook.safeParse(request?.json).success).toBe(true);
  });

  it("msteams: an Adaptive Card attachment with the metadata as facts", async () => {
    const { request } = await deliver({ type: "msteams" });
    const body = request?.json as {
      type: string;
      attachments: { contentType: string; content: { body: unknown[] } }[];
    };
    expect(body.type).toBe("message");
    expect(body.attachments[0]?.contentType).toBe("application/vnd.microsoft.card.adaptive");
    expect(body.attachments[0]?.content.body).toEqual([
      expect.objectContaining({ type: "TextBlock", text: "kustomization/apps.flux-system" }),
      expect.objectContaining({ type: "TextBlock", wrap: true }),
      {
        type: "FactSet",
        facts: [
          { title: "revision", value: `main@sha1:${SHA}` },
          { title: "summary", value: "cluster eu-1" },
        ],
      },
    ]);
  });

  it("generic: the event as JSON, gotk-component and the Secret's headers", async () => {
    const ev = event();
    const { request } = await deliver({ type: "generic", headers: { "x-team": "ops" } }, ev);
    expect(request?.json).toEqual(ev);
    expect(request?.headers["gotk-component"]).toBe("kustomize-controller");
    expect(request?.headers["x-team"]).toBe("ops");
    expect(request?.headers["x-signature"]).toBeUndefined();
  });

  it("generic-hmac: X-Signature is sha256=HMAC(token, exact body)", async () => {
    const { request } = await deliver({ type: "generic-hmac", token: "hmac-key-for-tests" });
    const want = `sha256=${createHmac("sha256", "hmac-key-for-tests")
      .update(request?.body ?? "")
      .digest("hex")}`;
    expect(request?.headers["x-signature"]).toBe(want);
  });

  it("alertmanager: one alert with Flux's labels; info ends at once", async () => {
    const { request } = await deliver({ type: "alertmanager" }, event({ timestamp: "2026-01-01T00:00:00Z" }));
    expect(request?.json).toEqual([
      {
        labels: {
          alertname: "FluxKustomizationReconciliationSucceeded",
          severity: "info",
          reason: "ReconciliationSucceeded",
          timestamp: "2026-01-01T00:00:00Z",
          kind: "Kustomization",
          name: "apps",
          namespace: "flux-system",
          revision: `main@sha1:${SHA}`,
        },
        annotations: { message: expect.stringMatching(/^ConfigMap/), summary: "cluster eu-1" },
        startsAt: "2026-01-01T00:00:00Z",
        endsAt: "2026-01-01T00:00:01.000Z",
      },
    ]);
  });

  it("basic auth in the address is sent as Authorization, not in the URL", async () => {
    const address = rx.url.replace("http://", "http://am-user:am-pass@");
    const { request } = await deliver({ type: "alertmanager", address: `${address}/api/v2/alerts` });
    expect(request?.headers.authorization).toBe(`Basic ${Buffer.from("am-user:am-pass").toString("base64")}`);
  });
});

describe("delivery", () => {
  it("a 5xx is retried with backoff until it goes through", async () => {
    rx.answers.push(503, 500);
    const { notifier } = await deliver({ type: "generic" });
    expect(rx.requests).toHaveLength(3);
    expect(notifier.stats).toMatchObject({ sent: 1, retried: 2, failed: 0 });
  });

  it("a 4xx is not retried; the give-up line names the provider and status, never the address", async () => {
    rx.answers.push(404);
    lines.length = 0;
    const secretPath = "/services/T000/B000/very-secret-webhook-path";
    const n = new Notifier({ log, retry: { attempts: 3, baseMs: 10, maxMs: 50 } });
    const given: string[] = [];
    n.send(event(), [{ ...target({ type: "slack" }, secretPath), onGiveUp: (m) => void given.push(m) }]);
    await n.idle();
    expect(rx.requests).toHaveLength(1);
    expect(given).toEqual(["notification not delivered after 1 attempt(s): Provider test/slack: HTTP 404"]);
    expect(lines.join("\n")).not.toContain("very-secret-webhook-path");
  });

  it("the same event within 5 minutes is sent once", async () => {
    const n = new Notifier({ log });
    const t = target({ type: "generic" });
    const ev = event();
    n.send(ev, [t]);
    n.send({ ...ev, timestamp: "2026-01-01T00:01:00Z" }, [t]);
    await n.idle();
    expect(rx.requests).toHaveLength(1);
    expect(n.stats.deduplicated).toBe(1);
  });

  it("a provider that never answers does not hold the caller; it times out and is retried in the background", async () => {
    rx.hang = true;
    const n = new Notifier({
      log,
      retry: { attempts: 2, baseMs: 10, maxMs: 10 },
      rate: { burst: 50, perMinute: 600 },
    });
    const t = { ...target({ type: "generic" }), timeoutMs: 200 };
    const started = performance.now();
    for (let i = 0; i < 20; i++) n.send(event(), [t]);
    // Queued, not sent: far below even one provider timeout (20 × 200 ms if it waited).
    expect(performance.now() - started).toBeLessThan(1000);
    await n.idle();
    expect(n.stats.failed).toBe(20);
  });
});

describe("bad provider settings: one line, no secret", () => {
  it.each([
    [
      "not a URL",
      { type: "slack", address: "hooks.slack.com/services/SECRET" },
      "Provider test/x: address is not a URL",
    ],
    [
      "not http",
      { type: "generic", address: "ftp://host/SECRET" },
      "Provider test/x: address must be an http or https URL, not ftp:",
    ],
    ["no address", { type: "msteams" }, "Provider test/x: no address"],
    [
      "generic-hmac without token",
      { type: "generic-hmac", address: "http://127.0.0.1/" },
      'needs a "token" key',
    ],
    [
      "github without token",
      { type: "github", address: "https://github.com/org/fleet" },
      'github needs a "token" key',
    ],
    [
      "gitea address without a repository",
      { type: "gitea", address: "http://127.0.0.1/", token: "t" },
      "repository's URL",
    ],
    [
      "unsupported type",
      { type: "telegram", address: "http://127.0.0.1/" },
      'type "telegram" is not supported by shipmate',
    ],
  ])("%s", (_name, settings, text) => {
    let err: unknown;
    try {
      createProvider({ label: "Provider test/x", ...settings } as ProviderSettings);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProviderConfigError);
    expect((err as Error).message).toContain(text);
    expect((err as Error).message).not.toContain("SECRET");
    expect((err as Error).message).not.toContain("\n");
  });
});
