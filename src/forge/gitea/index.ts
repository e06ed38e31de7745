/**
 * Gitea / Forgejo provider: the REST API v1 over fetch, every response parsed
 * through ./schemas.ts. Token: an access token with `write:repository` (and
 * `write:issue` for labels and comments).
 */
import type { z } from "zod";
import { ForgeError, registerSecret, UsageError } from "../../errors.ts";
import { parseMeta } from "../body.ts";
import { classifyForgeFailure, withRateLimitWait } from "../errors.ts";
import { type ForgeOps, RequestForge, summarize } from "../forge.ts";
import type {
  CheckRun,
  CheckState,
  CommitChecks,
  CommitStatusSpec,
  Forge,
  ForgeProvider,
  MergeMethod,
  PullRequest,
} from "../types.ts";
import { giteaRepository } from "./repository.ts";
import * as S from "./schemas.ts";

export interface GiteaOptions {
  /** Web base URL, e.g. `https://gitea.example.com` (the API is under /api/v1). */
  url: string;
  /** `owner/name` */
  repo: string;
  token: string;
  tokenSource?: string;
  maxRateLimitWaitMs?: number;
  fetch?: typeof fetch;
}

const PAGE = 50; // Gitea's default [api] MAX_RESPONSE_ITEMS

function toPullRequest(p: S.PullRequest): PullRequest {
  const merged = p.merged === true;
  return {
    number: p.number,
    url: p.html_url,
    branch: p.head.ref,
    base: p.base.ref,
    title: p.title,
    body: p.body ?? "",
    state: merged ? "merged" : p.state,
    ...(p.head.sha ? { headSha: p.head.sha } : {}),
    labels: (p.labels ?? []).map((l) => l.name),
    ...(parseMeta(p.body) ? { meta: parseMeta(p.body) } : {}),
    ...(merged && p.merged_by ? { closedBy: p.merged_by.login } : {}),
  };
}

function checkState(s: string): Exclude<CheckState, "none"> {
  if (s === "success" || s === "warning" || s === "skipped") return "success";
  if (s === "pending") return "pending";
  return "failure";
}

class GiteaOps implements ForgeOps {
  readonly kind = "gitea" as const;
  readonly repo: string;
  readonly baseUrl: string;
  readonly bodyLimit = 65_536;
  requestCount = 0;
  readonly #api: string;
  readonly #token: string;
  readonly #opts: GiteaOptions;
  readonly #fetch: typeof fetch;

  constructor(opts: GiteaOptions) {
    this.repo = opts.repo;
    this.baseUrl = opts.url.replace(/\/+$/, "");
    this.#api = `${this.baseUrl}/api/v1/repos/${opts.repo.split("/").map(encodeURIComponent).join("/")}`;
    this.#token = opts.token;
    this.#opts = opts;
    this.#fetch = opts.fetch ?? fetch;
    registerSecret(opts.token);
  }

  async #call<T extends z.ZodType>(
    action: string,
    method: string,
    path: string,
    schema: T | undefined,
    body?: unknown,
  ): Promise<{ data: z.infer<T>; headers: Headers; status: number }> {
    return withRateLimitWait(
      async () => {
        this.requestCount++;
        let res: Response;
        try {
          res = await this.#fetch(`${this.#api}${path}`, {
            method,
            headers: {
              authorization: `token ${this.#token}`,
              accept: "application/json",
              ...(body === undefined ? {} : { "content-type": "application/json" }),
            },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
        } catch (err) {
          throw new ForgeError(
            `Gitea ${this.repo}: cannot reach ${this.baseUrl} to ${action}: ${(err as Error).message}`,
          );
        }
        const text = await res.text();
        if (!res.ok) {
          let message = text;
          try {
            message = S.ApiError.parse(JSON.parse(text)).message ?? text;
          } catch {
            // not JSON: keep the text
          }
          throw classifyForgeFailure({
            forge: provider,
            repo: this.repo,
            action,
            status: res.status,
            headers: Object.fromEntries(res.headers),
            message,
            tokenSource: this.#opts.tokenSource,
          });
        }
        if (!schema) return { data: undefined as z.infer<T>, headers: res.headers, status: res.status };
        const parsed = schema.safeParse(text ? JSON.parse(text) : null);
        if (!parsed.success)
          throw new ForgeError(
            `Gitea ${this.repo}: unexpected answer to ${action}: ${parsed.error.message.slice(0, 200)}`,
          );
        return { data: parsed.data, headers: res.headers, status: res.status };
      },
      { maxWaitMs: this.#opts.maxRateLimitWaitMs ?? 60_000 },
    );
  }

  async #list(state: "open" | "closed", extra = ""): Promise<PullRequest[]> {
    const out: PullRequest[] = [];
    for (let page = 1; ; page++) {
      const { data, headers } = await this.#call(
        `list ${state} pull requests`,
        "GET",
        `/pulls?state=${state}&limit=${PAGE}&page=${page}${extra}`,
        S.PullRequests,
      );
      out.push(...data.map(toPullRequest));
      const total = Number(headers.get("x-total-count"));
      if (data.length < PAGE || (Number.isFinite(total) && out.length >= total)) return out;
    }
  }

  listOpen(): Promise<PullRequest[]> {
    return this.#list("open");
  }

  async findOpen(branch: string): Promise<PullRequest | undefined> {
    return (await this.#list("open")).find((p) => p.branch === branch);
  }

  async lastClosed(branch: string): Promise<PullRequest | undefined> {
    const { data } = await this.#call(
      "list closed pull requests",
      "GET",
      `/pulls?state=closed&sort=recentupdate&limit=${PAGE}&page=1`,
      S.PullRequests,
    );
    return data.map(toPullRequest).find((p) => p.branch === branch);
  }

  async create(input: { branch: string; base: string; title: string; body: string }): Promise<PullRequest> {
    const { data } = await this.#call(
      `open a pull request from ${input.branch}`,
      "POST",
      "/pulls",
      S.PullRequest,
      { head: input.branch, base: input.base, title: input.title, body: input.body },
    );
    return toPullRequest(data);
  }

  async update(pr: PullRequest, input: { title: string; body: string; base: string }): Promise<PullRequest> {
    const { data } = await this.#call(
      `update pull request #${pr.number}`,
      "PATCH",
      `/pulls/${pr.number}`,
      S.PullRequest,
      {
        title: input.title,
        body: input.body,
        base: input.base,
      },
    );
    return toPullRequest(data);
  }

  async addLabels(pr: PullRequest, labels: string[]): Promise<void> {
    const { data: existing } = await this.#call("list labels", "GET", `/labels?limit=${PAGE}`, S.Labels);
    const ids: number[] = [];
    for (const name of labels) {
      let label = existing.find((l) => l.name === name);
      if (!label) {
        label = (
          await this.#call(`create label ${name}`, "POST", "/labels", S.Label, { name, color: "#0e8a16" })
        ).data;
      }
      ids.push(label.id);
    }
    await this.#call(`label pull request #${pr.number}`, "POST", `/issues/${pr.number}/labels`, S.Labels, {
      labels: ids,
    });
  }

  async requestReviewers(pr: PullRequest, reviewers: string[]): Promise<void> {
    // Gitea: `org/team` is not a user; teams go to team_reviewers by name.
    const teams = reviewers.filter((r) => r.includes("/")).map((r) => r.split("/").pop() ?? r);
    const users = reviewers.filter((r) => !r.includes("/"));
    await this.#call(
      `request reviews on #${pr.number}`,
      "POST",
      `/pulls/${pr.number}/requested_reviewers`,
      undefined,
      {
        reviewers: users,
        team_reviewers: teams,
      },
    );
  }

  async enableAutoMerge(
    pr: PullRequest,
    method: MergeMethod,
  ): Promise<"enabled" | "merged" | "already-enabled"> {
    try {
      const { status } = await this.#call(
        `schedule auto-merge of #${pr.number}`,
        "POST",
        `/pulls/${pr.number}/merge`,
        undefined,
        { Do: method, merge_when_checks_succeed: true, delete_branch_after_merge: true },
      );
      // 201: scheduled until checks pass; 200: Gitea merged it at once.
      return status === 201 ? "enabled" : "merged";
    } catch (err) {
      if (
        err instanceof ForgeError &&
        err.status === 409 &&
        /already.*scheduled|scheduled.*already/i.test(err.message)
      )
        return "already-enabled";
      throw err;
    }
  }

  async comment(pr: PullRequest, body: string): Promise<void> {
    await this.#call(`comment on #${pr.number}`, "POST", `/issues/${pr.number}/comments`, undefined, {
      body,
    });
  }

  async close(pr: PullRequest): Promise<void> {
    await this.#call(`close #${pr.number}`, "PATCH", `/pulls/${pr.number}`, S.PullRequest, {
      state: "closed",
    });
  }

  async deleteBranch(branch: string): Promise<void> {
    try {
      await this.#call(
        `delete branch ${branch}`,
        "DELETE",
        `/branches/${branch.split("/").map(encodeURIComponent).join("/")}`,
        undefined,
      );
    } catch (err) {
      // Already gone (deleted by a person or by the merge): nothing left to do.
      if (!(err instanceof ForgeError && err.status === 404)) throw err;
    }
  }

  async commitChecks(ref: string): Promise<CommitChecks> {
    const { data } = await this.#call(
      `read the statuses of ${ref}`,
      "GET",
      `/commits/${encodeURIComponent(ref)}/status?limit=${PAGE}`,
      S.CombinedStatus,
    );
    const checks: CheckRun[] = (data.statuses ?? []).map((s) => ({
      name: s.context,
      state: checkState(s.status),
      ...(s.target_url ? { url: s.target_url } : {}),
    }));
    return { sha: data.sha, state: summarize(checks), checks };
  }

  async createCommitStatus(sha: string, status: CommitStatusSpec): Promise<void> {
    await this.#call(
      `set status ${status.context} on ${sha}`,
      "POST",
      `/statuses/${encodeURIComponent(sha)}`,
      undefined,
      {
        state: status.state,
        context: status.context,
        description: status.description,
        ...(status.targetUrl ? { target_url: status.targetUrl } : {}),
      },
    );
  }
}

export function createGiteaForge(opts: GiteaOptions): Forge {
  return new RequestForge(new GiteaOps(opts));
}

export const provider: ForgeProvider = {
  label: "Gitea",
  aliases: ["forgejo"],
  gitUser: "git",
  // "token does not have at least one of required scope(s), required=[write:repository], token scope=…"
  lacks: (_h, said) => {
    const scope = /required scope\(s\).*?required=\[([^\]]+)\]/i.exec(said)?.[1]?.trim();
    return scope ? { scope } : undefined;
  },
  tokenEnv: ["SHIPMATE_FORGE_TOKEN", "GITEA_TOKEN", "FORGEJO_TOKEN"],
  repository: (opts) => giteaRepository(opts, provider),
  ownsHost: (host) => host === "codeberg.org" || host === "gitea.com",
  create: (opts) => {
    if (!opts.url) throw new UsageError("a Gitea/Forgejo forge needs --forge-url (its base URL)");
    return createGiteaForge({
      repo: opts.repo,
      url: opts.url,
      token: opts.token ?? "",
      ...(opts.tokenSource ? { tokenSource: opts.tokenSource } : {}),
      ...(opts.maxRateLimitWaitMs !== undefined ? { maxRateLimitWaitMs: opts.maxRateLimitWaitMs } : {}),
    });
  },
};
