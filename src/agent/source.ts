/**
 * The fleet repository as the agent sees it: a shallow fetch of one branch
 * into a working copy it owns, checked out at the fetched commit. Revisions
 * are recorded in Flux's form, `<branch>@sha1:<commit>`.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { simpleGit } from "simple-git";
import { GitError, redact } from "../errors.ts";

export interface SourceOptions {
  url: string;
  branch: string;
  /** Directory the agent owns; the working copy lives in `<workdir>/source`. */
  workdir: string;
  timeoutMs?: number;
}

export interface Artifact {
  /** `<branch>@sha1:<commit>` */
  revision: string;
  commit: string;
  /** Root of the checked-out tree. */
  dir: string;
}

export function formatRevision(branch: string, commit: string): string {
  return `${branch}@sha1:${commit}`;
}

export class GitSource {
  readonly url: string;
  readonly branch: string;
  readonly dir: string;
  private readonly timeoutMs: number;
  private current: Artifact | undefined;

  constructor(opts: SourceOptions) {
    this.url = opts.url;
    this.branch = opts.branch;
    this.dir = join(opts.workdir, "source");
    this.timeoutMs = opts.timeoutMs ?? 60_000;
  }

  /** The last artifact fetched successfully, if any. */
  get artifact(): Artifact | undefined {
    return this.current;
  }

  private git() {
    return simpleGit({ baseDir: this.dir, timeout: { block: this.timeoutMs } }).env({
      ...process.env,
      // Never wait for a password prompt: credentials come in the URL or not at all.
      GIT_TERMINAL_PROMPT: "0",
    });
  }

  /** Fetches the branch tip (depth 1) and checks it out; a failure leaves the previous checkout untouched. */
  async fetch(): Promise<Artifact> {
    if (!existsSync(join(this.dir, ".git"))) {
      mkdirSync(this.dir, { recursive: true });
      await this.git().init();
    }
    const git = this.git();
    const ref = `refs/remotes/origin/${this.branch}`;
    try {
      await git.raw([
        "fetch",
        "--depth=1",
        "--no-tags",
        "--force",
        this.url,
        `+refs/heads/${this.branch}:${ref}`,
      ]);
    } catch (err) {
      throw new GitError(`git fetch ${redact(this.url)} (branch ${this.branch}): ${firstLine(err)}`);
    }
    const commit = (await git.revparse([ref])).trim();
    await this.checkout(commit);
    this.current = { revision: formatRevision(this.branch, commit), commit, dir: this.dir };
    return this.current;
  }

  private async checkout(commit: string): Promise<void> {
    const git = this.git();
    await git.raw(["checkout", "--quiet", "--force", "--detach", commit]);
    await this.clean();
  }

  /** Drops files written into the working copy (generated kustomization files) so each render starts pristine. */
  async clean(): Promise<void> {
    await this.git().raw(["clean", "-ffdxq"]);
  }
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("hint:"));
  return redact(lines.find((l) => l.startsWith("fatal:")) ?? lines[0] ?? "failed");
}
