/**
 * `shipmate serve` end to end: the real docker-registry sends its
 * notifications to it, and a pushed tag lands in the fleet repository (a
 * real git remote over smart HTTP) as a commit within seconds. The other
 * senders' formats reach a second registry's images through the same
 * running server; bad deliveries do nothing.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hmacSignature } from "../../src/webhooks/auth.ts";
import { deployment, fluxPolicy } from "../helpers/fleet.ts";
import { waitFor } from "../helpers/wait.ts";
import { type GitHttpServer, git, show, startGitHttpServer, tempDir } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { freePort, type ServeProcess, spawnServe } from "./helpers.ts";

const SECRET = randomBytes(16).toString("hex");
const GIT_TOKEN = randomBytes(12).toString("hex");

let notifying: TestRegistry;
let quiet: TestRegistry;
let gitServer: GitHttpServer;
let bare: string;
let serve: ServeProcess;
let endpoint: string;
let policiesDir: string;
let cacheHome: string;

const fileAt = (path: string) => show(bare, "main", path);
const head = () => git(bare, ["rev-parse", "main"]).trim();

const until = <T>(probe: () => T | undefined, ms: number, what: string): Promise<T> =>
  waitFor(probe, { ms, what, detail: () => serve.output().slice(-3000) });

/** POST with full control of headers (and no Content-Length when `chunked`). */
function post(
  url: string,
  body: Buffer | string,
  headers: Record<string, string>,
  chunked = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    if (chunked) {
      const buf = Buffer.from(body);
      for (let i = 0; i < buf.length; i += 64 * 1024) req.write(buf.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(body);
  });
}

beforeAll(async () => {
  const port = await freePort();
  endpoint = `http://127.0.0.1:${port}/hooks/registry`;
  notifying = await startRegistry({
    notifications: {
      endpoints: [
        {
          name: "shipmate",
          url: endpoint,
          headers: { Authorization: [`Bearer ${SECRET}`] },
          timeout: "2s",
          threshold: 3,
          backoff: "200ms",
          ignoredmediatypes: ["application/octet-stream"],
        },
      ],
    },
  });
  quiet = await startRegistry();
  await seedTags(notifying, "team/app", ["1.0.0", "0.9.0"]);
  await seedTags(quiet, "team/api", ["1.0.0"]);

  policiesDir = tempDir("shipmate-serve-policies-");
  mkdirSync(policiesDir, { recursive: true });
  writeFileSync(join(policiesDir, "app.yaml"), fluxPolicy("app", `${notifying.host}/team/app`));
  writeFileSync(join(policiesDir, "api.yaml"), fluxPolicy("api", `${quiet.host}/team/api`));

  gitServer = await startGitHttpServer({ user: "x-access-token", password: GIT_TOKEN });
  const url = gitServer.createRepo("fleet", {
    "apps/staging/app/deployment.yaml": deployment(
      "app",
      "staging",
      `${notifying.host}/team/app`,
      "1.0.0",
      "app",
    ),
    "apps/staging/api/deployment.yaml": deployment(
      "api",
      "staging",
      `${quiet.host}/team/api`,
      "1.0.0",
      "api",
    ),
  });
  bare = join(gitServer.root, "fleet.git");
  cacheHome = tempDir("shipmate-serve-cache-");
  serve = spawnServe(
    [
      "--repo",
      url,
      "--policies",
      policiesDir,
      "--listen",
      `127.0.0.1:${port}`,
      "--no-cache",
      "--max-body-bytes",
      "65536",
    ],
    { SHIPMATE_WEBHOOK_SECRET: SECRET, SHIPMATE_GIT_TOKEN: GIT_TOKEN, XDG_CACHE_HOME: cacheHome },
  );
  await serve.waitFor((l) => l.msg === "listening for registry webhooks");
});

afterAll(async () => {
  const code = await serve?.stop();
  expect(code).toBe(0);
  await notifying?.stop();
  await quiet?.stop();
  await gitServer?.close();
  rmSync(policiesDir, { recursive: true, force: true });
  rmSync(cacheHome, { recursive: true, force: true });
});

describe("shipmate serve", () => {
  it("distribution notifications: a pushed tag is committed to the fleet repository", async () => {
    const before = head();
    await seedTags(notifying, "team/app", ["1.1.0"]);
    // How fast is the webhook benchmark's question (bench/RESULTS.md), not this test's.
    await until(
      () => (fileAt("apps/staging/app/deployment.yaml").includes(":1.1.0 #") ? true : undefined),
      60_000,
      "the commit",
    );
    expect(head()).not.toBe(before);
    expect(git(bare, ["log", "-1", "--format=%s", "main"])).toMatch(/team\/app/);
    // Nothing else moved: the other app keeps its version.
    expect(fileAt("apps/staging/api/deployment.yaml")).toContain(`${quiet.host}/team/api:1.0.0 #`);
    expect(
      serve.lines.some((l) => l.msg === "registry webhook accepted" && l.source === "distribution"),
    ).toBe(true);
  });

  it("a tag outside the policy's range is received and changes nothing", async () => {
    const before = head();
    const from = serve.lines.length;
    await seedTags(notifying, "team/app", ["2.0.0"]);
    await serve.waitFor((l) => l.msg === "refreshed: up to date", 60_000, from);
    expect(head()).toBe(before);
  });

  it.each<[string, string, string, (tag: string) => unknown, Record<string, string>]>([
    [
      "harbor: PUSH_ARTIFACT with an Authorization header",
      "1.1.0",
      "/hooks/registry",
      (tag) => ({
        type: "PUSH_ARTIFACT",
        occur_at: 1,
        operator: "admin",
        event_data: {
          resources: [{ tag, resource_url: `${quiet.host}/team/api:${tag}` }],
          repository: { name: "api", namespace: "team", repo_full_name: "team/api", repo_type: "private" },
        },
      }),
      { authorization: SECRET },
    ],
    [
      "docker hub: ?token= and ?registry= on the URL",
      "1.2.0",
      `/hooks/registry?registry=${encodeURIComponent("QUIET")}&token=${SECRET}`,
      (tag) => ({ push_data: { tag, pusher: "ci" }, repository: { repo_name: "team/api" } }),
      {},
    ],
    [
      "ghcr: registry_package signed with HMAC, sender named in the path",
      "1.3.0",
      "/hooks/registry/ghcr?registry=QUIET",
      (tag) => ({
        action: "published",
        registry_package: {
          name: "api",
          namespace: "team",
          package_type: "CONTAINER",
          owner: { login: "team" },
          package_version: { version: "", container_metadata: { tag: { name: tag, digest: "" } } },
          registry: { url: "https://ghcr.io" },
        },
      }),
      { "x-github-event": "registry_package", "x-hub-signature-256": "SIGN" },
    ],
  ])("%s: the tag is scanned and committed", async (_name, next, path, payload, headers) => {
    await seedTags(quiet, "team/api", [next]);
    const body = JSON.stringify(payload(next));
    const h: Record<string, string> = { "content-type": "application/json" };
    for (const [k, v] of Object.entries(headers)) h[k] = v === "SIGN" ? hmacSignature(SECRET, body) : v;
    const res = await post(
      `${endpoint.replace("/hooks/registry", "")}${path.replace("QUIET", quiet.host)}`,
      body,
      h,
    );
    expect(res.status, res.body).toBe(202);
    expect(JSON.parse(res.body)).toEqual({ accepted: 1, ignored: 0 });
    await until(
      () => (fileAt("apps/staging/api/deployment.yaml").includes(`/team/api:${next} #`) ? true : undefined),
      60_000,
      `api ${next} committed`,
    );
  });
});

describe("shipmate serve: bad deliveries", () => {
  const event = (tag: string) =>
    JSON.stringify({
      events: [
        {
          action: "push",
          target: { mediaType: "application/vnd.oci.image.manifest.v1+json", repository: "team/api", tag },
          request: { host: quiet.host },
        },
      ],
    });

  /** The git server sees every clone a refresh makes: no request means nothing was done. */
  async function nothingDone(send: () => Promise<{ status: number; body: string }>, status: number) {
    const requests = gitServer.requests.length;
    const before = head();
    const res = await send();
    expect(res.status, res.body).toBe(status);
    await new Promise((r) => setTimeout(r, 400));
    expect(gitServer.requests.length).toBe(requests);
    expect(head()).toBe(before);
    return res;
  }

  it.each<[string, () => Record<string, string>, number]>([
    ["unsigned: 401, nothing done", () => ({ "content-type": "application/json" }), 401],
    [
      "signed with another secret: 401, nothing done",
      () => ({
        "content-type": "application/json",
        "x-hub-signature-256": hmacSignature("not-the-secret", event("1.8.0")),
      }),
      401,
    ],
    ["a wrong bearer token: 401, nothing done", () => ({ authorization: "Bearer guess" }), 401],
  ])("%s", async (_name, headers, status) => {
    await seedTags(quiet, "team/api", ["1.8.0"]);
    const res = await nothingDone(() => post(endpoint, event("1.8.0"), headers()), status);
    expect(JSON.parse(res.body)).toEqual({ error: "unauthorized" });
    expect(serve.output()).not.toContain(SECRET);
  });

  it("oversized bodies: 413 before reading them, declared or chunked", async () => {
    const big = Buffer.alloc(200 * 1024, 0x20);
    await nothingDone(() => post(endpoint, big, { authorization: `Bearer ${SECRET}` }), 413);
    await nothingDone(() => post(endpoint, big, { authorization: `Bearer ${SECRET}` }, true), 413);
  });

  it.each<[string, string, number, unknown]>([
    [
      "unknown events are ignored and logged",
      JSON.stringify({ hello: "world" }),
      202,
      { accepted: 0, ignored: true, reason: "not a registry webhook shipmate knows" },
    ],
    ["malformed JSON is refused", "{ not json", 400, { error: "the body is not JSON" }],
    [
      "a known sender's malformed payload is refused",
      JSON.stringify({ events: [{ action: 3 }] }),
      400,
      { error: "not a Distribution event envelope" },
    ],
  ])("%s", async (_name, body, status, reply) => {
    const from = serve.lines.length;
    const res = await nothingDone(() => post(endpoint, body, { authorization: `Bearer ${SECRET}` }), status);
    expect(JSON.parse(res.body)).toEqual(reply);
    expect(serve.lines.slice(from).some((l) => /registry webhook (ignored|refused)/.test(l.msg))).toBe(true);
  });

  it("other methods and paths are answered without doing anything", async () => {
    const base = endpoint.replace("/hooks/registry", "");
    expect((await fetch(endpoint)).status).toBe(405);
    expect((await fetch(`${base}/elsewhere`, { method: "POST", body: "{}" })).status).toBe(404);
    expect((await fetch(`${base}/hooks/registry/quay`, { method: "POST", body: "{}" })).status).toBe(404);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
  });
});
