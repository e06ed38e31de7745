import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeMeta, parseMeta } from "../../src/forge/body.ts";
import {
  BranchProtectionError,
  ForgeAuthError,
  ForgeNotFoundError,
  ForgePermissionError,
  ForgeRateLimitError,
} from "../../src/forge/errors.ts";
import { createGitLabForge } from "../../src/forge/gitlab/index.ts";
import type { ImageChange, PullRequestSpec } from "../../src/forge/types.ts";
import { GitLabState, type OpenApiFake, startFakeGitLab } from "../infra/openapi-forge.ts";

let st: GitLabState;
let gl: OpenApiFake;

beforeAll(async () => {
  st = new GitLabState("platform/deploy/fleet");
  gl = await startFakeGitLab(st);
});
afterAll(async () => {
  await gl?.close();
});
afterEach(() => {
  expect(gl.violations.splice(0)).toEqual([]);
});

const forge = (extra: Partial<Parameters<typeof createGitLabForge>[0]> = {}) =>
  createGitLabForge({ repo: "platform/deploy/fleet", token: "glpat-testtoken", url: gl.url, ...extra });

const change = (to: string): ImageChange => ({
  image: "registry.gitlab.example.test/platform/web",
  from: "7.0.0",
  to,
  policy: "flux-system:web",
  files: ["clusters/production/web/kustomization.yaml"],
});

const spec = (branch: string, to: string, extra: Partial<PullRequestSpec> = {}): PullRequestSpec => ({
  branch,
  base: "main",
  title: `Update web to ${to}`,
  meta: makeMeta([change(to)]),
  ...extra,
});

describe("gitlab provider against a fake GitLab validated by its OpenAPI description", () => {
  it("opens a merge request in a nested group project, labels, reviewers, merge-when-pipeline-succeeds", async () => {
    st.branches.set("shipmate/production", "a".repeat(40));
    const res = await forge().ensurePullRequest(
      spec("shipmate/production", "7.1.0", {
        labels: ["shipmate", "production"],
        reviewers: ["alice"],
        autoMerge: true,
      }),
    );
    expect(res).toMatchObject({ action: "opened", autoMerge: "enabled" });
    const [m] = st.open("shipmate/production");
    expect(m?.labels).toEqual(["shipmate", "production"]);
    expect(m?.reviewerIds).toEqual([2]);
    expect(m?.mwps).toBe(true);
    expect(parseMeta(m?.description)?.changes).toEqual([change("7.1.0")]);
  });

  it("nothing new: one request (the listing)", async () => {
    const f = forge();
    const known = await f.listOpenPullRequests("shipmate/");
    const res = await f.ensurePullRequest(
      spec("shipmate/production", "7.1.0", { labels: ["shipmate", "production"], autoMerge: true }),
      known,
    );
    expect(res).toMatchObject({ action: "unchanged", autoMerge: "already-enabled" });
    expect(f.requestCount).toBe(1);
  });

  it("a newer change set updates the merge request in place", async () => {
    const res = await forge().ensurePullRequest(spec("shipmate/production", "7.2.0"));
    expect(res.action).toBe("updated");
    expect(st.open("shipmate/production")).toHaveLength(1);
    expect(parseMeta(st.open("shipmate/production")[0]?.description)?.changes[0]?.to).toBe("7.2.0");
  });

  it("409 'Another open merge request already exists' re-finds it instead of failing", async () => {
    const res = await forge().ensurePullRequest(spec("shipmate/production", "7.3.0"), []);
    expect(res.action).toBe("updated");
    expect(st.open("shipmate/production")).toHaveLength(1);
  });

  it("close-when-obsolete: note, close, delete the source branch", async () => {
    st.branches.set("shipmate/stale", "b".repeat(40));
    const f = forge();
    await f.ensurePullRequest(spec("shipmate/stale", "1.0.0"));
    expect(await f.closeStale("shipmate/stale", "Nothing left to update.")).toBe(true);
    const m = st.mrs.find((x) => x.source === "shipmate/stale");
    expect(m?.state).toBe("closed");
    expect(m?.notes).toEqual(["Nothing left to update."]);
    expect(st.branches.has("shipmate/stale")).toBe(false);
  });

  it("closed by a person: not reopened for the same changes", async () => {
    st.branches.set("shipmate/declined", "c".repeat(40));
    const first = await forge().ensurePullRequest(spec("shipmate/declined", "8.0.0"));
    const m = st.mrs.find((x) => x.iid === first.pullRequest.number);
    if (m) {
      m.state = "closed";
      m.closedBy = "alice";
    }
    const again = await forge().ensurePullRequest(spec("shipmate/declined", "8.0.0"));
    expect(again.action).toBe("declined");
    expect(again.pullRequest.closedBy).toBe("alice");
  });

  it("merge when pipeline succeeds on a finished pipeline merges at once", async () => {
    st.branches.set("shipmate/done", "d".repeat(40));
    st.pipelineDone = true;
    try {
      const res = await forge().ensurePullRequest(spec("shipmate/done", "9.0.0", { autoMerge: true }));
      expect(res.autoMerge).toBe("merged");
    } finally {
      st.pipelineDone = false;
    }
  });

  it.each([
    [[], "none"],
    [
      [
        { name: "test", status: "success" },
        { name: "deploy", status: "skipped" },
      ],
      "success",
    ],
    [[{ name: "test", status: "running" }], "pending"],
    [
      [
        { name: "test", status: "failed" },
        { name: "lint", status: "success" },
      ],
      "failure",
    ],
    [
      [
        { name: "test", status: "success" },
        { name: "test", status: "failed" },
      ],
      "success",
    ],
  ] as const)("pipeline statuses %j → %s (newest status per job wins)", async (statuses, want) => {
    const sha = `${want}${statuses.length}`.padEnd(40, "e");
    st.statuses.set(sha, [...statuses]);
    expect((await forge().commitChecks(sha)).state).toBe(want);
  });
});

describe("gitlab provider: bad input becomes one line that says what to fix", () => {
  const fail = (status: number, body: object | string, headers: Record<string, string> = {}) =>
    gl.inject((r) =>
      r.operationId === "listProjectMergeRequests"
        ? typeof body === "string"
          ? { status, text: body, headers }
          : { status, body, headers }
        : undefined,
    );

  it("expired token (401)", async () => {
    fail(401, { message: "401 Unauthorized" });
    const err = await forge({ tokenSource: "$GITLAB_TOKEN" })
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeAuthError);
    expect((err as Error).message).toBe(
      "GitLab platform/deploy/fleet: the token was rejected (expired, revoked or missing) while trying to list open merge requests; set a valid token in $GITLAB_TOKEN",
    );
  });

  it("token without the api scope (403 insufficient_scope) names the scope", async () => {
    fail(
      403,
      {
        error: "insufficient_scope",
        error_description: "The request requires higher privileges than provided by the access token.",
        scope: "api read_api",
      },
      {
        "www-authenticate":
          'Bearer realm="", error="insufficient_scope", error_description="The request requires higher privileges", scope="api read_api"',
      },
    );
    const err = await forge()
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgePermissionError);
    expect((err as Error).message).toBe(
      "GitLab platform/deploy/fleet: the token lacks the 'api' or 'read_api' scope needed to list open merge requests",
    );
  });

  it("project that does not exist (404)", async () => {
    const err = await forge({ repo: "platform/nope" })
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeNotFoundError);
  });

  it("429 'Retry later' with RateLimit-Reset beyond the bound fails with the reset time", async () => {
    const reset = Math.ceil(Date.now() / 1000) + 600;
    fail(429, "Retry later\n", { "ratelimit-reset": String(reset) });
    const err = await forge({ maxRateLimitWaitMs: 1000 })
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeRateLimitError);
    expect((err as Error).message).toContain(new Date(reset * 1000).toISOString());
  });

  it("429 with Retry-After inside the bound waits and retries", async () => {
    fail(429, "Retry later\n", { "retry-after": "0" });
    const f = forge();
    expect(await f.listOpenPullRequests("shipmate/")).not.toHaveLength(0);
    expect(f.requestCount).toBe(2);
  });

  it("protected target branch refusing the merge (401 on /merge)", async () => {
    st.branches.set("shipmate/protected", "f".repeat(40));
    gl.inject((r) =>
      r.operationId === "mergeMergeRequest"
        ? { status: 401, body: { message: "401 Unauthorized" } }
        : undefined,
    );
    const err = await forge()
      .ensurePullRequest(spec("shipmate/protected", "10.0.0", { autoMerge: true }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BranchProtectionError);
    expect((err as Error).message).toBe(
      "GitLab platform/deploy/fleet: not allowed to merge into the protected branch main; give the token's user merge rights there or drop autoMerge",
    );
  });
});
