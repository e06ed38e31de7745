/**
 * The request lifecycle shared by every provider: find → update or open (never
 * two), labels, reviewers, auto-merge, close when obsolete. Providers supply
 * only the forge calls (`ForgeOps`); the rules live here once.
 */
import { renderBody } from "./body.ts";
import { AlreadyExistsError, PullRequestClosedError } from "./errors.ts";
import type {
  CheckRun,
  CheckState,
  CommitChecks,
  CommitStatusSpec,
  EnsureResult,
  Forge,
  ForgeKind,
  MergeMethod,
  PullRequest,
  PullRequestSpec,
} from "./types.ts";

/** What a provider implements: plain forge calls, each throwing the typed errors of ./errors.ts. */
export interface ForgeOps {
  readonly kind: ForgeKind;
  readonly repo: string;
  readonly baseUrl: string;
  /** Largest body the forge accepts (characters). */
  readonly bodyLimit: number;
  readonly requestCount: number;
  /** Every open request (one page of 100 covers a normal repository). */
  listOpen(): Promise<PullRequest[]>;
  /** The open request whose head is `branch`, asked directly (after an "already exists"). */
  findOpen(branch: string): Promise<PullRequest | undefined>;
  /** The most recent closed or merged request from `branch`. */
  lastClosed(branch: string): Promise<PullRequest | undefined>;
  create(input: { branch: string; base: string; title: string; body: string }): Promise<PullRequest>;
  update(pr: PullRequest, input: { title: string; body: string; base: string }): Promise<PullRequest>;
  addLabels(pr: PullRequest, labels: string[]): Promise<void>;
  requestReviewers(pr: PullRequest, reviewers: string[]): Promise<void>;
  enableAutoMerge(pr: PullRequest, method: MergeMethod): Promise<"enabled" | "merged" | "already-enabled">;
  comment(pr: PullRequest, body: string): Promise<void>;
  close(pr: PullRequest): Promise<void>;
  deleteBranch(branch: string): Promise<void>;
  commitChecks(ref: string): Promise<CommitChecks>;
  createCommitStatus(sha: string, status: CommitStatusSpec): Promise<void>;
}

/** failure beats pending beats success; no checks at all is `none`. */
export function summarize(checks: readonly CheckRun[]): CheckState {
  if (checks.length === 0) return "none";
  if (checks.some((c) => c.state === "failure")) return "failure";
  if (checks.some((c) => c.state === "pending")) return "pending";
  return "success";
}

const normalize = (s: string) => s.replace(/\r\n/g, "\n").trim();

export class RequestForge implements Forge {
  readonly kind: ForgeKind;
  readonly repo: string;
  readonly baseUrl: string;
  readonly ops: ForgeOps;

  constructor(ops: ForgeOps) {
    this.ops = ops;
    this.kind = ops.kind;
    this.repo = ops.repo;
    this.baseUrl = ops.baseUrl;
  }

  get requestCount(): number {
    return this.ops.requestCount;
  }

  async listOpenPullRequests(prefix: string): Promise<PullRequest[]> {
    return (await this.ops.listOpen()).filter((pr) => pr.branch.startsWith(prefix));
  }

  async ensurePullRequest(spec: PullRequestSpec, known?: PullRequest[]): Promise<EnsureResult> {
    const body = renderBody(spec.meta, { intro: spec.intro, limit: this.ops.bodyLimit });
    const open = known ?? (await this.ops.listOpen());
    let pr = open.find((p) => p.branch === spec.branch && p.state === "open");
    let action: EnsureResult["action"];
    if (!pr) {
      // A person who closed the very same proposal said no; reopening it every run would be noise.
      const last = await this.ops.lastClosed(spec.branch);
      if (last && last.state === "closed" && last.meta?.fingerprint === spec.meta.fingerprint)
        return { action: "declined", pullRequest: last, autoMerge: "not-requested" };
      try {
        pr = await this.ops.create({ branch: spec.branch, base: spec.base, title: spec.title, body });
        action = "opened";
      } catch (err) {
        // Another run (or a person) opened it since we listed: adopt it, never open a second.
        if (!(err instanceof AlreadyExistsError)) throw err;
        const found = await this.ops.findOpen(spec.branch);
        if (!found) throw err;
        pr = found;
        action = "unchanged";
      }
    } else {
      action = "unchanged";
    }
    if (
      action !== "opened" &&
      (pr.title !== spec.title || normalize(pr.body) !== normalize(body) || pr.base !== spec.base)
    ) {
      pr = await this.ops.update(pr, { title: spec.title, body, base: spec.base });
      action = "updated";
    }
    const have = pr.labels;
    const missing = (spec.labels ?? []).filter((l) => !have.includes(l));
    if (missing.length) {
      await this.ops.addLabels(pr, missing);
      pr = { ...pr, labels: [...pr.labels, ...missing] };
    }
    // Reviewers are asked once; asking again on every update would re-notify people.
    if (action === "opened" && spec.reviewers?.length) await this.ops.requestReviewers(pr, spec.reviewers);
    let autoMerge: EnsureResult["autoMerge"] = "not-requested";
    if (spec.autoMerge) {
      if (action === "unchanged" && pr.autoMerge === true) autoMerge = "already-enabled";
      else autoMerge = await this.ops.enableAutoMerge(pr, spec.mergeMethod ?? "merge");
    }
    return { action, pullRequest: pr, autoMerge };
  }

  async closeStale(branch: string, comment: string, known?: PullRequest[]): Promise<boolean> {
    const open = known ?? (await this.ops.listOpen());
    const pr = open.find((p) => p.branch === branch && p.state === "open");
    if (!pr) return false;
    try {
      await this.ops.comment(pr, comment);
      await this.ops.close(pr);
    } catch (err) {
      // Merged or closed by a person in the meantime: the outcome we wanted, minus our comment.
      if (!(err instanceof PullRequestClosedError)) throw err;
    }
    await this.ops.deleteBranch(branch);
    return true;
  }

  commitChecks(ref: string): Promise<CommitChecks> {
    return this.ops.commitChecks(ref);
  }

  async setCommitStatus(sha: string, status: CommitStatusSpec): Promise<"created" | "unchanged"> {
    const current = await this.ops.commitChecks(sha);
    if (current.checks.some((c) => c.name === status.context && c.state === status.state)) return "unchanged";
    await this.ops.createCommitStatus(sha, status);
    return "created";
  }
}
