/**
 * Flux's Receiver rules (src/agent/receiver/rules.ts): the webhook path
 * notification-controller derives, and how each receiver type authenticates
 * a request.
 */
import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { refusedFields } from "../../src/agent/fields/support.ts";
import { type HookRequest, RECEIVER_FIELDS, verify, webhookPath } from "../../src/agent/receiver/rules.ts";

const TOKEN = "s3cr3t-token";
const body = Buffer.from('{"repository":{"repo_name":"team/app"},"push_data":{"tag":"1.2.0"}}');
const hmac = (algo: string, key = TOKEN) => `${algo}=${createHmac(algo, key).update(body).digest("hex")}`;
const req = (headers: Record<string, string>, b = body): HookRequest => ({ headers, body: b });

describe("webhook path", () => {
  it("is /hook/ and the hex sha256 of token, name and namespace", () => {
    expect(webhookPath(TOKEN, "app", "flux-system")).toBe(
      `/hook/${createHash("sha256").update(`${TOKEN}appflux-system`).digest("hex")}`,
    );
    expect(webhookPath(TOKEN, "app", "other")).not.toBe(webhookPath(TOKEN, "app", "flux-system"));
  });
});

describe("request authentication per type", () => {
  it.each([
    ["generic: the path is the secret", "generic", undefined, req({}), true],
    ["generic-hmac sha256", "generic-hmac", undefined, req({ "x-signature": hmac("sha256") }), true],
    ["generic-hmac sha1", "generic-hmac", undefined, req({ "x-signature": hmac("sha1") }), true],
    ["generic-hmac sha512", "generic-hmac", undefined, req({ "x-signature": hmac("sha512") }), true],
    [
      "generic-hmac wrong key",
      "generic-hmac",
      undefined,
      req({ "x-signature": hmac("sha256", "nope") }),
      false,
    ],
    ["generic-hmac no header", "generic-hmac", undefined, req({}), false],
    [
      "generic-hmac tampered body",
      "generic-hmac",
      undefined,
      req({ "x-signature": hmac("sha256") }, Buffer.from("{}")),
      false,
    ],
    [
      "github push in events",
      "github",
      ["push"],
      req({ "x-hub-signature-256": hmac("sha256"), "x-github-event": "push" }),
      true,
    ],
    [
      "github event not in events",
      "github",
      ["push"],
      req({ "x-hub-signature-256": hmac("sha256"), "x-github-event": "issues" }),
      false,
    ],
    ["github unsigned", "github", undefined, req({ "x-github-event": "push" }), false],
    [
      "gitlab token",
      "gitlab",
      undefined,
      req({ "x-gitlab-token": TOKEN, "x-gitlab-event": "Push Hook" }),
      true,
    ],
    ["gitlab wrong token", "gitlab", undefined, req({ "x-gitlab-token": "x" }), false],
    ["harbor Authorization", "harbor", undefined, req({ authorization: TOKEN }), true],
    ["harbor wrong Authorization", "harbor", undefined, req({ authorization: `Bearer ${TOKEN}` }), false],
    ["dockerhub payload", "dockerhub", undefined, req({}), true],
    ["dockerhub not JSON", "dockerhub", undefined, req({}, Buffer.from("<html>")), false],
    ["dockerhub no repository", "dockerhub", undefined, req({}, Buffer.from("{}")), false],
  ] as const)("%s", (_name, type, events, request, ok) => {
    const v = verify(type, TOKEN, events ? [...events] : undefined, request);
    expect(v.ok).toBe(ok);
    if (!v.ok) {
      expect(v.message).not.toContain("\n");
      expect(v.message).not.toContain(TOKEN);
    }
  });

  it("github ping is answered without notifying", () => {
    expect(
      verify(
        "github",
        TOKEN,
        ["push"],
        req({ "x-hub-signature-256": hmac("sha256"), "x-github-event": "ping" }),
      ),
    ).toEqual({
      ok: true,
      notify: false,
      note: "pong",
    });
  });
});

describe("Receiver fields", () => {
  it("types not implemented and CEL filters are refused by name", () => {
    expect(refusedFields({ type: "quay", resources: [] }, RECEIVER_FIELDS)).toEqual(["spec.type"]);
    expect(refusedFields({ type: "generic", resourceFilter: "true" }, RECEIVER_FIELDS)).toEqual([
      "spec.resourceFilter",
    ]);
    expect(
      refusedFields(
        { type: "github", resources: [{ kind: "ImageRepository", name: "app" }] },
        RECEIVER_FIELDS,
      ),
    ).toEqual([]);
  });
});
