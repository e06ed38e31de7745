/**
 * What the client does when a registry misbehaves: a local Node HTTP server
 * plays the registry and writes each failure on purpose.
 */

import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { describeError, RegistryError } from "../../src/errors.ts";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import { type CredentialProvider, chainCredentials } from "../../src/registry/credentials.ts";
import { type FakeHandler, type FakeServer, json, startFake } from "../infra/http-fake.ts";

const servers: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fake(handler: FakeHandler): Promise<FakeServer> {
  const s = await startFake(handler);
  servers.push(s);
  return s;
}

const none: CredentialProvider = chainCredentials();
const basicCreds = (password: string): CredentialProvider => ({
  get: async () => ({ username: "alice", password, source: "test credentials" }),
});

function client(opts: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({
    cacheDir: false,
    credentials: none,
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    ...opts,
  });
}

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RegistryError);
    const e = err as RegistryError;
    expect(e.message).not.toContain("\n");
    return e;
  }
  throw new Error("expected a RegistryError, got success");
}

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A registry whose page N (query `page`) lists tags(N) and links to page next(N), forever. */
const numberedPages =
  (tags: (page: number) => string[], next: (page: number) => number): FakeHandler =>
  (_req, res, url) => {
    const page = Number(url.searchParams.get("page") ?? 0);
    json(res, 200, { tags: tags(page) }, { link: `</v2/team/app/tags/list?page=${next(page)}>; rel="next"` });
  };

describe("unusable tag list answers become one RegistryError line naming registry, repository and status", () => {
  it.each([
    ["malformed JSON", "application/json", '{"name":"a","tags":["1.0",}', 200, /malformed JSON \(HTTP 200\)/],
    ["JSON cut short", "application/json", '{"name":"a","tags":["1.0"', 200, /malformed JSON/],
    [
      "a root that is not an object",
      "application/json",
      '["1.0"]',
      200,
      /malformed JSON \(expected an object/,
    ],
    ["tags that are not an array", "application/json", '{"tags":{"a":"1.0"}}', 200, /"tags" is not an array/],
    [
      "a tag that is not a string",
      "application/json",
      '{"tags":["1.0", 2]}',
      200,
      /tags\[1\] is not a string/,
    ],
    ["trailing garbage", "application/json", '{"tags":["1.0"]} trailing', 200, /malformed JSON/],
    ["an empty body", "application/json", "", 200, /empty response/],
    [
      "an HTML page with 200",
      "text/html",
      "<html><body>Sign in</body></html>",
      200,
      /HTML page instead of JSON \(HTTP 200\)/,
    ],
    [
      "an HTML error page",
      "text/html; charset=utf-8",
      "<html><h1>403 Forbidden</h1>\n</html>",
      403,
      /HTTP 403 \(an HTML error page\)/,
    ],
    [
      "a distribution error body",
      "application/json",
      '{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}',
      404,
      /HTTP 404 \(NAME_UNKNOWN: repository name not known to registry\) — no such repository/,
    ],
  ])("%s", async (_rule, type, body, status, message) => {
    const s = await fake((_req, res) => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    });
    const err = await failure(client().listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(message);
    expect(err.message).toContain(`registry ${s.host}`);
    expect(err.message).toContain("team/app");
    expect(err.status).toBe(status);
  });

  it("a malformed manifest is named with its repository and reference", async () => {
    const s = await fake((_req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
      res.end("{not json");
    });
    const err = await failure(client().imageCreated(`${s.host}/team/app:1.0`));
    expect(err.message).toMatch(/manifest team\/app.*malformed JSON/);
  });

  it("a manifest that does not fit its schema names the field", async () => {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      layers: [],
    });
    const s = await fake((_req, res) => {
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "docker-content-digest": sha(body),
      });
      res.end(body);
    });
    const err = await failure(client().imageCreated(`${s.host}/team/app:1.0`));
    expect(err.message).toMatch(/unexpected JSON at config/);
  });
});

describe("tags that are not valid OCI tags", () => {
  it("are skipped and counted, not fatal", async () => {
    const tags = ["1.0", "-bad", "x".repeat(129), "ok_1", "with space", ".dot", "v2.0.0-rc.1", "a+b"];
    const s = await fake((_req, res) => json(res, 200, { name: "team/app", tags }));
    const list = await client().listTags(`${s.host}/team/app`);
    expect(list.tags).toEqual(["1.0", "ok_1", "v2.0.0-rc.1"]);
    expect(list.skipped).toBe(5);
  });

  it("a null tag list is an empty repository", async () => {
    const s = await fake((_req, res) => json(res, 200, { name: "team/app", tags: null }));
    expect(await client().listTags(`${s.host}/team/app`)).toEqual({ tags: [], skipped: 0, pages: 1 });
  });
});

describe("pagination", () => {
  /** A registry paginating `all` by `n` and `last`, with relative or absolute Link headers. */
  const paginating =
    (all: string[], absolute: boolean, host: () => string): FakeHandler =>
    (_req, res, url) => {
      const n = Number(url.searchParams.get("n") ?? all.length);
      const last = url.searchParams.get("last");
      const start = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(start, start + n);
      const headers: Record<string, string> = {};
      if (start + n < all.length) {
        const next = `/v2/team/app/tags/list?n=${n}&last=${encodeURIComponent(page.at(-1) ?? "")}`;
        headers.link = `<${absolute ? `http://${host()}${next}` : next}>; rel="next"`;
      }
      json(res, 200, { name: "team/app", tags: page }, headers);
    };

  it.each([
    ["relative", false],
    ["absolute", true],
  ])("follows %s Link headers to the end, with no page cap", async (_kind, absolute) => {
    const all = Array.from({ length: 2500 }, (_, i) => `1.${i}.0`);
    let host = "";
    const s = await fake(paginating(all, absolute, () => host));
    host = s.host;
    const c = client({ pageSize: 10 });
    const list = await c.listTags(`${s.host}/team/app`);
    expect(list.tags).toEqual(all);
    expect(list.pages).toBe(250);
    expect(c.stats().byKind.tags).toBe(250);
    expect(s.requests[0]?.path).toBe("/v2/team/app/tags/list?n=10");
  });

  it("carries the credentials a challenge asked for to every following page", async () => {
    const all = Array.from({ length: 30 }, (_, i) => `v${i}`);
    let host = "";
    const pages = paginating(all, false, () => host);
    const s = await fake((req, res, url) => {
      if (!req.headers.authorization) return json(res, 401, {}, { "www-authenticate": 'Basic realm="fake"' });
      return pages(req, res, url);
    });
    host = s.host;
    const c = client({ pageSize: 7, credentials: basicCreds("pw-page-1") });
    expect((await c.listTags(`${s.host}/team/app`)).tags).toEqual(all);
    // One challenge for the first page, then five pages sent with credentials up front.
    expect(s.requests.map((r) => Boolean(r.headers.authorization))).toEqual([
      false,
      true,
      true,
      true,
      true,
      true,
    ]);
  });

  it("yields chunks no larger than chunkSize, page boundaries aside", async () => {
    const all = Array.from({ length: 95 }, (_, i) => `t${i}`);
    let host = "";
    const s = await fake(paginating(all, false, () => host));
    host = s.host;
    const c = client({ pageSize: 40, chunkSize: 16 });
    const sizes: number[] = [];
    const pages = c.tagPages(`${s.host}/team/app`);
    let step = await pages.next();
    while (!step.done) {
      sizes.push(step.value.length);
      step = await pages.next();
    }
    expect(sizes).toEqual([16, 16, 8, 16, 16, 8, 15]);
    expect(step.value).toEqual({ count: 95, skipped: 0, pages: 3 });
  });

  it("an endless Link chain that returns the same tags stops with an error", async () => {
    const s = await fake(
      numberedPages(
        () => ["1.0", "1.1"],
        (page) => page + 1,
      ),
    );
    const err = await failure(client().listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(/pagination does not advance: 3 pages in a row without new tags/);
    expect(s.requests.length).toBe(4);
  });

  it("an endless Link chain of empty pages stops with an error", async () => {
    const s = await fake(
      numberedPages(
        () => [],
        (page) => page + 1,
      ),
    );
    const err = await failure(client().listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(/pagination does not advance/);
    expect(s.requests.length).toBe(3);
  });

  it("a Link chain that comes back to a page already read is a loop", async () => {
    const s = await fake(
      numberedPages(
        (page) => [`t${page}`],
        (page) => (page + 1) % 3,
      ),
    );
    const err = await failure(client().listTags(`${s.host}/team/app`));
    // The first URL has no page parameter, so the chain reads ?page=1, ?page=2, ?page=0 and then repeats ?page=1.
    expect(err.message).toMatch(
      /pagination loop: the Link header repeats \/v2\/team\/app\/tags\/list\?page=1/,
    );
    expect(s.requests.length).toBe(4);
  });

  it("a Link header pointing to another host is refused", async () => {
    const s = await fake((_req, res) =>
      json(
        res,
        200,
        { tags: ["1.0"] },
        { link: '<https://elsewhere.example/v2/team/app/tags/list?page=2>; rel="next"' },
      ),
    );
    const err = await failure(client().listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(/Link header points to another host \(elsewhere.example\)/);
  });
});

describe("a 50 MB tag list", () => {
  it("is parsed as it streams: the client never holds the whole list", async () => {
    const total = 600_000;
    const pad = "x".repeat(80);
    let written = 0;
    let finished = false;
    const s = await fake(async (_req, res: ServerResponse) => {
      res.writeHead(200, { "content-type": "application/json" });
      const write = (text: string) =>
        new Promise<void>((resolve) => {
          written += Buffer.byteLength(text);
          if (res.write(text)) resolve();
          else res.once("drain", resolve);
        });
      await write('{"name":"big/list","tags":[');
      for (let i = 0; i < total; i += 1000) {
        const batch: string[] = [];
        for (let j = i; j < Math.min(total, i + 1000); j++)
          batch.push(`"t${String(j).padStart(10, "0")}-${pad}"`);
        await write((i === 0 ? "" : ",") + batch.join(","));
      }
      await write("]}");
      finished = true;
      res.end();
    });
    const c = client({ chunkSize: 1000 });
    let count = 0;
    let largest = 0;
    let writtenAtFirstChunk = -1;
    let writtenAfterPause = -1;
    let last = "";
    for await (const chunk of c.tagPages(`${s.host}/big/list`)) {
      if (writtenAtFirstChunk < 0) {
        writtenAtFirstChunk = written;
        // Stall the consumer: backpressure must stop the server, not fill our memory.
        await new Promise((r) => setTimeout(r, 500));
        writtenAfterPause = written;
      }
      count += chunk.length;
      largest = Math.max(largest, chunk.length);
      last = chunk.at(-1) ?? last;
    }
    expect(written).toBeGreaterThan(50 * 1024 * 1024);
    expect(finished).toBe(true);
    expect(count).toBe(total);
    expect(largest).toBeLessThanOrEqual(1000);
    expect(last).toBe(`t${String(total - 1).padStart(10, "0")}-${pad}`);
    // The first tags arrived long before the list was complete, and a paused consumer paused the transfer.
    // (What is in flight is bounded by socket buffers, a few MB, whatever the list's size.)
    expect(writtenAtFirstChunk).toBeLessThan(16 * 1024 * 1024);
    expect(writtenAfterPause).toBeLessThan(16 * 1024 * 1024);
  });
});

describe("authentication failures end, once, with a clear error", () => {
  it("a registry answering 401 to every Basic attempt: two requests, then 'refused', no password in it", async () => {
    const s = await fake((_req, res) =>
      json(
        res,
        401,
        { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
        {
          "www-authenticate": 'Basic realm="fake"',
        },
      ),
    );
    const password = "s3cret-pa55word";
    const err = await failure(client({ credentials: basicCreds(password) }).listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(/HTTP 401.*credentials from test credentials were refused/);
    expect(err.status).toBe(401);
    expect(err.message).not.toContain(password);
    expect(describeError(err)).not.toContain(password);
    expect(s.requests.length).toBe(2);
    expect(s.requests[0]?.headers.authorization).toBeUndefined();
    expect(s.requests[1]?.headers.authorization).toMatch(/^Basic /);
  });

  it("a registry refusing every token: one token, two registry requests, then an error", async () => {
    let host = "";
    const s = await fake((_req, res, url) => {
      if (url.pathname === "/token") return json(res, 200, { token: "tok-123456" });
      json(
        res,
        401,
        { errors: [{ code: "UNAUTHORIZED" }] },
        {
          "www-authenticate": `Bearer realm="http://${host}/token",service="fake",scope="repository:team/app:pull"`,
        },
      );
    });
    host = s.host;
    const err = await failure(client().listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(/anonymous access refused/);
    const registry = s.requests.filter((r) => r.path.startsWith("/v2/"));
    const tokens = s.requests.filter((r) => r.path.startsWith("/token"));
    expect(registry.length).toBe(2);
    expect(tokens.length).toBe(1);
    expect(tokens[0]?.path).toBe("/token?service=fake&scope=repository%3Ateam%2Fapp%3Apull");
  });

  it("a 401 without credentials configured says where credentials come from", async () => {
    const s = await fake((_req, res) => json(res, 401, {}, { "www-authenticate": 'Basic realm="fake"' }));
    const err = await failure(client().listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(
      /needs credentials and none are configured for 127\.0\.0\.1:\d+ \(Docker config/,
    );
    expect(s.requests.length).toBe(1);
  });

  it("a 401 without a challenge is not retried", async () => {
    const s = await fake((_req, res) => json(res, 401, {}));
    const err = await failure(client().listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(/no WWW-Authenticate challenge/);
    expect(s.requests.length).toBe(1);
  });

  it("a token realm over plain HTTP on another host is refused before any credential is sent", async () => {
    const s = await fake((_req, res) =>
      json(res, 401, {}, { "www-authenticate": 'Bearer realm="http://auth.example.com/token",service="x"' }),
    );
    const err = await failure(
      client({ credentials: basicCreds("pw-123456") }).listTags(`${s.host}/team/app`),
    );
    expect(err.message).toMatch(/refusing token realm http:\/\/auth\.example\.com/);
  });
});

describe("rate limits, server errors and budgets", () => {
  it("429 with Retry-After waits as told, then succeeds; the retry is counted", async () => {
    let calls = 0;
    const s = await fake((_req, res) => {
      calls++;
      if (calls === 1)
        return json(res, 429, { errors: [{ code: "TOOMANYREQUESTS" }] }, { "retry-after": "1" });
      json(res, 200, { tags: ["1.0"] });
    });
    const c = client();
    expect((await c.listTags(`${s.host}/team/app`)).tags).toEqual(["1.0"]);
    expect(c.stats()).toMatchObject({ total: 2, retries: 1 });
  });

  it("429 asking for longer than the bound fails at once, saying how long", async () => {
    const s = await fake((_req, res) =>
      json(res, 429, { errors: [{ code: "TOOMANYREQUESTS" }] }, { "retry-after": "3600" }),
    );
    const err = await failure(client().listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(
      /HTTP 429 \(TOOMANYREQUESTS\) — rate limited, the registry asks to retry after 3600s/,
    );
    expect(err.status).toBe(429);
    expect(s.requests.length).toBe(1);
  });

  it("5xx then success: retried with backoff, every attempt counted", async () => {
    let calls = 0;
    const s = await fake((_req, res) => {
      calls++;
      if (calls === 1) return json(res, 503, {});
      if (calls === 2) return json(res, 502, {});
      json(res, 200, { tags: ["1.0"] });
    });
    const c = client();
    expect((await c.listTags(`${s.host}/team/app`)).tags).toEqual(["1.0"]);
    expect(c.stats()).toMatchObject({ total: 3, retries: 2, byRegistry: { [s.host]: 3 } });
  });

  it("a registry that keeps failing gives up after the configured attempts", async () => {
    const s = await fake((_req, res) => json(res, 500, { errors: [{ code: "UNKNOWN", message: "boom" }] }));
    const err = await failure(
      client({ retry: { attempts: 3, baseDelayMs: 1 } }).listTags(`${s.host}/team/app`),
    );
    expect(err.message).toMatch(/HTTP 500 \(UNKNOWN: boom\) \(after 3 attempts\)/);
    expect(s.requests.length).toBe(3);
  });

  it("a registry that cannot be reached is retried, then named", async () => {
    const s = await fake(() => {});
    const host = s.host;
    await s.close();
    servers.splice(servers.indexOf(s), 1);
    const c = client({ retry: { attempts: 2, baseDelayMs: 1 } });
    const err = await failure(c.listTags(`${host}/team/app`));
    expect(err.message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(c.stats().total).toBe(2);
  });

  it("a registry that never answers times out", async () => {
    const s = await fake(() => {
      // never responds
    });
    const err = await failure(
      client({ timeoutMs: 200, retry: { attempts: 1 } }).listTags(`${s.host}/team/app`),
    );
    expect(err.message).toMatch(/no answer within/);
  });

  it("a consumer slower than the timeout is not mistaken for a slow registry", async () => {
    const s = await fake(async (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(`{"tags":[${Array.from({ length: 15 }, (_, i) => `"a${i}"`).join(",")},`);
      await new Promise((r) => setTimeout(r, 50));
      res.end(`${Array.from({ length: 15 }, (_, i) => `"b${i}"`).join(",")}]}`);
    });
    const c = client({ timeoutMs: 150, chunkSize: 10 });
    let seen = 0;
    for await (const chunk of c.tagPages(`${s.host}/team/app`)) {
      seen += chunk.length;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(seen).toBe(30);
  });

  it("a tag list that stalls midway is one error line, not a hang", async () => {
    const s = await fake((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"tags":["1.0",');
    });
    const err = await failure(client({ timeoutMs: 200 }).listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(/tag list of team\/app: the response broke off \(no answer within 200ms\)/);
  });

  it("the per-registry request budget is enforced", async () => {
    const s = await fake(
      numberedPages(
        (page) => [`t${page}`],
        (page) => page + 1,
      ),
    );
    const c = client({ maxRequestsPerRegistry: 5 });
    const err = await failure(c.listTags(`${s.host}/team/app`));
    expect(err.message).toMatch(/request budget of 5 requests exhausted \(at tag list of team\/app\)/);
    expect(s.requests.length).toBe(5);
    expect(c.stats().total).toBe(5);
  });

  it("at most `concurrency` requests are in flight per registry", async () => {
    let active = 0;
    let peak = 0;
    const s = await fake(async (_req, res) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 30));
      active--;
      json(res, 200, { tags: ["1.0"] });
    });
    const c = client({ concurrency: 3 });
    await Promise.all(Array.from({ length: 12 }, (_, i) => c.listTags(`${s.host}/team/app${i}`)));
    expect(peak).toBe(3);
    expect(c.stats().total).toBe(12);
  });
});

describe("manifests and blobs from odd registries", () => {
  const config = Buffer.from(
    JSON.stringify({ created: "2024-05-06T07:08:09Z", architecture: "amd64", os: "linux" }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha(config),
        size: config.length,
      },
      layers: [],
    }),
  );

  it("no Docker-Content-Digest header: the digest is the hash of the manifest served", async () => {
    const s = await fake((_req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
      res.end(manifest);
    });
    const c = client();
    const d = await c.resolveDigest(`${s.host}/team/app:1.0`);
    expect(d.digest).toBe(sha(manifest));
    expect(d.platformDigest).toBe(sha(manifest));
    expect(s.requests.map((r) => r.method)).toEqual(["HEAD", "GET"]);
  });

  it("a manifest whose bytes do not match the digest asked for is refused", async () => {
    const s = await fake((_req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
      res.end(manifest);
    });
    const wrong = `sha256:${"0".repeat(64)}`;
    const err = await failure(client().imageCreated(`${s.host}/team/app@${wrong}`));
    expect(err.message).toMatch(/content does not match its digest/);
  });

  it("a manifest over the size limit is refused, not truncated", async () => {
    const s = await fake((_req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
      res.end(manifest);
    });
    const err = await failure(
      client({ limits: { manifestBytes: 64 } }).imageCreated(`${s.host}/team/app:1.0`),
    );
    expect(err.message).toMatch(/response larger than 64 bytes/);
  });

  it("a blob redirect to another host is followed without our credentials", async () => {
    const storage = await fake((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(config);
    });
    const s = await fake((req, res, url) => {
      if (!req.headers.authorization) return json(res, 401, {}, { "www-authenticate": 'Basic realm="fake"' });
      if (url.pathname.includes("/blobs/")) {
        res.writeHead(307, { location: `${storage.url}/bucket/object?signature=abc` });
        res.end();
        return;
      }
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "docker-content-digest": sha(manifest),
      });
      res.end(req.method === "HEAD" ? undefined : manifest);
    });
    const c = client({ credentials: basicCreds("pw-abcdef") });
    const built = await c.imageCreated(`${s.host}/team/app:1.0`);
    expect(built.created?.toISOString()).toBe("2024-05-06T07:08:09.000Z");
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]?.headers.authorization).toBeUndefined();
    expect(s.requests.filter((r) => r.path.includes("/blobs/"))[0]?.headers.authorization).toMatch(/^Basic /);
    expect(c.stats().byKind.blob).toBe(2);
  });
});
