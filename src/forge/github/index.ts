/**
 * GitHub provider on Octokit. It takes an Octokit instance, so the GitHub App
 * passes Probot's installation client and the CLI its own (personal token,
 * fine-grained token or App installation token); GitHub Enterprise Server
 * works through the base URL (`https://ghe.example.com` → `/api/v3`).
 */
import { Octokit } from "@octokit/rest";
import type { z } from "zod";
import { ForgeError, registerSecret } from "../../errors.ts";
import { parseMeta } from "../body.ts";
import { BranchProtectionError, classifyForgeFailure, withRateLimitWait } from "../errors.ts";
import { type ForgeOps, RequestForge, summarize } from "../forge.ts";
import type {
  CheckRun,
  CommitChecks,
  CommitStatusSpec,
  Forge,
  ForgeProvider,
  MergeMethod,
  PullRequest,
} from "../types.ts";
import { githubApiUrl } from "./api-url.ts";
import { githubRepository } from "./repository.ts";
import * as S from "./schemas.ts";

/** The Octokit surface the provider uses: `@octokit/rest` and Probot's client both have it. */
export type OctokitLike = Pick<Octokit, "request" | "graphql">;

export interface GitHubOptions {
  /** `owner/name` */
  repo: string;
  /** A ready client (Probot's installation Octokit); otherwise one is made from token + url. */
  octokit?: OctokitLike;
  token?: string;
  /** github.com (default), an Enterprise web URL or an API URL ending in /api/v3. */
  url?: string;
  tokenSource?: string;
  maxRateLimitWaitMs?: number;
}

const PAGE = 100;

const AUTO_MERGE = `mutation($id: ID!, $mergeMethod: PullRequestMergeMethod!) {
  enablePullRequestAutoMerge(input: { pullRequestId: $id, mergeMethod: $mergeMethod }) {
    pullRequest { autoMergeRequest { enabledAt } }
  }
}`;

function toPullRequest(p: S.PullRequest): PullRequest {
  const meta = parseMeta(p.body);
  return {
    number: p.number,
    url: p.html_url,
    branch: p.head.ref,
    base: p.base.ref,
    title: p.title,
    body: p.body ?? "",
    state: p.merged_at ? "merged" : p.state,
    headSha: p.head.sha,
    labels: p.labels.map((l) => l.name),
    nodeId: p.node_id,
    ...(p.auto_merge !== undefined ? { autoMerge: p.auto_merge !== null } : {}),
    ...(meta ? { meta } : {}),
    ...(p.merged_by ? { closedBy: p.merged_by.login } : {}),
  };
}

interface HttpErrorLike {
  status?: number;
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
  message?: string;
  errors?: { type?: string; message?: string }[];
}

class GitHubOps implements ForgeOps {
  readonly kind = "github" as const;
  readonly repo: string;
  readonly baseUrl: string;
  readonly bodyLimit = 65_536;
  requestCount = 0;
  readonly #owner: string;
  readonly #name: string;
  readonly #octokit: OctokitLike;
  readonly #opts: GitHubOptions;

  constructor(opts: GitHubOptions) {
    const [owner, name, ...rest] = opts.repo.split("/");
    if (!owner || !name || rest.length)
      throw new ForgeError(`GitHub repository must be owner/name, got "${opts.repo}"`);
    this.repo = opts.repo;
    this.#owner = owner;
    this.#name = name;
    this.#opts = opts;
    const apiUrl = githubApiUrl(opts.url);
    this.baseUrl =
      apiUrl === "https://api.github.com" ? "https://github.com" : apiUrl.replace(/\/api\/v3$/, "");
    registerSecret(opts.token);
    this.#octokit =
      opts.octokit ??
      new Octokit({
        auth: opts.token,
        baseUrl: apiUrl,
        userAgent: "shipmate",
        // Octokit's own console warnings would interleave with our one-line output.
        log: { debug() {}, info() {}, warn() {}, error() {} },
      });
  }

  #fail(action: string, err: unknown): ForgeError {
    if (err instanceof ForgeError) return err;
    const e = err as HttpErrorLike;
    if (!e?.status || !e.response) {
      if (e?.errors?.length)
        return new ForgeError(
          `GitHub ${this.repo}: ${action} failed: ${e.errors.map((x) => x.message).join("; ")}`,
        );
      return new ForgeError(`GitHub ${this.repo}: ${action} failed: ${e?.message ?? String(err)}`);
    }
    const body = S.ErrorBody.safeParse(e.response.data);
    const details = body.success
      ? [
          body.data.message,
          ...(body.data.errors ?? []).map((x) => (typeof x === "string" ? x : (x.message ?? x.code))),
        ]
          .filter(Boolean)
          .join(": ")
      : "";
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(e.response.headers ?? {}))
      headers[k.toLowerCase()] = v === undefined ? undefined : String(v);
    return classifyForgeFailure({
      forge: provider,
      repo: this.repo,
      action,
      status: e.status,
      headers,
      message: details,
      tokenSource: this.#opts.tokenSource,
    });
  }

  async #rest<T extends z.ZodType>(
    action: string,
    route: string,
    params: Record<string, unknown>,
    schema?: T,
  ): Promise<z.infer<T>> {
    return withRateLimitWait(
      async () => {
        this.requestCount++;
        let data: unknown;
        try {
          data = (await this.#octokit.request(route, { owner: this.#owner, repo: this.#name, ...params }))
            .data;
        } catch (err) {
          throw this.#fail(action, err);
        }
        if (!schema) return undefined as z.infer<T>;
        const parsed = schema.safeParse(data);
        if (!parsed.success)
          throw new ForgeError(
            `GitHub ${this.repo}: unexpected answer to ${action}: ${parsed.error.message.slice(0, 200)}`,
          );
        return parsed.data;
      },
      { maxWaitMs: this.#opts.maxRateLimitWaitMs ?? 60_000 },
    );
  }

  async #list(
    params: Record<string, unknown>,
    state: "open" | "closed",
    pages = Infinity,
  ): Promise<PullRequest[]> {
    const out: PullRequest[] = [];
    for (let page = 1; page <= pages; page++) {
      const data = await this.#rest(
        `list ${state} pull requests`,
        "GET /repos/{owner}/{repo}/pulls",
        { state, per_page: PAGE, page, ...params },
        S.PullRequests,
      );
      out.push(...data.map(toPullRequest));
      if (data.length < PAGE) break;
    }
    return out;
  }

  listOpen(): Promise<PullRequest[]> {
    return this.#list({}, "open");
  }

  async findOpen(branch: string): Promise<PullRequest | undefined> {
    return (await this.#list({ head: `${this.#owner}:${branch}` }, "open", 1)).find(
      (p) => p.branch === branch,
    );
  }

  async lastClosed(branch: string): Promise<PullRequest | undefined> {
    const found = await this.#list(
      { head: `${this.#owner}:${branch}`, sort: "updated", direction: "desc" },
      "closed",
      1,
    );
    return found.find((p) => p.branch === branch);
  }

  async create(input: { branch: string; base: string; title: string; body: string }): Promise<PullRequest> {
    return toPullRequest(
      await this.#rest(
        `open a pull request from ${input.branch}`,
        "POST /repos/{owner}/{repo}/pulls",
        { head: input.branch, base: input.base, title: input.title, body: input.body },
        S.PullRequest,
      ),
    );
  }

  async update(pr: PullRequest, input: { title: string; body: string; base: string }): Promise<PullRequest> {
    return toPullRequest(
      await this.#rest(
        `update pull request #${pr.number}`,
        "PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
        { pull_number: pr.number, ...input },
        S.PullRequest,
      ),
    );
  }

  async addLabels(pr: PullRequest, labels: string[]): Promise<void> {
    await this.#rest(`label #${pr.number}`, "POST /repos/{owner}/{repo}/issues/{issue_number}/labels", {
      issue_number: pr.number,
      labels,
    });
  }

  async requestReviewers(pr: PullRequest, reviewers: string[]): Promise<void> {
    const team_reviewers = reviewers.filter((r) => r.includes("/")).map((r) => r.split("/").pop() ?? r);
    const users = reviewers.filter((r) => !r.includes("/"));
    await this.#rest(
      `request reviews on #${pr.number}`,
      "POST /repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers",
      { pull_number: pr.number, reviewers: users, ...(team_reviewers.length ? { team_reviewers } : {}) },
    );
  }

  async enableAutoMerge(
    pr: PullRequest,
    method: MergeMethod,
  ): Promise<"enabled" | "merged" | "already-enabled"> {
    const action = `enable auto-merge on #${pr.number}`;
    try {
      this.requestCount++;
      const data = await this.#octokit.graphql(AUTO_MERGE, {
        id: pr.nodeId,
        mergeMethod: method.toUpperCase(),
      });
      S.EnableAutoMerge.parse(data);
      return "enabled";
    } catch (err) {
      const messages = ((err as HttpErrorLike).errors ?? []).map((e) => e.message ?? "").join("; ");
      // Mergeable right now: GitHub refuses auto-merge and expects a plain merge.
      if (/clean status/i.test(messages)) {
        await this.#rest(`merge #${pr.number}`, "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", {
          pull_number: pr.number,
          merge_method: method,
        });
        return "merged";
      }
      if (/auto.?merge is not allowed/i.test(messages))
        throw new ForgeError(
          `GitHub ${this.repo}: auto-merge is disabled for this repository; turn on "Allow auto-merge" in its settings or set autoMerge: false`,
        );
      if (/protected branch rules not configured/i.test(messages))
        throw new BranchProtectionError(
          `GitHub ${this.repo}: auto-merge needs a branch protection rule on ${pr.base} that requires status checks`,
        );
      throw this.#fail(action, err);
    }
  }

  async comment(pr: PullRequest, body: string): Promise<void> {
    await this.#rest(
      `comment on #${pr.number}`,
      "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
      {
        issue_number: pr.number,
        body,
      },
    );
  }

  async close(pr: PullRequest): Promise<void> {
    await this.#rest(`close #${pr.number}`, "PATCH /repos/{owner}/{repo}/pulls/{pull_number}", {
      pull_number: pr.number,
      state: "closed",
    });
  }

  async deleteBranch(branch: string): Promise<void> {
    try {
      await this.#rest(`delete branch ${branch}`, "DELETE /repos/{owner}/{repo}/git/refs/{ref}", {
        ref: `heads/${branch}`,
      });
    } catch (err) {
      // 422 "Reference does not exist": already deleted (by a person, or "delete branch on merge").
      if (!(err instanceof ForgeError && (err.status === 422 || err.status === 404))) throw err;
    }
  }

  async commitChecks(ref: string): Promise<CommitChecks> {
    const combined = await this.#rest(
      `read the statuses of ${ref}`,
      "GET /repos/{owner}/{repo}/commits/{ref}/status",
      { ref, per_page: PAGE },
      S.CombinedStatus,
    );
    const runs = await this.#rest(
      `read the check runs of ${ref}`,
      "GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
      { ref, per_page: PAGE },
      S.CheckRuns,
    );
    const checks: CheckRun[] = [
      ...combined.statuses.map((s) => ({
        name: s.context,
        state:
          s.state === "success"
            ? ("success" as const)
            : s.state === "pending"
              ? ("pending" as const)
              : ("failure" as const),
        ...(s.target_url ? { url: s.target_url } : {}),
      })),
      ...runs.check_runs.map((r) => ({
        name: r.name,
        state:
          r.status !== "completed"
            ? ("pending" as const)
            : ["success", "neutral", "skipped"].includes(r.conclusion ?? "")
              ? ("success" as const)
              : ("failure" as const),
        ...(r.html_url ? { url: r.html_url } : {}),
      })),
    ];
    return { sha: combined.sha, state: summarize(checks), checks };
  }

  async createCommitStatus(sha: string, status: CommitStatusSpec): Promise<void> {
    await this.#rest(`set status ${status.context} on ${sha}`, "POST /repos/{owner}/{repo}/statuses/{sha}", {
      sha,
      state: status.state,
      context: status.context,
      description: status.description,
      ...(status.targetUrl ? { target_url: status.targetUrl } : {}),
    });
  }
}

export function createGitHubForge(opts: GitHubOptions): Forge {
  return new RequestForge(new GitHubOps(opts));
}

/** The scopes GitHub accepts for a call, when the token has none of them (any one of them suffices). */
function missingScope(h: Record<string, string | undefined>): string | undefined {
  const list = (v: string | undefined) =>
    (v ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  const accepted = list(h["x-accepted-oauth-scopes"]);
  const have = new Set(list(h["x-oauth-scopes"]));
  if (!accepted.length || accepted.some((s) => have.has(s))) return undefined;
  return accepted.join("' or '");
}

export const provider: ForgeProvider = {
  label: "GitHub",
  gitUser: "x-access-token",
  lacks: (h) => {
    const scope = missingScope(h);
    if (scope) return { scope, has: h["x-oauth-scopes"] ?? "" };
    // Fine-grained PATs and App installations name the permission instead of a scope.
    const permission = h["x-accepted-github-permissions"];
    return permission ? { permission } : undefined;
  },
  tokenEnv: ["SHIPMATE_FORGE_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"],
  ownsHost: (host) => host === "github.com" || host.endsWith(".github.com"),
  runnerUrl: (env) => env.GITHUB_API_URL,
  repository: (opts) => githubRepository(opts, provider),
  create: (opts) =>
    createGitHubForge({
      repo: opts.repo,
      ...(opts.octokit ? { octokit: opts.octokit as OctokitLike } : {}),
      ...(opts.token ? { token: opts.token } : {}),
      ...(opts.url ? { url: opts.url } : {}),
      ...(opts.tokenSource ? { tokenSource: opts.tokenSource } : {}),
      ...(opts.maxRateLimitWaitMs !== undefined ? { maxRateLimitWaitMs: opts.maxRateLimitWaitMs } : {}),
    }),
};
