import { describe, expect, it } from "vitest";
import { authenticate, hmacSignature, type WebhookAuth } from "../../src/webhooks/auth.ts";
import { CoalescingQueue, mergeScopes, type RefreshScope } from "../../src/webhooks/queue.ts";

const SECRET = "a-shared-secret-of-some-length";
const BODY = Buffer.from('{"events":[]}');

type Row = [string, WebhookAuth, Record<string, string>, string, boolean];

describe("webhook authentication", () => {
  it.each<Row>([
    [
      "hmac: the body's HMAC-SHA256 is accepted",
      { secret: SECRET },
      { "x-hub-signature-256": hmacSignature(SECRET, BODY) },
      "",
      true,
    ],
    [
      "hmac: a signature made with another secret is refused",
      { secret: SECRET },
      { "x-hub-signature-256": hmacSignature("other", BODY) },
      "",
      false,
    ],
    [
      "hmac: a signature of another body is refused",
      { secret: SECRET },
      { "x-hub-signature-256": hmacSignature(SECRET, "{}") },
      "",
      false,
    ],
    [
      "hmac: a wrong signature is not rescued by a right bearer token",
      { secret: SECRET },
      { "x-hub-signature-256": "sha256=00", authorization: `Bearer ${SECRET}` },
      "",
      false,
    ],
    [
      "bearer: Authorization: Bearer <secret> is accepted",
      { secret: SECRET },
      { authorization: `Bearer ${SECRET}` },
      "",
      true,
    ],
    [
      "bearer: the bare secret as Authorization (Harbor's auth header) is accepted",
      { secret: SECRET },
      { authorization: SECRET },
      "",
      true,
    ],
    ["bearer: another token is refused", { secret: SECRET }, { authorization: "Bearer nope" }, "", false],
    [
      "bearer: a prefix of the secret is refused",
      { secret: SECRET },
      { authorization: `Bearer ${SECRET.slice(0, 10)}` },
      "",
      false,
    ],
    [
      "query: ?token=<secret> is accepted (Docker Hub cannot set headers)",
      { secret: SECRET },
      {},
      `token=${SECRET}`,
      true,
    ],
    ["query: a wrong token is refused", { secret: SECRET }, {}, "token=guess", false],
    ["none: a delivery proving nothing is refused", { secret: SECRET }, {}, "", false],
    [
      "none: without a secret, nothing is accepted by default",
      {},
      { authorization: "Bearer anything" },
      "",
      false,
    ],
    ["none: without a secret, --allow-unauthenticated accepts", { allowUnauthenticated: true }, {}, "", true],
  ])("%s", (_name, auth, headers, query, ok) => {
    expect(authenticate(auth, headers, new URLSearchParams(query), BODY).ok).toBe(ok);
  });
});

describe("refresh queue", () => {
  const images = (...names: string[]): RefreshScope => ({ kind: "images", images: new Set(names) });

  it.each<[string, RefreshScope | undefined, RefreshScope, RefreshScope]>([
    ["scopes: the first request is taken as is", undefined, images("a"), images("a")],
    ["scopes: image sets are united", images("a"), images("b", "a"), images("a", "b")],
    ["scopes: everything absorbs images", images("a"), { kind: "all" }, { kind: "all" }],
    ["scopes: images do not narrow everything", { kind: "all" }, images("a"), { kind: "all" }],
  ])("%s", (_name, a, b, merged) => {
    expect(mergeScopes(a, b)).toEqual(merged);
  });

  it("coalesces: requests during a run make one more run, never a backlog", async () => {
    const runs: string[][] = [];
    let release: (() => void) | undefined;
    const queue = new CoalescingQueue<RefreshScope>(async (scope) => {
      runs.push(scope.kind === "all" ? ["*"] : [...scope.images].sort());
      if (runs.length === 1) await new Promise<void>((r) => (release = r));
    }, mergeScopes);
    const first = queue.request(images("a"));
    await new Promise((r) => setImmediate(r));
    const later = [queue.request(images("b")), queue.request(images("c")), queue.request(images("b"))];
    release?.();
    await Promise.all([first, ...later]);
    expect(runs).toEqual([["a"], ["b", "c"]]);
    expect(queue.busy).toBe(false);
  });

  it("coalesces: a failing run does not stop the next one", async () => {
    let calls = 0;
    const queue = new CoalescingQueue<RefreshScope>(async () => {
      calls++;
      if (calls === 1) throw new Error("registry down");
    }, mergeScopes);
    await queue.request(images("a"));
    await queue.request(images("a"));
    expect(calls).toBe(2);
  });
});
