import { describe, expect, it } from "vitest";
import { fingerprint, makeMeta, parseMeta, renderBody } from "../../src/forge/body.ts";
import { classifyForgeFailure, rateLimitReset } from "../../src/forge/errors.ts";
import { PROVIDERS } from "../../src/forge/index.ts";
import type { ImageChange } from "../../src/forge/types.ts";

const c = (image: string, to: string, files = ["a.yaml"]): ImageChange => ({
  image,
  from: "1.0.0",
  to,
  files,
});

describe("request body", () => {
  it("round-trips the hidden block, promotion included", () => {
    const meta = makeMeta([c("ghcr.io/a/b", "2.0.0")], {
      from: "staging",
      to: "production",
      revision: "abc123",
    });
    expect(parseMeta(renderBody(meta))).toEqual(meta);
  });

  it("a '--' in a value cannot close the HTML comment early", () => {
    const meta = makeMeta([c("ghcr.io/a/b", "1.0.0--rc-->x")]);
    const body = renderBody(meta);
    const block = body.slice(body.indexOf("<!-- shipmate:meta"));
    expect(block.match(/-->/g)).toHaveLength(1);
    expect(parseMeta(body)?.changes[0]?.to).toBe("1.0.0--rc-->x");
  });

  it("pipes in values do not break the table", () => {
    expect(renderBody(makeMeta([c("x|y", "1")]))).toContain("`x\\|y`");
  });

  it.each([
    ["no block", "just text"],
    ["not JSON", "<!-- shipmate:meta {nope} -->"],
    ["wrong version", '<!-- shipmate:meta {"v":2,"fingerprint":"x","changes":[]} -->'],
    ["edited by a person into a bad shape", '<!-- shipmate:meta {"v":1,"fingerprint":1,"changes":[]} -->'],
  ])("a body with %s has no meta", (_, body) => {
    expect(parseMeta(body)).toBeUndefined();
  });

  it("fingerprint: order of changes and files does not matter, the target does", () => {
    const a = [c("i/a", "1", ["x", "y"]), c("i/b", "2")];
    const b = [c("i/b", "2"), c("i/a", "1", ["y", "x"])];
    expect(fingerprint(a)).toBe(fingerprint(b));
    expect(fingerprint(a)).not.toBe(fingerprint([c("i/a", "1", ["x", "y"]), c("i/b", "3")]));
  });

  it("a change set too big for the forge keeps the fingerprint and summarises the table", () => {
    const many = Array.from({ length: 2000 }, (_, i) => c(`registry.example.test/team/app-${i}`, `1.${i}.0`));
    const meta = makeMeta(many);
    const body = renderBody(meta, { limit: 65_536 });
    expect(body.length).toBeLessThanOrEqual(65_536);
    expect(body).toMatch(/\| … and \d+ more \|/);
    expect(parseMeta(body)?.fingerprint).toBe(meta.fingerprint);
  });
});

describe("forge failures", () => {
  const base = { forge: PROVIDERS.github, repo: "o/r", action: "open a pull request", headers: {} };
  it.each([
    [{ status: 401 }, "ForgeAuthError"],
    [
      { status: 403, headers: { "x-accepted-oauth-scopes": "repo", "x-oauth-scopes": "" } },
      "ForgePermissionError",
    ],
    [
      { status: 403, headers: { "x-accepted-oauth-scopes": "repo", "x-oauth-scopes": "repo" } },
      "ForgePermissionError",
    ],
    [
      { status: 403, headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1" } },
      "ForgeRateLimitError",
    ],
    [{ status: 404 }, "ForgeNotFoundError"],
    [{ status: 422, message: "A pull request already exists for o:b." }, "AlreadyExistsError"],
    [{ status: 405, message: "At least 1 approving review is required" }, "BranchProtectionError"],
    [{ status: 403, message: "Protected branch update failed" }, "BranchProtectionError"],
    [{ status: 422, message: "Pull Request is not mergeable: already merged" }, "PullRequestClosedError"],
    [{ status: 500 }, "ForgeError"],
  ])("%j → %s", (over, name) => {
    expect(classifyForgeFailure({ ...base, ...over }).name).toBe(name);
  });

  it("a scope the token already has is not reported as missing", () => {
    const err = classifyForgeFailure({
      ...base,
      status: 403,
      headers: { "x-accepted-oauth-scopes": "repo, public_repo", "x-oauth-scopes": "public_repo" },
      message: "Must have admin rights to Repository.",
    });
    expect(err.message).toBe(
      "GitHub o/r: permission denied to open a pull request: Must have admin rights to Repository. — give the token write access to the repository",
    );
  });

  it.each([
    [{ "retry-after": "30" }, 429, 30_000],
    [{ "x-ratelimit-reset": "1000" }, 429, 1_000_000 - 500_000],
    [{ "ratelimit-reset": "1000" }, 429, 1_000_000 - 500_000],
    [{}, 429, 60_000],
  ])("rate-limit reset from %j", (headers, status, wait) => {
    const reset = rateLimitReset({ ...base, status, headers, now: 500_000 });
    expect(reset?.getTime()).toBe(500_000 + wait);
  });
});
