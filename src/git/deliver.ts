/**
 * Getting updates into git. The update is a function of the tree, not a
 * patch: after a rejected push shipmate fetches the new head, resets to it
 * and runs the update again there (never a rebase of a stale edit), so
 * concurrent bots on one branch all land and none overwrites another.
 */
import { GitError, UsageError } from "../errors.ts";
import type { FileUpdate } from "../update/types.ts";
import type { Identity, Workspace } from "./workspace.ts";

export type DeliveryMode =
  /** Edit files only. */
  | { kind: "files" }
  /** Commit on the checked-out branch, no push. */
  | { kind: "commit" }
  /** Commit on top of origin's `branch` and push it there. */
  | { kind: "push"; branch: string }
  /** Rebuild `branch` from origin's `base` with exactly the current updates; force-push it with a lease. */
  | { kind: "push-branch"; branch: string; base: string };

export interface DeliverOptions {
  mode: DeliveryMode;
  /** Runs the update against the work tree as it is now and writes the files; returns what changed. */
  apply: () => Promise<FileUpdate[]>;
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

export async function deliver(ws: Workspace, opts: DeliverOptions): Promise<Delivery> {
  const { mode } = opts;
  const who = { author: opts.author, committer: opts.committer, sign: opts.sign };
  if (mode.kind === "files") return { files: await opts.apply(), commit: null, pushed: false, attempts: 1 };
  if (mode.kind === "commit") {
    const files = await opts.apply();
    if (files.length === 0) return { files, commit: null, pushed: false, attempts: 1 };
    const sha = await ws.commit(
      opts.message(files),
      files.map((f) => f.path),
      who,
    );
    return { files, commit: sha, pushed: false, attempts: 1 };
  }

  if (!ws.temporary) {
    const dirty = await ws.dirty();
    if (dirty.length > 0)
      throw new UsageError(
        `the checkout has uncommitted changes (${dirty.length} files); commit or stash them before --push`,
      );
  }
  const max = opts.maxAttempts ?? 10;
  const base = opts.backoffMs ?? 150;
  const original = ws.temporary ? undefined : await ws.currentBranch();
  try {
    for (let attempt = 1; ; attempt++) {
      const outcome =
        mode.kind === "push"
          ? await pushOnce(ws, opts, mode.branch, attempt, who)
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
    // A local checkout goes back to the branch it was on (push-branch checks out its own branch).
    if (original && mode.kind === "push-branch" && (await ws.currentBranch()) !== original)
      await ws.resetTo(original, original).catch(() => undefined);
  }
}

type Once = { done: true; delivery: Omit<Delivery, "attempts"> } | { done: false; reason: string };

async function pushOnce(
  ws: Workspace,
  opts: DeliverOptions,
  branch: string,
  attempt: number,
  who: { author: Identity; committer: Identity; sign: boolean },
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
  if (tip) await ws.resetTo(tip);
  const files = await opts.apply();
  if (files.length === 0) return { done: true, delivery: { files, commit: null, pushed: false } };
  const sha = await ws.commit(
    opts.message(files),
    files.map((f) => f.path),
    who,
  );
  // Creating the branch uses an empty lease so a concurrent creator is detected, not overwritten.
  const pushed = await ws.push(sha, branch, tip === undefined ? null : undefined);
  if (pushed.ok) return { done: true, delivery: { files, commit: sha, pushed: true } };
  return { done: false, reason: pushed.message };
}

async function pushBranchOnce(
  ws: Workspace,
  opts: DeliverOptions,
  mode: { branch: string; base: string },
  who: { author: Identity; committer: Identity; sign: boolean },
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
  await ws.resetTo(baseTip, mode.branch);
  const files = await opts.apply();
  if (files.length === 0) return { done: true, delivery: { files, commit: null, pushed: false } };
  const message = `${opts.message(files).trimEnd()}\n\n${OWNER_TRAILER}: ${mode.branch}\n`;
  const sha = await ws.commit(
    message,
    files.map((f) => f.path),
    who,
  );
  // Same content on the same base: the branch is already right, and pushing again would only flap.
  if (remote && (await ws.tree(remote)) === (await ws.tree(sha)) && (await ws.parent(remote)) === baseTip)
    return { done: true, delivery: { files, commit: remote, pushed: false } };
  const pushed = await ws.push(sha, mode.branch, remote ?? null);
  if (pushed.ok) return { done: true, delivery: { files, commit: sha, pushed: true } };
  return { done: false, reason: pushed.message };
}
