/**
 * Proposing a change set on a forge: the request for a bot branch (already
 * pushed by the caller) is opened or updated, or — when nothing is left to
 * change — closed with its branch deleted; and the request options a change
 * set gets from the environments it touches. A run with nothing to change
 * costs one forge request (the listing). Update delivery (running the update
 * job onto the bot branch first) is src/run/deliver.ts.
 */

import type { PullRequestSettings } from "../config/fleet.ts";
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
