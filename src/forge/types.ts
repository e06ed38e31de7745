/**
 * The one interface every forge provider (src/forge/github, gitlab, gitea)
 * implements. Callers (update in pull-request mode, promote, the GitHub App)
 * speak only this; the providers translate it to their forge's API.
 */

import type { RepositoryHost, RepositoryOptions } from "./repository.ts";

/** A forge kind: a key of the one provider registry (src/forge/index.ts). */
export type ForgeKind = keyof typeof import("./index.ts").PROVIDERS;

/** One image moving from one reference to another, as the request body's table shows it. */
export interface ImageChange {
  /** Image repository without tag or digest (`ghcr.io/org/app`). */
  image: string;
  /** Reference before (`1.2.3`, `1.2.3@sha256:…`); empty when the image is new to the target. */
  from: string;
  to: string;
  /** Policy id (`flux-system:app`) or the promotion that chose it (`staging → production`). */
  policy?: string;
  /** Repository-relative files that were rewritten. */
  files: string[];
}

/** What the bot writes into the hidden block of a request body and reads back on later runs. */
export interface RequestMeta {
  /** Format version of this block. */
  v: 1;
  /** Stable fingerprint of the change set: equal fingerprints mean nothing new to push. */
  fingerprint: string;
  changes: ImageChange[];
  /** Promotion only: the environments and the source commit the request was made from. */
  promotion?: { from: string; to: string; revision: string; apps?: string[] };
}

export interface PullRequestSpec {
  /** Bot branch, e.g. `shipmate/production`. Pushed by the caller before ensurePullRequest. */
  branch: string;
  /** Target branch, e.g. `main`. */
  base: string;
  title: string;
  /** Markdown shown above the table (optional). */
  intro?: string;
  meta: RequestMeta;
  labels?: string[];
  /** Usernames; on GitHub `org/team` requests a team review. */
  reviewers?: string[];
  /** Ask the forge to merge once checks pass. */
  autoMerge?: boolean;
  mergeMethod?: MergeMethod;
}

export type MergeMethod = "merge" | "squash" | "rebase";

export type PullRequestState = "open" | "closed" | "merged";

export interface PullRequest {
  /** GitHub/Gitea number, GitLab iid. */
  number: number;
  url: string;
  branch: string;
  base: string;
  title: string;
  body: string;
  state: PullRequestState;
  /** Head commit the forge knows for the request, when it says. */
  headSha?: string;
  labels: string[];
  /** The hidden block, when the body carries a valid one. */
  meta?: RequestMeta;
  /** Who closed or merged it, when the forge says (for "closed by a person"). */
  closedBy?: string;
  /** GitHub GraphQL node id, used for auto-merge. */
  nodeId?: string;
  /** Whether auto-merge is already on, when the listing says (GitHub, GitLab). */
  autoMerge?: boolean;
}

/**
 * `declined`: no request is open and a person closed one proposing exactly
 * these changes without merging; it is not reopened until the changes differ.
 */
export type EnsureAction = "opened" | "updated" | "unchanged" | "declined";

export interface EnsureResult {
  action: EnsureAction;
  pullRequest: PullRequest;
  autoMerge?: "enabled" | "merged" | "already-enabled" | "not-requested";
}

export type CheckState = "success" | "pending" | "failure" | "none";

export interface CheckRun {
  name: string;
  state: Exclude<CheckState, "none">;
  url?: string;
}

/** Combined verdict over commit statuses and check runs (or pipelines) of one commit. */
export interface CommitChecks {
  sha: string;
  state: CheckState;
  checks: CheckRun[];
}

/** A commit status as a notification sets it (Flux's github/gitlab/gitea providers). */
export interface CommitStatusSpec {
  state: "success" | "failure" | "pending";
  /** Stable name the forge groups statuses by (`kustomization/podinfo/0c9c2e41`). */
  context: string;
  description: string;
  targetUrl?: string;
}

export interface ForgeRepoRef {
  kind: ForgeKind;
  /** `owner/name` (GitLab: full project path, groups included). */
  repo: string;
}

export interface Forge extends ForgeRepoRef {
  /** Web URL of the forge (GitHub Enterprise / self-managed GitLab / Gitea base). */
  readonly baseUrl: string;
  /**
   * Open requests whose head branch starts with `prefix`: the only request a
   * run with nothing to change makes (one page covers up to 100 requests).
   */
  listOpenPullRequests(prefix: string): Promise<PullRequest[]>;
  /**
   * Find the open request for `spec.branch` and update it, or open one; never
   * two for one branch. `known` is the result of an earlier
   * listOpenPullRequests in the same run, which saves the lookup.
   */
  ensurePullRequest(spec: PullRequestSpec, known?: PullRequest[]): Promise<EnsureResult>;
  /** Close the open request for `branch` with a comment and delete the branch; false when none was open. */
  closeStale(branch: string, comment: string, known?: PullRequest[]): Promise<boolean>;
  /** Statuses and checks of a commit (the promotion gate). */
  commitChecks(ref: string): Promise<CommitChecks>;
  /**
   * Sets a status on a commit; `unchanged` when the commit already carries
   * one with this context and state (a repeated notification writes nothing).
   */
  setCommitStatus(sha: string, status: CommitStatusSpec): Promise<"created" | "unchanged">;
  /** Requests sent to the forge by this provider so far (benchmarks, `--json`). */
  readonly requestCount: number;
}

/**
 * One forge provider: what shipmate knows of a forge kind besides its API
 * client. Each provider folder exports one; src/forge/index.ts registers
 * them in its one map, from which flags, token variables, host inference and
 * the client are all served.
 */
export interface ForgeProvider {
  /** The forge's name in messages: `GitHub`. */
  label: string;
  /** Other names `--forge` accepts for it (`forgejo`). */
  aliases?: readonly string[];
  /** The user name that goes with its token over HTTPS git. */
  gitUser: string;
  /**
   * What a 403 says the token lacks, read from the forge's own headers and
   * message: a scope, or (GitHub's fine-grained tokens) a permission, with
   * what the token has when the forge says.
   */
  lacks?(
    headers: Record<string, string | undefined>,
    said: string,
  ): { scope: string; has?: string } | { permission: string } | undefined;
  /** Where its token is looked for, first match wins. */
  tokenEnv: readonly string[];
  /** A public host that implies this forge (self-hosted ones need --forge). */
  ownsHost(host: string): boolean;
  /** The API base a CI runner of this forge announces in its environment (GitHub Actions' GITHUB_API_URL). */
  runnerUrl?(env: NodeJS.ProcessEnv): string | undefined;
  /** Owners are group paths that may nest (`group/sub`, GitLab); otherwise one user or organisation name. */
  nestedOwners?: boolean;
  create(opts: ProviderOptions): Forge;
  /** Bootstrap's repository `owner/name` on this forge: read it, the token's user, create it (./repository.ts). */
  repository(opts: RepositoryOptions): RepositoryHost;
}

/** What a provider is created from (`octokit`: GitHub only, Probot's installation client). */
export interface ProviderOptions {
  repo: string;
  url?: string;
  token?: string;
  tokenSource?: string;
  maxRateLimitWaitMs?: number;
  octokit?: unknown;
}

/** Connection options shared by the CLI, the Action and the App. */
export interface ForgeOptions {
  kind: ForgeKind;
  repo: string;
  /** API or web base URL; the provider's public default when absent. */
  url?: string;
  token?: string;
  /** Longest wait for a rate-limit reset before failing (ms); default 60 s. */
  maxRateLimitWaitMs?: number;
}
