/**
 * Update delivery by pull request: the update job rebuilds the bot branch
 * from the base with exactly this run's changes (git's `push-branch`), then
 * the request is proposed (src/forge/propose.ts: opened, updated, or closed
 * when the base already has everything). Also the request for a Flux push
 * branch that shipmate.yaml wants reviewed, and the table rows a request
 * shows for an update's file changes.
 */
import type { FileUpdate } from "../changes.ts";
import type { PullRequestSettings } from "../config/fleet.ts";
import { UsageError } from "../errors.ts";
import { makeMeta } from "../forge/body.ts";
import { BOT_PREFIX, type ProposalOutcome, propose, requestOptions } from "../forge/propose.ts";
import type { EnsureResult, Forge, ImageChange, MergeMethod } from "../forge/types.ts";
import { Workspace } from "../git/workspace.ts";
import { refParts } from "../manifest/ref.ts";
import { runUpdateJob, type UpdateJob, type UpdateJobResult } from "../update/job.ts";

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
