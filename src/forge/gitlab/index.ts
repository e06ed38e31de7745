/**
 * GitLab provider on @gitbeaker/rest (gitlab.com or self-managed). Requests
 * go through our own requester: it counts them, and turns failures into the
 * typed errors of ../errors.ts, waiting out a 429 by GitLab's reset headers
 * instead of gitbeaker's blind retries. Token: `api` scope.
 */

import { createRequesterFn, type RequestOptions } from "@gitbeaker/requester-utils";
import { Gitlab } from "@gitbeaker/rest";
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
import { gitlabRepository } from "./repository.ts";
import * as S from "./schemas.ts";

export interface GitLabOptions {
  /** Project path with its groups, `group/sub/project`. */
  repo: string;
  /** https://gitlab.com (default) or a self-managed base URL (without /api/v4). */
  url?: string;
  token: string;
  tokenSource?: string;
  maxRateLimitWaitMs?: number;
}

const PER_PAGE = 100;

/** A failed HTTP exchange, classified by the caller that knows what it was doing. */
class HttpFailure extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, headers: Record<string, string>, message: string) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

function toPullRequest(mr: S.MergeRequest): PullRequest {
  const meta = parseMeta(mr.description);
  const state = mr.state === "merged" ? "merged" : mr.state === "closed" ? "closed" : "open";
  const by = mr.state === "merged" ? mr.merged_by : mr.closed_by;
  return {
    number: mr.iid,
    url: mr.web_url,
    branch: mr.source_branch,
    base: mr.target_branch,
    title: mr.title,
    body: mr.description ?? "",
    state,
    ...(mr.sha ? { headSha: mr.sha } : {}),
    labels: mr.labels,
    ...(mr.merge_when_pipeline_succeeds !== undefined ? { autoMerge: mr.merge_when_pipeline_succeeds } : {}),
    ...(meta ? { meta } : {}),
    ...(state !== "open" && by ? { closedBy: by.username } : {}),
  };
}

function checkState(status: string): CheckRun["state"] {
  if (status === "success" || status === "skipped") return "success";
  if (status === "failed" || status === "canceled") return "failure";
  return "pending";
}

class GitLabOps implements ForgeOps {
  readonly kind = "gitlab" as const;
  readonly repo: string;
  readonly baseUrl: string;
  readonly bodyLimit = 1_000_000;
  requestCount = 0;
  readonly #api: InstanceType<typeof Gitlab>;
  readonly #opts: GitLabOptions;

  constructor(opts: GitLabOptions) {
    this.repo = opts.repo.replace(/^\/+|\/+$/g, "");
    this.baseUrl = (opts.url ?? "https://gitlab.com").replace(/\/+$/, "").replace(/\/api\/v4$/, "");
    this.#opts = opts;
    registerSecret(opts.token);
    const requesterFn = createRequesterFn(
      (_, reqo) => Promise.resolve(reqo),
      (endpoint, options) => this.#send(endpoint, options),
    );
    this.#api = new Gitlab({ host: this.baseUrl, token: opts.token, requesterFn, rateLimits: {} });
  }

  async #send(endpoint: string, options?: RequestOptions) {
    const { prefixUrl, searchParams, method, headers, body, signal } = options ?? {};
    const url = new URL(endpoint, prefixUrl?.endsWith("/") ? prefixUrl : `${prefixUrl}/`);
    url.search = typeof searchParams === "string" ? searchParams : "";
    this.requestCount++;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: headers as Record<string, string>,
        body: body as string | undefined,
        signal: signal ?? null,
      });
    } catch (err) {
      throw new ForgeError(`GitLab ${this.repo}: cannot reach ${this.baseUrl}: ${(err as Error).message}`);
    }
    const resHeaders = Object.fromEntries(res.headers);
    const text = res.status === 204 ? "" : await res.text();
    if (!res.ok) throw new HttpFailure(res.status, resHeaders, text);
    const json =
      (res.headers.get("content-type") ?? "").includes("json") && text ? JSON.parse(text) : text || null;
    return { body: json, headers: resHeaders, status: res.status };
  }

  async #call<T extends z.ZodType>(
    action: string,
    fn: () => Promise<unknown>,
    schema?: T,
  ): Promise<z.infer<T>> {
    return withRateLimitWait(
      async () => {
        let data: unknown;
        try {
          data = await fn();
        } catch (err) {
          if (!(err instanceof HttpFailure)) throw err;
          let message = err.message;
          try {
            const raw: unknown = JSON.parse(err.message);
            const parsed = S.ErrorBody.parse(raw);
            message =
              typeof parsed.message === "string" ? parsed.message : JSON.stringify(parsed.message ?? raw);
          } catch {
            // plain text body ("Retry later"), or not an error object: the text is the message
          }
          throw classifyForgeFailure({
            forge: provider,
            repo: this.repo,
            action,
            status: err.status,
            headers: err.headers,
            message,
            tokenSource: this.#opts.tokenSource,
          });
        }
        if (!schema) return undefined as z.infer<T>;
        const parsed = schema.safeParse(data);
        if (!parsed.success)
          throw new ForgeError(
            `GitLab ${this.repo}: unexpected answer to ${action}: ${parsed.error.message.slice(0, 200)}`,
          );
        return parsed.data;
      },
      { maxWaitMs: this.#opts.maxRateLimitWaitMs ?? 60_000 },
    );
  }

  listOpen(): Promise<PullRequest[]> {
    return this.#call(
      "list open merge requests",
      () => this.#api.MergeRequests.all({ projectId: this.repo, state: "opened", perPage: PER_PAGE }),
      S.MergeRequests,
    ).then((list) => list.map(toPullRequest));
  }

  async findOpen(branch: string): Promise<PullRequest | undefined> {
    const list = await this.#call(
      `find the open merge request from ${branch}`,
      () =>
        this.#api.MergeRequests.all({
          projectId: this.repo,
          state: "opened",
          sourceBranch: branch,
          perPage: PER_PAGE,
        }),
      S.MergeRequests,
    );
    return list.map(toPullRequest).find((p) => p.branch === branch);
  }

  async lastClosed(branch: string): Promise<PullRequest | undefined> {
    const list = await this.#call(
      `find the last closed merge request from ${branch}`,
      () =>
        this.#api.MergeRequests.all({
          projectId: this.repo,
          state: "closed",
          sourceBranch: branch,
          orderBy: "updated_at",
          sort: "desc",
          perPage: 1,
          maxPages: 1,
        }),
      S.MergeRequests,
    );
    return list.map(toPullRequest)[0];
  }

  async create(input: { branch: string; base: string; title: string; body: string }): Promise<PullRequest> {
    return toPullRequest(
      await this.#call(
        `open a merge request from ${input.branch}`,
        () =>
          this.#api.MergeRequests.create(this.repo, input.branch, input.base, input.title, {
            description: input.body,
            removeSourceBranch: true,
          }),
        S.MergeRequest,
      ),
    );
  }

  async update(pr: PullRequest, input: { title: string; body: string; base: string }): Promise<PullRequest> {
    return toPullRequest(
      await this.#call(
        `update merge request !${pr.number}`,
        () =>
          this.#api.MergeRequests.edit(this.repo, pr.number, {
            title: input.title,
            description: input.body,
            targetBranch: input.base,
          }),
        S.MergeRequest,
      ),
    );
  }

  async addLabels(pr: PullRequest, labels: string[]): Promise<void> {
    await this.#call(
      `label merge request !${pr.number}`,
      () => this.#api.MergeRequests.edit(this.repo, pr.number, { addLabels: labels.join(",") }),
      S.MergeRequest,
    );
  }

  async requestReviewers(pr: PullRequest, reviewers: string[]): Promise<void> {
    const ids: number[] = [];
    for (const username of reviewers) {
      const [user] = await this.#call(
        `look up reviewer ${username}`,
        () => this.#api.Users.all({ username }),
        S.Users,
      );
      if (!user) throw new ForgeError(`GitLab ${this.repo}: reviewer "${username}" is not a GitLab user`);
      ids.push(user.id);
    }
    await this.#call(
      `request reviews on !${pr.number}`,
      () => this.#api.MergeRequests.edit(this.repo, pr.number, { reviewerIds: ids }),
      S.MergeRequest,
    );
  }

  async enableAutoMerge(
    pr: PullRequest,
    method: MergeMethod,
  ): Promise<"enabled" | "merged" | "already-enabled"> {
    try {
      const mr = await this.#call(
        `set !${pr.number} to merge when the pipeline succeeds`,
        () =>
          this.#api.MergeRequests.merge(this.repo, pr.number, {
            mergeWhenPipelineSucceeds: true,
            shouldRemoveSourceBranch: true,
            ...(method === "squash" ? { squash: true } : {}),
          }),
        S.MergeRequest,
      );
      return mr.state === "merged" ? "merged" : "enabled";
    } catch (err) {
      // On this endpoint 401 means the token's user may not merge into the protected target.
      if (err instanceof ForgeError && err.status === 401)
        throw new BranchProtectionError(
          `GitLab ${this.repo}: not allowed to merge into the protected branch ${pr.base}; give the token's user merge rights there or drop autoMerge`,
          401,
        );
      throw err;
    }
  }

  async comment(pr: PullRequest, body: string): Promise<void> {
    await this.#call(`comment on !${pr.number}`, () =>
      this.#api.MergeRequestNotes.create(this.repo, pr.number, body),
    );
  }

  async close(pr: PullRequest): Promise<void> {
    await this.#call(
      `close !${pr.number}`,
      () => this.#api.MergeRequests.edit(this.repo, pr.number, { stateEvent: "close" }),
      S.MergeRequest,
    );
  }

  async deleteBranch(branch: string): Promise<void> {
    try {
      await this.#call(`delete branch ${branch}`, () => this.#api.Branches.remove(this.repo, branch));
    } catch (err) {
      if (!(err instanceof ForgeError && err.status === 404)) throw err;
    }
  }

  async commitChecks(ref: string): Promise<CommitChecks> {
    const statuses = await this.#call(
      `read the statuses of ${ref}`,
      () => this.#api.Commits.allStatuses(this.repo, ref),
      S.CommitStatuses,
    );
    // A retried job leaves its older statuses behind; the newest per name counts (GitLab lists newest first).
    const seen = new Set<string>();
    const checks: CheckRun[] = [];
    for (const s of statuses) {
      if (seen.has(s.name)) continue;
      seen.add(s.name);
      checks.push({
        name: s.name,
        state: checkState(s.status),
        ...(s.target_url ? { url: s.target_url } : {}),
      });
    }
    return { sha: ref, state: summarize(checks), checks };
  }

  async createCommitStatus(sha: string, status: CommitStatusSpec): Promise<void> {
    await this.#call(`set status ${status.context} on ${sha}`, () =>
      this.#api.Commits.editStatus(this.repo, sha, status.state === "failure" ? "failed" : status.state, {
        name: status.context,
        description: status.description,
        ...(status.targetUrl ? { targetUrl: status.targetUrl } : {}),
      }),
    );
  }
}

export function createGitLabForge(opts: GitLabOptions): Forge {
  return new RequestForge(new GitLabOps(opts));
}

export const provider: ForgeProvider = {
  label: "GitLab",
  gitUser: "oauth2",
  /** `WWW-Authenticate: Bearer … error="insufficient_scope", … scope="api"`, or a JSON body saying so. */
  lacks: (h, said) => {
    const www = h["www-authenticate"] ?? "";
    const fromHeader = /insufficient_scope/.test(www) ? /scope="([^"]+)"/.exec(www)?.[1] : undefined;
    const scope =
      fromHeader ??
      (/insufficient_scope/.test(said) ? (/"scope"\s*:\s*"([^"]+)"/.exec(said)?.[1] ?? "api") : undefined);
    // GitLab lists the scopes that would do, separated by spaces.
    return scope ? { scope: scope.split(/\s+/).filter(Boolean).join("' or '") } : undefined;
  },
  tokenEnv: ["SHIPMATE_FORGE_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN"],
  nestedOwners: true,
  repository: (opts) => gitlabRepository(opts, provider),
  ownsHost: (host) => host === "gitlab.com",
  create: (opts) =>
    createGitLabForge({
      repo: opts.repo,
      token: opts.token ?? "",
      ...(opts.url ? { url: opts.url } : {}),
      ...(opts.tokenSource ? { tokenSource: opts.tokenSource } : {}),
      ...(opts.maxRateLimitWaitMs !== undefined ? { maxRateLimitWaitMs: opts.maxRateLimitWaitMs } : {}),
    }),
};
