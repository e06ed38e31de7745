import { Octokit } from "@octokit/rest";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeMeta, parseMeta } from "../../src/forge/body.ts";
import { BranchProtectionError, ForgePermissionError, ForgeRateLimitError } from "../../src/forge/errors.ts";
import { githubApiUrl } from "../../src/forge/github/api-url.ts";
import { createGitHubForge } from "../../src/forge/github/index.ts";
import type { ImageChange, PullRequestSpec } from "../../src/forge/types.ts";
import { GitHubState, type OpenApiFake, startFakeGitHub } from "../infra/openapi-forge.ts";
import { fakeBranches, forgeContract } from "./contract.ts";

let st: GitHubState;
let gh: OpenApiFake;

beforeAll(async () => {
  st = new GitHubState("acme", "fleet");
  gh = await startFakeGitHub(st);
});
afterAll(async () => {
  await gh?.close();
});
afterEach(() => {
  // Every request the provider made and every answer the fake gave matched GitHub's description.
  expect(gh.violations.splice(0)).toEqual([]);
});

const forge = (extra: Partial<Parameters<typeof createGitHubForge>[0]> = {}) =>
  createGitHubForge({ repo: "acme/fleet", token: "ghp_testtoken123", url: gh.url, ...extra });

const change = (to: string): ImageChange => ({
  image: "ghcr.io/acme/api",
  from: "2.0.0",
  to,
  policy: "flux-system:api",
  files: ["clusters/production/api/deployment.yaml"],
});

const spec = (branch: string, to: string, extra: Partial<PullRequestSpec> = {}): PullRequestSpec => ({
  branch,
  base: "main",
  title: `chore: update api to ${to}`,
  meta: makeMeta([change(to)]),
  ...extra,
});

const push = (branch: string) => st.branches.set(branch, `${branch.length}`.padEnd(40, "a"));

const held = (p: GitHubState["pulls"][number]) => ({
  number: p.number,
  state: p.merged ? ("merged" as const) : p.state,
  body: p.body ?? "",
  labels: p.labels,
  comments: p.comments,
});

forgeContract("github provider against a fake GitHub validated by @octokit/openapi", () => ({
  label: "GitHub",
  repo: "acme/fleet",
  requests: "pull requests",
  forge: () => forge(),
  rejectedToken: (tokenSource) => {
    gh.inject((r) =>
      r.operationId === "pulls/list"
        ? {
            status: 401,
            body: {
              message: "Bad credentials",
              documentation_url: "https://docs.github.com/rest",
              status: "401",
            },
          }
        : undefined,
    );
    return forge({ tokenSource });
  },
  missingRepo: () => ({ forge: forge({ repo: "acme/nope" }), repo: "acme/nope" }),
  ...fakeBranches(st.branches),
  open: async (branch) => st.open(branch).map(held),
  request: async (number) => {
    const p = st.pulls.find((x) => x.number === number);
    if (!p) throw new Error(`no pull request #${number}`);
    return held(p);
  },
  closeAsPerson: async (number) => {
    const p = st.pulls.find((x) => x.number === number);
    if (p) p.state = "closed";
    return undefined;
  },
  setStatus: async (sha, context, state) => {
    st.statuses.set(sha, [...(st.statuses.get(sha) ?? []), { context, state }]);
  },
}));

describe("github provider: what only GitHub does", () => {
  it.each([
    [undefined, "https://api.github.com"],
    ["https://github.com", "https://api.github.com"],
    ["https://ghe.example.com", "https://ghe.example.com/api/v3"],
    ["https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3"],
  ])("base URL: %s → %s", (url, api) => {
    expect(githubApiUrl(url)).toBe(api);
  });

  it("opens a request with labels, user and team reviewers, and GraphQL auto-merge", async () => {
    push("shipmate/prod");
    const res = await forge().ensurePullRequest(
      spec("shipmate/prod", "2.1.0", {
        labels: ["shipmate"],
        reviewers: ["alice", "acme/sre"],
        autoMerge: true,
        mergeMethod: "squash",
      }),
    );
    expect(res).toMatchObject({ action: "opened", autoMerge: "enabled" });
    const [p] = st.open("shipmate/prod");
    expect(p?.labels).toEqual(["shipmate"]);
    expect(p?.reviewers).toEqual(["alice", "team:sre"]);
    expect(p?.autoMerge).toEqual({ method: "squash" });
    expect(parseMeta(p?.body)?.changes).toEqual([change("2.1.0")]);
  });

  it("auto-merge already on is read from the listing: nothing new costs one request", async () => {
    const f = forge();
    const known = await f.listOpenPullRequests("shipmate/");
    const res = await f.ensurePullRequest(
      spec("shipmate/prod", "2.1.0", { labels: ["shipmate"], autoMerge: true, mergeMethod: "squash" }),
      known,
    );
    expect(res).toMatchObject({ action: "unchanged", autoMerge: "already-enabled" });
    expect(f.requestCount).toBe(1);
  });

  it("takes a ready Octokit instance (as Probot hands out)", async () => {
    const octokit = new Octokit({ auth: "ghs_installationtoken", baseUrl: `${gh.url}/api/v3` });
    const f = createGitHubForge({ repo: "acme/fleet", octokit });
    const branches = (await f.listOpenPullRequests("shipmate/")).map((p) => p.branch);
    expect(branches).toContain("shipmate/prod");
    expect(branches).toEqual((await forge().listOpenPullRequests("shipmate/")).map((p) => p.branch));
  });

  it("auto-merge on a request that is already mergeable ('clean status') merges it", async () => {
    push("shipmate/clean");
    st.autoMergeError = "Pull request Pull request is in clean status";
    try {
      const res = await forge().ensurePullRequest(spec("shipmate/clean", "4.0.0", { autoMerge: true }));
      expect(res.autoMerge).toBe("merged");
      expect(st.pulls.find((x) => x.number === res.pullRequest.number)?.merged).toBe(true);
    } finally {
      st.autoMergeError = undefined;
    }
  });

  it("auto-merge without branch protection rules names what to configure", async () => {
    push("shipmate/unprotected");
    st.autoMergeError = "Pull request Protected branch rules not configured for this branch";
    try {
      const err = await forge()
        .ensurePullRequest(spec("shipmate/unprotected", "5.0.0", { autoMerge: true }))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BranchProtectionError);
      expect((err as Error).message).toBe(
        "GitHub acme/fleet: auto-merge needs a branch protection rule on main that requires status checks",
      );
    } finally {
      st.autoMergeError = undefined;
    }
  });

  it("a protected base refusing the merge is a branch-protection error", async () => {
    push("shipmate/guarded");
    st.autoMergeError = "Pull request is in clean status";
    gh.inject((r) =>
      r.operationId === "pulls/merge"
        ? {
            status: 405,
            body: {
              message: 'Required status check "ci" is expected.',
              documentation_url: "https://docs.github.com/rest",
            },
          }
        : undefined,
    );
    try {
      const err = await forge()
        .ensurePullRequest(spec("shipmate/guarded", "6.0.0", { autoMerge: true }))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BranchProtectionError);
      expect((err as Error).message).toMatch(
        /branch protection refused to merge #\d+: Required status check "ci" is expected/,
      );
    } finally {
      st.autoMergeError = undefined;
    }
  });

  it.each([
    [[], [], "none"],
    [
      [{ context: "ci", state: "success" }],
      [{ name: "build", status: "completed", conclusion: "success" }],
      "success",
    ],
    [
      [{ context: "ci", state: "success" }],
      [{ name: "build", status: "in_progress", conclusion: null }],
      "pending",
    ],
    [
      [{ context: "ci", state: "error" }],
      [{ name: "build", status: "completed", conclusion: "success" }],
      "failure",
    ],
    [[], [{ name: "lint", status: "completed", conclusion: "skipped" }], "success"],
  ] as const)("checks: statuses %j + check runs %j → %s", async (statuses, runs, want) => {
    const sha = `${want}${statuses.length}${runs.length}`.padEnd(40, "0");
    st.statuses.set(sha, [...statuses]);
    st.checkRuns.set(sha, [...runs]);
    expect((await forge().commitChecks(sha)).state).toBe(want);
  });
});

describe("the fake GitHub itself", () => {
  it("rejects and records a call the description does not allow", async () => {
    const res = await fetch(`${gh.url}/api/v3/repos/acme/fleet/pulls?stat=open`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ head: 42 }),
    });
    expect(res.status).toBe(422);
    const seen = gh.violations.splice(0);
    expect(seen).toContain("POST /repos/{owner}/{repo}/pulls: unknown query parameter stat");
    expect(
      seen.some((v) => v.startsWith("POST /repos/{owner}/{repo}/pulls: body /head must be string")),
    ).toBe(true);
  });

  it("records an endpoint that does not exist", async () => {
    await fetch(`${gh.url}/api/v3/repos/acme/fleet/pull-requests`);
    expect(gh.violations.splice(0)).toEqual([
      "GET /repos/acme/fleet/pull-requests: no such operation in the description",
    ]);
  });
});

describe("github provider: bad input becomes one line that says what to fix", () => {
  const fail = (status: number, body: object, headers: Record<string, string> = {}) =>
    gh.inject((r) => (r.operationId === "pulls/list" ? { status, body, headers } : undefined));

  it("classic token without the scope: named from X-Accepted-OAuth-Scopes", async () => {
    fail(
      403,
      { message: "Resource not accessible by integration" },
      { "x-accepted-oauth-scopes": "repo", "x-oauth-scopes": "read:org, gist" },
    );
    const err = await forge()
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgePermissionError);
    expect((err as Error).message).toBe(
      "GitHub acme/fleet: the token lacks the 'repo' scope needed to list open pull requests (it has: read:org, gist)",
    );
  });

  it("fine-grained token without the permission: named from X-Accepted-GitHub-Permissions", async () => {
    fail(
      403,
      { message: "Resource not accessible by personal access token" },
      { "x-accepted-github-permissions": "pull_requests=read" },
    );
    const err = await forge()
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect((err as ForgePermissionError).missing).toBe("pull_requests=read");
  });

  it("rate limit with a reset inside the bound: waits, then succeeds", async () => {
    const reset = Math.ceil(Date.now() / 1000) + 1;
    fail(
      403,
      { message: "API rate limit exceeded" },
      { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) },
    );
    const f = forge({ maxRateLimitWaitMs: 5_000 });
    const started = Date.now();
    expect(await f.listOpenPullRequests("shipmate/")).not.toHaveLength(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(f.requestCount).toBe(2);
  });

  it("rate limit resetting beyond the bound fails at once with the reset time", async () => {
    const reset = Math.ceil(Date.now() / 1000) + 3600;
    fail(
      429,
      { message: "You have exceeded a secondary rate limit" },
      { "x-ratelimit-reset": String(reset) },
    );
    const started = Date.now();
    const err = await forge({ maxRateLimitWaitMs: 1_000 })
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeRateLimitError);
    expect((err as Error).message).toContain(new Date(reset * 1000).toISOString());
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("the token never appears in an error", async () => {
    fail(500, { message: "boom ghp_testtoken123" });
    const err = await forge()
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect((err as Error).message).not.toContain("ghp_testtoken123");
  });
});
