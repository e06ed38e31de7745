/** The persistent cache: what it keeps, what it never keeps, and that damage to it is never fatal. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultCacheDir } from "../../src/registry/cache.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { type SeededImage, seedImage, startRegistry, type TestRegistry } from "../infra/registry.ts";

const alice = { username: "alice", password: "cache-password-55" };
let reg: TestRegistry;
let image: SeededImage;
const dirs: string[] = [];

function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), "shipmate-cache-"));
  dirs.push(d);
  return d;
}

function files(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter(
    (f) => f.endsWith(".json") || f.endsWith(".tmp"),
  );
}

const client = (cacheDir: string) =>
  new RegistryClient({
    cacheDir,
    credentials: { get: async () => ({ ...alice, source: "test" }) },
  });

beforeAll(async () => {
  reg = await startRegistry({ auth: "token", users: [alice] });
  image = await seedImage(reg, {
    repository: "team/app",
    tags: ["1.0"],
    platforms: ["linux/amd64", "linux/arm64"],
    created: "2024-06-01T00:00:00Z",
  });
});
afterAll(async () => {
  await reg?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("persistent cache", () => {
  it("keeps build times, digests and auth schemes; never a token or a password", async () => {
    const dir = freshDir();
    const c = client(dir);
    await c.imageCreated(`${reg.host}/team/app:1.0`);
    await c.close();
    const written = files(dir);
    expect(written.sort()).toEqual([
      join("v1", "registries.json"),
      expect.stringMatching(/^v1\/repos\/[0-9a-f]{32}\.json$/),
    ]);
    const all = written.map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
    expect(all).toContain("2024-06-01T00:00:00Z");
    expect(all).toContain(image.digest);
    expect(JSON.parse(readFileSync(join(dir, "v1", "registries.json"), "utf8"))).toEqual({
      version: 1,
      registries: {
        [reg.host]: {
          scheme: "bearer",
          realm: `${reg.tokenServerUrl}/token`,
          service: "shipmate-test-registry",
        },
      },
    });
    expect(all).not.toContain(alice.password);
    expect(all).not.toMatch(/eyJ[\w-]+\.[\w-]+\./); // no JWT
  });

  it("a corrupt cache file is ignored and replaced, never fatal", async () => {
    const dir = freshDir();
    const first = client(dir);
    await first.imageCreated(`${reg.host}/team/app:1.0`);
    await first.close();
    for (const f of files(dir)) writeFileSync(join(dir, f), '{"version":1,"tags":[tru');

    const second = client(dir);
    const built = await second.imageCreated(`${reg.host}/team/app:1.0`);
    expect(built.created?.toISOString()).toBe("2024-06-01T00:00:00.000Z");
    expect(second.stats().byKind.blob).toBe(1); // the damaged cache cost a refetch, nothing more
    await second.close();

    const third = client(dir);
    await third.imageCreated(`${reg.host}/team/app@${image.digest}`);
    expect(third.stats().byKind).toMatchObject({ manifest: 0, blob: 0 });
  });

  it("a cache file of another shape (a future version) is ignored", async () => {
    const dir = freshDir();
    const first = client(dir);
    await first.imageCreated(`${reg.host}/team/app:1.0`);
    await first.close();
    for (const f of files(dir)) writeFileSync(join(dir, f), JSON.stringify({ version: 99, anything: true }));
    const second = client(dir);
    expect((await second.imageCreated(`${reg.host}/team/app:1.0`)).created).toBeDefined();
  });

  it("writes are atomic: no temporary files stay behind, even with many concurrent updates", async () => {
    const dir = freshDir();
    const c = client(dir);
    await Promise.all(
      ["linux/amd64", "linux/arm64"].flatMap((platform) => [
        c.imageCreated(`${reg.host}/team/app:1.0`, { platform }),
        c.resolveDigest(`${reg.host}/team/app:1.0`, { platform }),
      ]),
    );
    await c.close();
    expect(files(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    for (const f of files(dir)) expect(() => JSON.parse(readFileSync(join(dir, f), "utf8"))).not.toThrow();
  });

  it("an unwritable cache directory only costs requests", async () => {
    const dir = freshDir();
    writeFileSync(join(dir, "v1"), "a file where a directory should be");
    const c = client(dir);
    expect((await c.imageCreated(`${reg.host}/team/app:1.0`)).created).toBeDefined();
    await c.close();
  });

  it.each([
    [{ XDG_CACHE_HOME: "/x/cache", HOME: "/home/u" }, "/x/cache/shipmate/registry"],
    [{ HOME: "/home/u" }, "/home/u/.cache/shipmate/registry"],
  ])("default location follows XDG: %j → %s", (env, expected) => {
    expect(defaultCacheDir(env)).toBe(expected);
  });
});
