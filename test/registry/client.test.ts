/**
 * The registry client against a real registry (Debian's docker-registry,
 * CNCF Distribution 2.8) in each auth mode: no auth, htpasswd, bearer tokens.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeError, RegistryError } from "../../src/errors.ts";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import { type CredentialProvider, chainCredentials } from "../../src/registry/credentials.ts";
import {
  type AuthMode,
  type SeededImage,
  seedImage,
  startRegistry,
  type TestRegistry,
} from "../infra/registry.ts";

const alice = { username: "alice", password: "wonderland-42" };
const userCreds = (password: string): CredentialProvider => ({
  get: async () => ({ username: alice.username, password, source: "test user alice" }),
});

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

describe.each(["none", "htpasswd", "token"] satisfies AuthMode[])(
  "against docker-registry, auth %s",
  (mode) => {
    let reg: TestRegistry;
    let single: SeededImage;
    let multi: SeededImage;
    let docker: SeededImage;
    let annotated: SeededImage;
    let undated: SeededImage;
    const dirs: string[] = [];
    const appTags = Array.from({ length: 25 }, (_, i) => `1.0.${i}`);
    const credentials = mode === "none" ? chainCredentials() : userCreds(alice.password);
    /** Requests an auth mode adds to the very first request of a repository in a fresh process. */
    const firstChallenge = mode === "none" ? 0 : 1;

    const cacheDir = () => {
      const d = mkdtempSync(join(tmpdir(), "shipmate-regcache-"));
      dirs.push(d);
      return d;
    };
    const client = (opts: RegistryClientOptions = {}) =>
      new RegistryClient({ cacheDir: false, credentials, ...opts });
    const ref = (repoAndTag: string) => `${reg.host}/${repoAndTag}`;

    beforeAll(async () => {
      reg = await startRegistry({ auth: mode, users: [alice] });
      single = await seedImage(reg, {
        repository: "team/app",
        tags: appTags,
        created: "2024-01-01T10:00:00Z",
      });
      multi = await seedImage(reg, {
        repository: "team/multi",
        tags: ["2.0", "latest"],
        platforms: ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"],
        created: "2024-02-02T10:00:00Z",
      });
      docker = await seedImage(reg, {
        repository: "team/docker",
        tags: ["1"],
        format: "docker",
        platforms: ["linux/amd64", "linux/arm64"],
        created: "2024-03-03T10:00:00Z",
      });
      annotated = await seedImage(reg, {
        repository: "team/annotated",
        tags: ["a"],
        created: "2024-04-04T10:00:00Z",
        annotations: { "org.opencontainers.image.created": "2023-12-31T23:59:59Z" },
      });
      undated = await seedImage(reg, { repository: "team/undated", tags: ["x"], created: null });
    });
    afterAll(async () => {
      await reg?.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it("sends n, which Distribution 2.8 ignores for tags (tag pagination came with 3.0): one page", async () => {
      // Pagination itself is exercised against a paginating server in bad-registry.test.ts.
      const c = client({ pageSize: 4 });
      const list = await c.listTags(ref("team/app"));
      expect([...list.tags].sort()).toEqual([...appTags].sort());
      expect(list.pages).toBe(1);
      expect(c.stats().byKind.tags).toBe(1 + firstChallenge);
    });

    it("lists everything in one request when no page size is set", async () => {
      const c = client();
      const list = await c.listTags(ref("team/app"));
      expect(list.tags).toHaveLength(25);
      expect(list.pages).toBe(1);
    });

    it("an unknown repository is a 404 naming it", async () => {
      let err: unknown;
      try {
        await client().listTags(ref("team/nope"));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).message).toMatch(
        /tag list of team\/nope: HTTP 404 \(NAME_UNKNOWN.*no such repository/,
      );
    });

    it("resolves a single-platform tag with one HEAD", async () => {
      const c = client();
      await c.listTags(ref("team/app")); // learn the auth scheme first
      const before = c.stats().total;
      const d = await c.resolveDigest(ref("team/app:1.0.3"));
      expect(d).toEqual({
        digest: single.digest,
        mediaType: OCI_MANIFEST,
        platformDigest: single.digest,
        platform: "linux/amd64",
        fromCache: false,
      });
      expect(c.stats().total - before).toBe(1);
    });

    it.each([
      ["linux/amd64", "linux/amd64"],
      ["linux/arm64", "linux/arm64/v8"],
      ["linux/arm/v7", "linux/arm/v7"],
    ])("resolves a multi-arch tag to the index digest and the %s manifest", async (platform, seeded) => {
      const d = await client({ platform }).resolveDigest(ref("team/multi:2.0"));
      expect(d.digest).toBe(multi.digest);
      expect(d.mediaType).toBe(OCI_INDEX);
      expect(d.platformDigest).toBe(multi.manifests[seeded]);
    });

    it("reads Docker manifest lists too, and the platform can be chosen per call", async () => {
      const c = client();
      const d = await c.resolveDigest(ref("team/docker:1"), { platform: "linux/arm64" });
      expect(d.digest).toBe(docker.digest);
      expect(d.mediaType).toBe(DOCKER_LIST);
      expect(d.platformDigest).toBe(docker.manifests["linux/arm64"]);
    });

    it("a platform the index does not have is an error listing what it has", async () => {
      await expect(client({ platform: "linux/s390x" }).resolveDigest(ref("team/multi:2.0"))).rejects.toThrow(
        /no image for platform linux\/s390x \(the index has: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7\)/,
      );
    });

    it("platform: false stops at the tag's digest (HEAD only)", async () => {
      const c = client();
      const d = await c.resolveDigest(ref("team/multi:latest"), { platform: false });
      expect(d.digest).toBe(multi.digest);
      expect(d.platformDigest).toBeUndefined();
      expect(c.stats().byKind.manifest).toBe(1 + firstChallenge);
    });

    it("build time from the image config; the second call costs nothing", async () => {
      const c = client();
      const first = await c.imageCreated(ref("team/multi:2.0"), { platform: "linux/arm64" });
      expect(first.created?.toISOString()).toBe("2024-02-02T10:00:00.000Z");
      expect(first.platformDigest).toBe(multi.manifests["linux/arm64/v8"]);
      expect(c.stats().byKind.blob).toBe(1);
      const before = c.stats().total;
      const again = await c.imageCreated(`${ref("team/multi")}@${multi.digest}`, { platform: "linux/arm64" });
      expect(again.created).toEqual(first.created);
      expect(again.fromCache).toBe(true);
      expect(c.stats().total - before).toBe(0);
    });

    it("build times persist across clients: by digest zero requests, by tag one HEAD (or none with maxAgeMs)", async () => {
      const dir = cacheDir();
      const first = client({ cacheDir: dir });
      const built = await first.imageCreated(ref("team/app:1.0.7"));
      expect(built.created?.toISOString()).toBe("2024-01-01T10:00:00.000Z");
      await first.close();

      const byDigest = client({ cacheDir: dir });
      const cached = await byDigest.imageCreated(`${ref("team/app")}@${single.digest}`);
      expect(cached).toMatchObject({ digest: single.digest, fromCache: true });
      expect(cached.created).toEqual(built.created);
      expect(byDigest.stats().total).toBe(0);

      const byTag = client({ cacheDir: dir });
      expect((await byTag.imageCreated(ref("team/app:1.0.7"))).created).toEqual(built.created);
      // A tag can move, so by default it is asked for once (HEAD); the build time itself is not fetched again.
      expect(byTag.stats().byKind).toMatchObject({ manifest: 1, blob: 0 });

      const trusting = client({ cacheDir: dir });
      const trusted = await trusting.imageCreated(ref("team/app:1.0.7"), {
        maxAgeMs: Number.POSITIVE_INFINITY,
      });
      expect(trusted.fromCache).toBe(true);
      expect(trusting.stats().total).toBe(0);
    });

    it("the created annotation wins and saves the config fetch", async () => {
      const c = client();
      const built = await c.imageCreated(ref("team/annotated:a"));
      expect(built.created?.toISOString()).toBe("2023-12-31T23:59:59.000Z");
      expect(built.digest).toBe(annotated.digest);
      expect(c.stats().byKind.blob).toBe(0);
    });

    it("an image without a build time says so, and that is cached too", async () => {
      const c = client();
      const built = await c.imageCreated(ref("team/undated:x"));
      expect(built.created).toBeUndefined();
      expect(built.digest).toBe(undated.digest);
      const before = c.stats().total;
      expect((await c.imageCreated(`${ref("team/undated")}@${undated.digest}`)).created).toBeUndefined();
      expect(c.stats().total).toBe(before);
    });

    it("steady state: a rescan with nothing new costs one request per repository", async () => {
      const dir = cacheDir();
      const repos = ["team/app", "team/multi", "team/docker", "team/annotated"].map(ref);
      const scan = async () => {
        const c = client({ cacheDir: dir });
        c.plan(repos);
        for (const r of repos) await c.listTags(r);
        await c.close();
        return c.stats();
      };
      const first = await scan();
      expect(first.byKind.tags).toBe(repos.length + firstChallenge);
      const rescan = await scan();
      // No ping, no challenge: the auth scheme is remembered on disk; a token (never stored) is fetched once for all.
      expect(rescan.byKind.tags).toBe(repos.length);
      expect(rescan.byKind.token).toBe(mode === "token" ? 1 : 0);
      expect(rescan.byKind.manifest + rescan.byKind.blob).toBe(0);
    });

    it("many repositories started at once pay one challenge per registry, not one each", async () => {
      const repos = ["team/app", "team/multi", "team/docker", "team/annotated", "team/undated"].map(ref);
      const c = client();
      c.plan(repos);
      const lists = await Promise.all(repos.map((r) => c.listTags(r)));
      expect(lists.every((l) => l.tags.length > 0)).toBe(true);
      expect(c.stats().byKind.tags).toBe(repos.length + firstChallenge);
      // Token mode: the challenged request gets its own token, the four that waited share one.
      expect(c.stats().byKind.token).toBe(mode === "token" ? 2 : 0);
    });

    it("stats name the registry", async () => {
      const c = client();
      await c.listTags(ref("team/app"));
      expect(Object.keys(c.stats().byRegistry)).toEqual([reg.host]);
      expect(c.stats().byRegistry[reg.host]).toBe(c.stats().total);
    });

    if (mode !== "none") {
      it("a wrong password is one clear error that never shows the password", async () => {
        const wrong = "not-the-password-9";
        const c = client({ credentials: userCreds(wrong) });
        let err: unknown;
        try {
          await c.listTags(ref("team/app"));
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(RegistryError);
        const message = (err as RegistryError).message;
        expect(message).toMatch(
          mode === "htpasswd"
            ? /HTTP 401.*were refused/
            : /token server refused the credentials from test user alice/,
        );
        expect(message).not.toContain(wrong);
        expect(message).not.toContain(Buffer.from(`alice:${wrong}`).toString("base64"));
        expect(describeError(err)).not.toContain(wrong);
        expect(c.stats().total).toBeLessThanOrEqual(3);
      });

      it("no credentials at all: the error says none are configured", async () => {
        const c = client({ credentials: chainCredentials() });
        await expect(c.listTags(ref("team/app"))).rejects.toThrow(
          mode === "htpasswd" ? /needs credentials and none are configured/ : /anonymous access refused/,
        );
      });
    }

    if (mode === "token") {
      it("one token serves every request of a repository until it expires", async () => {
        let now = Date.now();
        const c = client({ now: () => now });
        const seen = reg.tokenRequests.length;
        await c.listTags(ref("team/app"));
        await c.resolveDigest(ref("team/app:1.0.1"));
        await c.imageCreated(ref("team/app:1.0.2"));
        await c.listTags(ref("team/app"));
        expect(c.stats().byKind.token).toBe(1);
        expect(reg.tokenRequests.length - seen).toBe(1);
        // The token server says expires_in 300: past that, a new token, fetched up front (no 401 first).
        now += 301_000;
        const tagsBefore = c.stats().byKind.tags;
        await c.listTags(ref("team/app"));
        expect(c.stats().byKind.token).toBe(2);
        expect(c.stats().byKind.tags - tagsBefore).toBe(1);
      });

      it("tokens are per repository scope; plan() asks for many scopes in one token request", async () => {
        const planned = client();
        const repos = ["team/app", "team/multi", "team/docker"].map(ref);
        await planned.listTags(repos[0]!); // learns the challenge (single scope, fresh)
        planned.plan(repos);
        for (const r of repos.slice(1)) await planned.listTags(r);
        expect(planned.stats().byKind.token).toBe(2);
        const batched = reg.tokenRequests.at(-1);
        expect(batched?.scopes.sort()).toEqual(["repository:team/docker:pull", "repository:team/multi:pull"]);

        const unplanned = client();
        for (const r of repos) await unplanned.listTags(r);
        expect(unplanned.stats().byKind.token).toBe(3);
      });

      it("a user granted one repository gets a clear refusal for another", async () => {
        const bob = {
          username: "bob",
          password: "builder-77",
          access: [{ repository: "team/app", actions: ["pull"] }],
        };
        const r2 = await startRegistry({ auth: "token", users: [bob] });
        try {
          await seedImage(r2, { repository: "team/app", tags: ["1"] });
          await seedImage(r2, { repository: "team/secret", tags: ["1"] });
          const c = new RegistryClient({
            cacheDir: false,
            credentials: { get: async () => ({ ...bob, source: "bob's config" }) },
          });
          expect((await c.listTags(`${r2.host}/team/app`)).tags).toEqual(["1"]);
          await expect(c.listTags(`${r2.host}/team/secret`)).rejects.toThrow(
            /tag list of team\/secret: HTTP 401.*the token obtained with credentials from bob's config was refused/,
          );
        } finally {
          await r2.stop();
        }
      });
    }
  },
);
