/**
 * Delivering a change set as a pull/merge request: the bot branch is pushed
 * by git (src/git, `push-branch`), then the request is opened, updated or —
 * when nothing is left to change — closed with its branch deleted. A run with
 * nothing to change costs one forge request (the listing).
 */

import type { FileUpdate } from "../changes.ts";
import type { PullRequestSettings } from "../config/fleet.ts";
import { UsageError } from "../errors.ts";
import { Workspace } from "../git/workspace.ts";
import { refParts } from "../manifest/ref.ts";
import { runUpdateJob, type UpdateJob, type UpdateJobResult } from "../update/job.ts";
import { makeMeta } from "./body.ts";
import type { EnsureResult, Forge, ImageChange, MergeMethod, PullRequest, RequestMeta } from "./types.ts";

/** Every bot branch starts with this, so one listing finds all of shipmate's open requests. */
export const BOT_PREFIX = "shipmate/";

export interface ProposeOptions {
  forge: Forge;
  branch: string;
  base: string;
  title: string;
  intro?: string;
  changes: ImageChange[];
  promotion?: RequestMeta["promotion"];
  labels?: string[];
  reviewers?: string[];
  autoMerge?: boolean;
  mergeMethod?: MergeMethod;
  /** The open requests listed earlier in this run (saves the listing). */
  known?: PullRequest[];
  /** Posted on the request when it is closed because nothing is left to change. */
  closeComment?: string;
}

export type ProposalOutcome =
  | EnsureResult
  /** Nothing left to change: the open request was closed and its branch deleted. */
  | { action: "closed"; branch: string }
  /** Nothing to change and nothing open. */
  | { action: "none" };

export async function propose(opts: ProposeOptions): Promise<ProposalOutcome> {
  const known = opts.known ?? (await opts.forge.listOpenPullRequests(BOT_PREFIX));
  if (opts.changes.length === 0) {
    const closed = await opts.forge.closeStale(
      opts.branch,
      opts.closeComment ?? "Nothing is left to change here: the target already has these versions. Closing.",
      known,
    );
    return closed ? { action: "closed", branch: opts.branch } : { action: "none" };
  }
  return opts.forge.ensurePullRequest(
    {
      branch: opts.branch,
      base: opts.base,
      title: opts.title,
      ...(opts.intro ? { intro: opts.intro } : {}),
      meta: makeMeta(opts.changes, opts.promotion),
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.reviewers ? { reviewers: opts.reviewers } : {}),
      ...(opts.autoMerge ? { autoMerge: true } : {}),
      ...(opts.mergeMethod ? { mergeMethod: opts.mergeMethod } : {}),
    },
    known,
  );
}

function splitRef(ref: string): { name: string; version: string } {
  const parts = refParts(ref);
  if (!parts) return { name: ref, version: "" };
  const version = `${parts.tag ?? ""}${parts.digest ? `@${parts.digest}` : ""}`;
  return { name: parts.name, version };
}

/**
 * The request table's rows from an update's file changes: one row per policy,
 * tag and digest setters folded into one `from → to`.
 */
export function imageChangesFromUpdate(
  files: readonly FileUpdate[],
  imageOf: (policy: string) => string | undefined = () => undefined,
): ImageChange[] {
  type Side = { tag?: string; digest?: string; ref?: string };
  const rows = new Map<string, { image: string; from: Side; to: Side; files: Set<string> }>();
  for (const f of files) {
    for (const c of f.changes) {
      let row = rows.get(c.policy);
      if (!row) {
        row = { image: imageOf(c.policy) ?? "", from: {}, to: {}, files: new Set() };
        rows.set(c.policy, row);
      }
      row.files.add(f.path);
      if (c.part === "image") {
        const before = splitRef(c.old);
        const after = splitRef(c.new);
        row.image ||= after.name;
        row.from.ref = before.version;
        row.to.ref = after.version;
      } else if (c.part === "tag" || c.part === "digest") {
        row.from[c.part] = c.old;
        row.to[c.part] = c.new;
      } else {
        row.image ||= c.new;
      }
    }
  }
  const show = (v: Side) => v.ref ?? `${v.tag ?? ""}${v.digest ? `@${v.digest}` : ""}`;
  return [...rows].map(([policy, r]) => ({
    image: r.image || policy,
    from: show(r.from),
    to: show(r.to),
    policy,
    files: [...r.files].sort(),
  }));
}

export interface UpdateRequestOptions {
  /** The update job as `shipmate update` builds it; delivery is decided here. */
  job: Omit<UpdateJob, "delivery" | "pushBranch" | "dryRun">;
  forge: Forge;
  /** Bot branch (default `shipmate/update-<base>`); must start with `shipmate/`. */
  branch?: string;
  title?: string;
  labels?: string[];
  reviewers?: string[];
  autoMerge?: boolean;
  mergeMethod?: MergeMethod;
  /** Image repository of a policy id, for the table (the policies know it). */
  imageOf?: (policy: string) => string | undefined;
  /** The shipmate.yaml `pullRequest` settings of a policy's environment, added to the options above. */
  settingsOf?: (policy: string) => PullRequestSettings | undefined;
}

/**
 * The request options for changes of `policies`: the command's own, plus the
 * labels and reviewers of every environment the changes belong to, and
 * auto-merge when the command asks for it or every one of those environments does.
 */
export function requestOptions(
  own: { labels?: string[]; reviewers?: string[]; autoMerge?: boolean },
  settings: readonly (PullRequestSettings | undefined)[],
): { labels?: string[]; reviewers?: string[]; autoMerge?: boolean } {
  const union = (
    a: readonly string[] | undefined,
    more: (s: PullRequestSettings) => string[] | undefined,
  ) => {
    const all = [...new Set([...(a ?? []), ...settings.flatMap((s) => (s ? (more(s) ?? []) : []))])];
    return all.length > 0 ? all : undefined;
  };
  const labels = union(own.labels, (s) => s.labels);
  const reviewers = union(own.reviewers, (s) => s.reviewers);
  const autoMerge =
    own.autoMerge === true || (settings.length > 0 && settings.every((s) => s?.autoMerge === true));
  return {
    ...(labels ? { labels } : {}),
    ...(reviewers ? { reviewers } : {}),
    ...(autoMerge ? { autoMerge } : {}),
  };
}

export interface UpdateRequestResult {
  update: UpdateJobResult;
  request: ProposalOutcome;
  /** Forge requests made by this delivery. */
  forgeRequests: number;
}

/**
 * `shipmate update` in pull-request mode: rebuild the bot branch from the
 * base with exactly the current updates (force-push with a lease, skipped
 * when already right), then open/update the request, or close it when the
 * base already has everything.
 */
export async function deliverUpdateAsPullRequest(opts: UpdateRequestOptions): Promise<UpdateRequestResult> {
  const base =
    opts.job.branch ??
    (opts.job.workspace
      ? await branchOf(opts.job.workspace)
      : await Workspace.with(opts.job.repo, { env: opts.job.env }, branchOf));
  const branch = opts.branch ?? `${BOT_PREFIX}update-${base}`;
  if (!branch.startsWith(BOT_PREFIX))
    throw new UsageError(`the pull-request branch must start with "${BOT_PREFIX}", got "${branch}"`);
  const before = opts.forge.requestCount;
  const known = await opts.forge.listOpenPullRequests(BOT_PREFIX);
  const update = await runUpdateJob({
    ...opts.job,
    branch: base,
    delivery: "push-branch",
    pushBranch: branch,
    dryRun: false,
  });
  const changes = imageChangesFromUpdate(update.files, opts.imageOf);
  // A run that failed (a registry error, an unreadable file) proves nothing is left to change: keep the request.
  if (changes.length === 0 && update.problems.some((p) => p.severity === "error"))
    return { update, request: { action: "none" }, forgeRequests: opts.forge.requestCount - before };
  const settingsOf = opts.settingsOf;
  const policies = [...new Set(update.files.flatMap((f) => f.changes.map((c) => c.policy)))];
  const request = await propose({
    forge: opts.forge,
    branch,
    base,
    title: opts.title ?? defaultTitle(changes, base),
    changes,
    known,
    ...requestOptions(opts, settingsOf ? policies.map(settingsOf) : []),
    ...(opts.mergeMethod ? { mergeMethod: opts.mergeMethod } : {}),
  });
  return { update, request, forgeRequests: opts.forge.requestCount - before };
}

/**
 * A push branch that is not the checkout branch (Flux's `git.push.branch`),
 * already pushed, proposed for merging into `base` when shipmate.yaml asks
 * for pull-request delivery: the request is opened, or the open one for the
 * branch updated (its table shows this run's changes). The branch keeps its
 * own name (no `shipmate/` prefix): it is the automation's, not a bot branch.
 */
export async function requestForPushBranch(opts: {
  forge: Forge;
  branch: string;
  base: string;
  files: readonly FileUpdate[];
  settings: readonly (PullRequestSettings | undefined)[];
}): Promise<EnsureResult> {
  const changes = imageChangesFromUpdate(opts.files);
  const { autoMerge, ...rest } = requestOptions({}, opts.settings);
  return opts.forge.ensurePullRequest({
    branch: opts.branch,
    base: opts.base,
    title: defaultTitle(changes, opts.base),
    meta: makeMeta(changes),
    ...rest,
    ...(autoMerge ? { autoMerge } : {}),
  });
}

function defaultTitle(changes: readonly ImageChange[], base: string): string {
  const [only] = changes;
  if (changes.length === 1 && only) return `Update ${only.image} to ${only.to}`;
  return `Update ${changes.length} images on ${base}`;
}

async function branchOf(ws: Workspace): Promise<string> {
  if (ws.temporary)
    throw new UsageError("pull-request mode on a clone URL needs --branch (the base branch of the request)");
  const b = await ws.currentBranch();
  if (!b) throw new UsageError("the checkout is on a detached HEAD: pass --branch (the base of the request)");
  return b;
}
