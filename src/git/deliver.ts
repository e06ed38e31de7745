/**
 * Getting updates into git. The update is a function of the tree, not a
 * patch: after a rejected push shipmate fetches the new head, resets to it
 * and runs the update again there (never a rebase of a stale edit), so
 * concurrent bots on one branch all land and none overwrites another.
 */

import type { FileUpdate } from "../changes.ts";
import { GitError, UsageError } from "../errors.ts";
import type { Identity, Workspace } from "./workspace.ts";

/** A further destination of a push: `refs/for/main` (Gerrit), `refs/heads/other`…; `only`: not the branch itself. */
export interface PushRefspec {
  dst: string;
  only: boolean;
}

export type DeliveryMode =
  /** Edit files only. */
  | { kind: "files" }
  /** Commit on the checked-out branch, no push. */
  | { kind: "commit" }
  /**
   * Commit on top of origin's `branch` and push it there; with `refspec`, the
   * commit also goes to that ref (Flux's `git.push.refspec`), or only there.
   */
  | { kind: "push"; branch: string; refspec?: PushRefspec }
  /** Rebuild `branch` from origin's `base` with exactly the current updates; force-push it with a lease. */
  | { kind: "push-branch"; branch: string; base: string };

export interface DeliverOptions {
  mode: DeliveryMode;
  /**
   * Runs the update against the tree in `dir` as it is now. With `write` it
   * writes the files and returns what changed; without, it writes nothing and
   * returns each changed file with its new `content` (commits are made from
   * those with plumbing, never through the user's working files).
   */
  apply: (how: { dir: string; write: boolean }) => Promise<FileUpdate[]>;
  message: (files: readonly FileUpdate[]) => string;
  author: Identity;
  committer: Identity;
  sign: boolean;
  /** Attempts before giving up when the remote keeps moving (default 10). */
  maxAttempts?: number;
  /** First backoff in ms, doubled each retry, with jitter (default 150). */
  backoffMs?: number;
  onRetry?: (attempt: number, reason: string) => void;
}

export interface Delivery {
  files: FileUpdate[];
  commit: string | null;
  pushed: boolean;
  attempts: number;
}

/** The trailer that marks a branch as shipmate's to rebuild and force-push. */
export const OWNER_TRAILER = "Shipmate-Branch";

export function ownsBranch(message: string, branch: string): boolean {
  return message.split("\n").some((l) => l.trim() === `${OWNER_TRAILER}: ${branch}`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function backoff(attempt: number, base: number): number {
  const cap = base * 2 ** Math.min(attempt - 1, 6);
  return cap / 2 + Math.random() * (cap / 2);
}

type Who = { author: Identity; committer: Identity; sign: boolean };

/** The files of an update without their content (what a delivery reports). */
function reported(files: readonly FileUpdate[]): FileUpdate[] {
  return files.map((f) => ({ path: f.path, changes: f.changes }));
}

function withContent(files: readonly FileUpdate[]): { path: string; content: string }[] {
  return files.map((f) => {
    if (f.content === undefined) throw new Error(`internal: no content for ${f.path}`);
    return { path: f.path, content: f.content };
  });
}

/**
 * Every mode but `files` prepares its commit with plumbing (a private
 * index, blobs, commit-tree) and then moves one ref; the user's working
 * files change only after the commit exists, through Workspace.advance, which
 * a later run finishes if this one is killed. So a kill at any instant leaves
 * the checkout as it was or the update committed, and the next run goes on.
 */
export async function deliver(ws: Workspace, opts: DeliverOptions): Promise<Delivery> {
  const { mode } = opts;
  const who: Who = { author: opts.author, committer: opts.committer, sign: opts.sign };
  if (mode.kind === "files")
    return {
      files: await opts.apply({ dir: ws.dir, write: true }),
      commit: null,
      pushed: false,
      attempts: 1,
    };
  // A clone of shipmate's own dies with its run: only a user's checkout needs the run marker.
  if (!ws.temporary)
    await ws.beginRun(mode.kind === "commit" ? undefined : mode.kind === "push" ? mode.branch : mode.base);
  try {
    if (mode.kind === "commit") return await commitHere(ws, opts, who);
    if (!ws.temporary) {
      const dirty = await ws.dirty();
      if (dirty.length > 0 && mode.kind === "push")
        throw new UsageError(
          `the checkout has uncommitted changes (${dirty.length} files); commit or stash them before --push`,
        );
    }
    const max = opts.maxAttempts ?? 10;
    const base = opts.backoffMs ?? 150;
    for (let attempt = 1; ; attempt++) {
      const outcome =
        mode.kind === "push"
          ? await pushOnce(ws, opts, mode.branch, attempt, who, mode.refspec)
          : await pushBranchOnce(ws, opts, mode, who);
      if (outcome.done) return { ...outcome.delivery, attempts: attempt };
      if (attempt >= max)
        throw new GitError(
          `push to ${mode.branch}: the remote kept moving; gave up after ${attempt} attempts (${outcome.reason})`,
        );
      opts.onRetry?.(attempt, outcome.reason);
      await sleep(backoff(attempt, base));
    }
  } finally {
    ws.endRun();
  }
}

type Once = { done: true; delivery: Omit<Delivery, "attempts"> } | { done: false; reason: string };

/** `--commit`: only shipmate's own edits are committed; a file it changes that holds someone else's edits is refused. */
async function commitHere(ws: Workspace, opts: DeliverOptions, who: Who): Promise<Delivery> {
  const files = await opts.apply({ dir: ws.dir, write: false });
  if (files.length === 0) return { files, commit: null, pushed: false, attempts: 1 };
  const dirty = new Set(await ws.dirtyPaths());
  const theirs = files.find((f) => dirty.has(f.path));
  if (theirs)
    throw new UsageError(
      `${theirs.path} has uncommitted changes that are not shipmate's; commit or stash them before --commit`,
    );
  const head = await ws.head();
  const sha = await ws.commitFiles(head, withContent(files), opts.message(files), who);
  await ws.advance(await ws.headRef(), head, sha);
  return { files: reported(files), commit: sha, pushed: false, attempts: 1 };
}

async function pushOnce(
  ws: Workspace,
  opts: DeliverOptions,
  branch: string,
  attempt: number,
  who: Who,
  refspec?: PushRefspec,
): Promise<Once> {
  const tip = await ws.fetch(branch);
  if (!ws.temporary && attempt === 1) {
    const current = await ws.currentBranch();
    if (current !== branch)
      throw new UsageError(
        `the checkout is on ${current ?? "a detached HEAD"}, not ${branch}; check out ${branch} or pass --branch ${current ?? "…"}`,
      );
    const head = await ws.head();
    if (tip && head && head !== tip && !(await ws.isAncestor(head, tip)))
      throw new GitError(
        `${branch} has local commits that are not on origin; push or drop them before --push`,
      );
  }
  // Start from the remote's head every time: the update is recomputed on it, never replayed.
  const ref = await ws.headRef();
  let head = await ws.head();
  if (tip && head !== tip) {
    await ws.advance(ref, head, tip);
    head = tip;
  }
  const files = await opts.apply({ dir: ws.dir, write: false });
  if (files.length === 0) return { done: true, delivery: { files, commit: null, pushed: false } };
  const sha = await ws.commitFiles(head, withContent(files), opts.message(files), who);
  // Creating the branch uses an empty lease so a concurrent creator is detected, not overwritten.
  const pushed = refspec?.only
    ? await ws.push(sha, undefined, undefined, [refspec.dst])
    : await ws.push(sha, branch, tip === undefined ? null : undefined, refspec ? [refspec.dst] : []);
  if (!pushed.ok) return { done: false, reason: pushed.message };
  // The checkout follows only once the remote has the commit: it never holds one the remote refused.
  // (A clone of shipmate's own is removed next; nobody reads its files again.)
  if (!ws.temporary) await ws.advance(ref, head, sha);
  return { done: true, delivery: { files: reported(files), commit: sha, pushed: true } };
}

async function pushBranchOnce(
  ws: Workspace,
  opts: DeliverOptions,
  mode: { branch: string; base: string },
  who: Who,
): Promise<Once> {
  const baseTip = await ws.fetch(mode.base);
  if (!baseTip) throw new GitError(`base branch ${mode.base} does not exist on the remote`);
  const remote = mode.branch === mode.base ? baseTip : await ws.fetch(mode.branch);
  if (mode.branch === mode.base)
    throw new UsageError(`--push-branch ${mode.branch} is the base branch itself; use --push`);
  if (remote && !ownsBranch(await ws.message(remote), mode.branch))
    throw new GitError(
      `branch ${mode.branch} exists and its tip was not made by shipmate (no "${OWNER_TRAILER}: ${mode.branch}" trailer); refusing to force-push it`,
    );
  // The update is computed on the base's tip: in place when the working files are exactly that
  // (a clone of shipmate's own, or a clean checkout there), else in a worktree of its own beside them.
  const head = await ws.head();
  let dir = ws.dir;
  let worktree: string | undefined;
  if (ws.temporary) await ws.advance(await ws.headRef(), head, baseTip);
  else if (head !== baseTip || (await ws.dirtyPaths()).length > 0)
    dir = worktree = await ws.addWorktree(baseTip);
  try {
    const files = await opts.apply({ dir, write: false });
    if (files.length === 0) return { done: true, delivery: { files, commit: null, pushed: false } };
    const message = `${opts.message(files).trimEnd()}\n\n${OWNER_TRAILER}: ${mode.branch}\n`;
    const sha = await ws.commitFiles(baseTip, withContent(files), message, who);
    // Same content on the same base: the branch is already right, and pushing again would only flap.
    if (remote && (await ws.tree(remote)) === (await ws.tree(sha)) && (await ws.parent(remote)) === baseTip)
      return { done: true, delivery: { files: reported(files), commit: remote, pushed: false } };
    const pushed = await ws.push(sha, mode.branch, remote ?? null);
    if (pushed.ok) return { done: true, delivery: { files: reported(files), commit: sha, pushed: true } };
    return { done: false, reason: pushed.message };
  } finally {
    if (worktree) await ws.removeWorktree(worktree);
  }
}
