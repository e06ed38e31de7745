import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Policy } from "../../src/config/types.ts";
import type { SelectionPolicy } from "../../src/policy/types.ts";
import { envKey } from "../../src/registry/index.ts";
import { scanPolicies } from "../../src/scan/index.ts";
import { seedImage, seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";

function policy(
  name: string,
  image: string,
  selection: SelectionPolicy,
  extra: Partial<Policy> = {},
): Policy {
  return {
    id: `flux-system:${name}`,
    namespace: "flux-system",
    name,
    image,
    insecure: false,
    digestReflection: "Never",
    selection,
    source: { file: "test.yaml", document: 1 },
    ...extra,
  };
}

const semver = (range: string): SelectionPolicy => ({ strategy: { kind: "semver", range } });

describe("scan against a registry without auth", () => {
  let reg: TestRegistry;
  let cacheDir: string;
  let latestDigest: string;
  beforeAll(async () => {
    reg = await startRegistry({ auth: "none" });
    cacheDir = mkdtempSync(join(tmpdir(), "shipmate-scan-cache-"));
    await seedTags(reg, "team/api", ["1.0.0", "1.2.0", "v1.3.0", "2.0.0-rc.1", "1.3.1-beta", "latest"]);
    await seedTags(reg, "team/web", ["5", "9", "10", "main-abc", "main-def"]);
    await seedImage(reg, {
      repository: "team/built",
      tags: ["a"],
      created: "2026-01-01T00:00:00Z",
      salt: "a",
    });
    await seedImage(reg, {
      repository: "team/built",
      tags: ["b"],
      created: "2026-03-01T00:00:00Z",
      salt: "b",
    });
    await seedImage(reg, {
      repository: "team/built",
      tags: ["c"],
      created: "2026-02-01T00:00:00Z",
      salt: "c",
    });
    latestDigest = (await seedImage(reg, { repository: "team/moving", tags: ["latest"], salt: "one" }))
      .digest;
  });
  afterAll(async () => {
    await reg?.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  const fleet = () => [
    policy("api", `${reg.host}/team/api`, semver("^1.0")),
    policy("api-next", `${reg.host}/team/api`, semver(">=2.0.0-0")),
    policy("web", `${reg.host}/team/web`, {
      strategy: { kind: "numerical", order: "asc" },
      filter: { pattern: "^[0-9]+$" },
    }),
    policy("web-main", `${reg.host}/team/web`, {
      strategy: { kind: "alphabetical", order: "asc" },
      filter: { pattern: "^main-(?P<sha>[a-f]+)$", extract: "$sha" },
    }),
    policy("built", `${reg.host}/team/built`, { strategy: { kind: "newestBuild" } }),
    policy("moving", `${reg.host}/team/moving`, { strategy: { kind: "digest", tag: "latest" } }),
  ];

  it("selects per policy; policies on one repository share one listing", async () => {
    const report = await scanPolicies(fleet(), { cacheDir });
    const byId = Object.fromEntries(report.results.map((r) => [r.policy.id, r]));
    expect(byId["flux-system:api"]).toMatchObject({ ok: true, tag: "v1.3.0", image: `${reg.host}/team/api` });
    expect(byId["flux-system:api-next"]).toMatchObject({ ok: true, tag: "2.0.0-rc.1" });
    expect(byId["flux-system:web"]).toMatchObject({ ok: true, tag: "10" });
    expect(byId["flux-system:web-main"]).toMatchObject({ ok: true, tag: "main-def" });
    expect(byId["flux-system:built"]).toMatchObject({ ok: true, tag: "b" });
    expect(byId["flux-system:moving"]).toMatchObject({ ok: true, tag: "latest", digest: latestDigest });
    // api, web, built: one listing each; built: a manifest + config per image; moving: one HEAD.
    expect(report.requests.total).toBe(3 + 3 * 2 + 1 + 3);
    // What each repository's part cost, apart from the others scanned at the same time: one listing
    // shared by both policies on api and on web; built's images read too; moving's one HEAD.
    expect(report.requests.byRepository).toEqual({
      [`${reg.host}/team/api`]: 1,
      [`${reg.host}/team/web`]: 1,
      [`${reg.host}/team/built`]: 10,
      [`${reg.host}/team/moving`]: 1,
    });
  });

  it("a steady-state rescan with nothing new costs at most one request per repository", async () => {
    await scanPolicies(fleet(), { cacheDir });
    const again = await scanPolicies(fleet(), { cacheDir });
    expect(again.results.every((r) => r.ok)).toBe(true);
    expect(again.requests.total).toBeLessThanOrEqual(4);
  });

  it("follows a moving tag's digest", async () => {
    const moved = (await seedImage(reg, { repository: "team/moving", tags: ["latest"], salt: "two" })).digest;
    expect(moved).not.toBe(latestDigest);
    const report = await scanPolicies(
      [policy("moving", `${reg.host}/team/moving`, { strategy: { kind: "digest", tag: "latest" } })],
      { cacheDir },
    );
    expect(report.results[0]).toMatchObject({ ok: true, digest: moved });
  });

  it("reflects digests when the policy asks (Flux digestReflectionPolicy: Always) or --digest is given", async () => {
    const p = policy("api", `${reg.host}/team/api`, semver("^1.0"), { digestReflection: "Always" });
    const [r] = (await scanPolicies([p], { cacheDir: false })).results;
    expect(r).toMatchObject({ ok: true, tag: "v1.3.0" });
    expect(r?.ok && r.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    const [q] = (
      await scanPolicies([policy("api", `${reg.host}/team/api`, semver("^1.0"))], {
        cacheDir: false,
        digests: true,
      })
    ).results;
    expect(q?.ok && q.digest).toBe(r?.ok && r.digest);
  });

  it("says why nothing was selected, and a missing repository fails only its own policy", async () => {
    const report = await scanPolicies(
      [
        policy("none", `${reg.host}/team/api`, semver("^9")),
        policy("gone", `${reg.host}/team/missing`, semver("*")),
        policy("api", `${reg.host}/team/api`, semver("~1.2")),
      ],
      { cacheDir: false },
    );
    const [none, gone, api] = report.results;
    expect(none).toMatchObject({ ok: false, reason: "none-in-range" });
    expect(gone).toMatchObject({ ok: false, reason: "registry-error" });
    expect(gone && !gone.ok && gone.message).toContain("team/missing");
    expect(api).toMatchObject({ ok: true, tag: "1.2.0" });
  });

  it("a followed tag that does not exist is reported as such", async () => {
    const [r] = (
      await scanPolicies(
        [policy("x", `${reg.host}/team/api`, { strategy: { kind: "digest", tag: "nope" } })],
        { cacheDir: false },
      )
    ).results;
    expect(r).toMatchObject({ ok: false, reason: "tag-not-found" });
  });
});

describe.each(["htpasswd", "token"] as const)("scan against a registry with %s auth", (auth) => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth, users: [{ username: "reader", password: "s3cret-reader" }] });
    await seedTags(reg, "private/app", ["0.9.0", "1.0.0", "1.1.0"]);
    await seedTags(reg, "private/lib", ["3.0.0", "3.1.0"]);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("authenticates with credentials from the environment and selects", async () => {
    const key = envKey(reg.host);
    const env = { ...process.env, [`${key}_USERNAME`]: "reader", [`${key}_PASSWORD`]: "s3cret-reader" };
    const report = await scanPolicies(
      [
        policy("app", `${reg.host}/private/app`, semver("1.x")),
        policy("lib", `${reg.host}/private/lib`, semver("3")),
      ],
      { cacheDir: false, env },
    );
    expect(report.results.map((r) => r.ok && r.tag)).toEqual(["1.1.0", "3.1.0"]);
  });

  it("a wrong password fails every policy with a line that does not contain it", async () => {
    const key = envKey(reg.host);
    const env = { ...process.env, [`${key}_USERNAME`]: "reader", [`${key}_PASSWORD`]: "wrong-password-xyz" };
    const report = await scanPolicies([policy("app", `${reg.host}/private/app`, semver("1.x"))], {
      cacheDir: false,
      env,
    });
    const [r] = report.results;
    expect(r).toMatchObject({ ok: false, reason: "registry-error" });
    expect(r && !r.ok && r.message).not.toContain("wrong-password-xyz");
    expect(r && !r.ok && r.message).toContain(reg.host);
  });
});
