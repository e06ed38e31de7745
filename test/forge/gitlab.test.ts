import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeMeta, parseMeta } from "../../src/forge/body.ts";
import { BranchProtectionError, ForgePermissionError, ForgeRateLimitError } from "../../src/forge/errors.ts";
import { createGitLabForge } from "../../src/forge/gitlab/index.ts";
import type { ImageChange, PullRequestSpec } from "../../src/forge/types.ts";
import { GitLabState, type OpenApiFake, startFakeGitLab } from "../infra/openapi-forge.ts";
import { fakeBranches, forgeContract } from "./contract.ts";

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

const held = (m: GitLabState["mrs"][number]) => ({
  number: m.iid,
  state: m.state === "opened" ? ("open" as const) : m.state,
  body: m.description ?? "",
  labels: m.labels,
  comments: m.notes,
});
const GITLAB_STATUS = { success: "success", failure: "failed", pending: "running" } as const;

forgeContract("gitlab provider against a fake GitLab validated by its OpenAPI description", () => ({
  label: "GitLab",
  repo: "platform/deploy/fleet",
  requests: "merge requests",
  forge: () => forge(),
  rejectedToken: (tokenSource) => {
    gl.inject((r) =>
      r.operationId === "listProjectMergeRequests"
        ? { status: 401, body: { message: "401 Unauthorized" } }
        : undefined,
    );
    return forge({ tokenSource });
  },
  missingRepo: () => ({ forge: forge({ repo: "platform/nope" }), repo: "platform/nope" }),
  ...fakeBranches(st.branches),
  open: async (branch) => st.open(branch).map(held),
  request: async (number) => {
    const m = st.mrs.find((x) => x.iid === number);
    if (!m) throw new Error(`no merge request !${number}`);
    return held(m);
  },
  closeAsPerson: async (number) => {
    const m = st.mrs.find((x) => x.iid === number);
    if (m) {
      m.state = "closed";
      m.closedBy = "alice";
    }
    return "alice";
  },
  // GitLab lists a commit's statuses newest first.
  setStatus: async (sha, name, state) => {
    st.statuses.set(sha, [{ name, status: GITLAB_STATUS[state] }, ...(st.statuses.get(sha) ?? [])]);
  },
}));

describe("gitlab provider: what only GitLab does", () => {
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

  it("merge-when-pipeline-succeeds already on is read from the listing: nothing new costs one request", async () => {
    const f = forge();
    const known = await f.listOpenPullRequests("shipmate/");
    const res = await f.ensurePullRequest(
      spec("shipmate/production", "7.1.0", { labels: ["shipmate", "production"], autoMerge: true }),
      known,
    );
    expect(res).toMatchObject({ action: "unchanged", autoMerge: "already-enabled" });
    expect(f.requestCount).toBe(1);
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

  it("429 'Retry later' with RateLimit-Reset beyond the bound fails with the reset time", async () => {
    const reset = Math.ceil(Date.now() / 1000) + 600;
    fail(429, "Retry later\n", { "ratelimit-reset": String(reset) });
    const err = await forge({ maxRateLimitWaitMs: 1000 })
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeRateLimitError);
    expect((err as Error).message).toContain(new Date(reset * 1000).toISOString());
  });

  it("a validation failure's field → errors body is read through its schema and named", async () => {
    fail(400, { message: { state: ["does not have a valid value"] } });
    const err = await forge()
      .listOpenPullRequests("shipmate/")
      .catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      'GitLab platform/deploy/fleet: list open merge requests failed with HTTP 400: {"state":["does not have a valid value"]}',
    );
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
