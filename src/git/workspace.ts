/**
 * A git working tree shipmate edits: a local checkout, or a shallow clone of
 * a URL in a temporary directory. Thin, typed wrappers over simple-git; every
 * failure becomes a one-line GitError with credentials redacted.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SimpleGit, simpleGit } from "simple-git";
import { GitError, redact, UsageError } from "../errors.ts";
import { type AskPass, askPass, type GitCredentials, stripUserinfo } from "./auth.ts";

export interface Identity {
  name: string;
  email: string;
}

export interface WorkspaceOptions {
  /** Environment the git processes inherit (the CLI's, normally). */
  env?: NodeJS.ProcessEnv;
  credentials?: GitCredentials;
}

export type PushOutcome =
  | { ok: true }
  /** The remote moved under us (non-fast-forward, stale lease, or a concurrent ref update). */
  | { ok: false; race: true; message: string };

/** Environment variables that would make git open an editor or pager; shipmate never wants either. */
const DROPPED_ENV = new Set(["EDITOR", "VISUAL", "PAGER", "GIT_EDITOR", "GIT_PAGER", "GIT_SEQUENCE_EDITOR"]);

export function parseIdentity(text: string, what: string): Identity {
  const m = /^\s*([^<>]*?)\s*<([^<>\s]+)>\s*$/.exec(text);
  if (!m?.[1] || !m[2]) throw new UsageError(`${what} must look like "Name <email>", got "${text}"`);
  return { name: m[1], email: m[2] };
}

/** Branch names are checked before they reach git's argv, so none can pass for an option. */
export function checkBranchName(name: string, what = "branch"): string {
  if (
    !name ||
    name.startsWith("-") ||
    name.startsWith("/") ||
    name.endsWith("/") ||
    name.endsWith(".lock") ||
    name.includes("..") ||
    name.includes("@{") ||
    /[\s~^:?*[\\]/.test(name) ||
    [...name].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)
  )
    throw new UsageError(`invalid ${what} name "${name}"`);
  return name;
}

function isUrl(repo: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^/\s]+:/.test(repo);
}

export class Workspace {
  readonly dir: string;
  /** True for a clone shipmate made (removed by dispose). */
  readonly temporary: boolean;
  private readonly git: SimpleGit;
  private readonly askpass: AskPass | undefined;

  private constructor(dir: string, temporary: boolean, opts: WorkspaceOptions) {
    this.dir = dir;
    this.temporary = temporary;
    this.askpass = opts.credentials ? askPass(opts.credentials) : undefined;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.env ?? process.env))
      if (v !== undefined && !DROPPED_ENV.has(k)) env[k] = v;
    env.GIT_TERMINAL_PROMPT = "0";
    Object.assign(env, this.askpass?.env);
    this.git = simpleGit({
      baseDir: dir,
      config: this.askpass?.config ?? [],
      // The environment is the user's own and the askpass script is ours; argv is built here from checked values.
      unsafe: {
        allowUnsafeAskPass: true,
        allowUnsafeCredentialHelper: true,
        allowUnsafeSshCommand: true,
        allowUnsafeConfigPaths: true,
        allowUnsafeConfigEnvCount: true,
      },
    }).env(env);
  }

  static isUrl = isUrl;

  /** Opens the checkout that contains `dir`. */
  static async open(dir: string, opts: WorkspaceOptions = {}): Promise<Workspace> {
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      throw new UsageError(`${dir}: no such directory`);
    }
    if (!isDir) throw new UsageError(`${dir}: not a directory`);
    const probe = new Workspace(dir, false, opts);
    let top: string;
    try {
      top = (await probe.git.raw(["rev-parse", "--show-toplevel"])).trim();
    } catch (err) {
      probe.dispose();
      const why = firstLine(err);
      throw new UsageError(
        /not a git repository/i.test(why) ? `${dir} is not inside a git checkout` : `${dir}: ${why}`,
      );
    }
    probe.dispose();
    return new Workspace(top, false, opts);
  }

  /** Clones `url` (shallow, one branch) into a new temporary directory. */
  static async clone(
    url: string,
    branch: string | undefined,
    opts: WorkspaceOptions = {},
  ): Promise<Workspace> {
    const { url: clean, credentials } = stripUserinfo(url);
    const dir = mkdtempSync(join(tmpdir(), "shipmate-clone-"));
    const ws = new Workspace(dir, true, { ...opts, credentials: opts.credentials ?? credentials });
    const args = ["clone", "--quiet", "--depth=1", "--no-tags", "--single-branch"];
    if (branch) args.push("--branch", checkBranchName(branch));
    args.push("--", clean, dir);
    try {
      await ws.git.raw(args);
    } catch (err) {
      ws.dispose();
      throw new GitError(`clone ${redact(clean)}: ${firstLine(err)}`);
    }
    return ws;
  }

  dispose(): void {
    this.askpass?.dispose();
    if (this.temporary) rmSync(this.dir, { recursive: true, force: true });
  }

  private async run(args: string[], what: string): Promise<string> {
    try {
      return await this.git.raw(args);
    } catch (err) {
      throw new GitError(`${what}: ${firstLine(err)}`);
    }
  }

  async head(): Promise<string | undefined> {
    try {
      return (await this.git.raw(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  async currentBranch(): Promise<string | undefined> {
    const b = (await this.run(["rev-parse", "--abbrev-ref", "HEAD"], "read current branch")).trim();
    return b === "HEAD" ? undefined : b;
  }

  /** Uncommitted changes to tracked files, or untracked files, under the tree. */
  async dirty(): Promise<string[]> {
    const out = await this.run(["status", "--porcelain", "--untracked-files=no"], "git status");
    return out.split("\n").filter((l) => l.trim() !== "");
  }

  /** Fetches `branch` from origin (shallow on a shallow clone); the remote tip, or undefined if it does not exist. */
  async fetch(branch: string): Promise<string | undefined> {
    checkBranchName(branch);
    const remote = await this.remoteTip(branch);
    if (remote === undefined) return undefined;
    const args = ["fetch", "--quiet", "--no-tags"];
    if (await this.isShallow()) args.push("--depth=1");
    args.push("origin", `+refs/heads/${branch}:refs/remotes/origin/${branch}`);
    await this.run(args, `fetch ${branch}`);
    return (await this.run(["rev-parse", `refs/remotes/origin/${branch}`], "read fetched head")).trim();
  }

  /** The remote's tip of `branch` without fetching (ls-remote), undefined if the branch does not exist. */
  async remoteTip(branch: string): Promise<string | undefined> {
    const out = await this.run(
      ["ls-remote", "--heads", "origin", `refs/heads/${checkBranchName(branch)}`],
      "ls-remote",
    );
    const line = out.split("\n").find((l) => l.endsWith(`\trefs/heads/${branch}`));
    return line?.split("\t")[0];
  }

  async isShallow(): Promise<boolean> {
    return (await this.run(["rev-parse", "--is-shallow-repository"], "rev-parse")).trim() === "true";
  }

  /** Points the current branch (or `branch`, created if needed) at `commit` and makes the tree match it. */
  async resetTo(commit: string, branch?: string): Promise<void> {
    if (branch)
      await this.run(["checkout", "--quiet", "--force", "-B", checkBranchName(branch), commit], "checkout");
    else await this.run(["reset", "--quiet", "--hard", commit], "reset");
  }

  async isAncestor(ancestor: string, of: string): Promise<boolean> {
    try {
      await this.git.raw(["merge-base", "--is-ancestor", ancestor, of]);
      return true;
    } catch {
      return false;
    }
  }

  /** Commits exactly `paths` (other staged changes stay out); returns the new commit. */
  async commit(
    message: string,
    paths: readonly string[],
    who: { author: Identity; committer: Identity; sign: boolean },
  ): Promise<string> {
    // Message and paths go through private files: argv is visible to other users and bounded in size
    // (a fleet-wide update touches thousands of files), and simple-git has no stdin.
    const tmp = mkdtempSync(join(tmpdir(), "shipmate-msg-"));
    const file = join(tmp, "message");
    const list = join(tmp, "paths");
    writeFileSync(file, message, { mode: 0o600 });
    writeFileSync(list, `${paths.join("\0")}\0`, { mode: 0o600 });
    // Literal pathspecs: a file named `a*.yaml` must not stage its neighbours.
    const pathspec = ["--pathspec-from-file", list, "--pathspec-file-nul"];
    const args = [
      "--literal-pathspecs",
      "-c",
      `user.name=${who.committer.name}`,
      "-c",
      `user.email=${who.committer.email}`,
    ];
    args.push("commit", "--quiet", "--no-verify", "--cleanup=verbatim", "-F", file);
    args.push(`--author=${who.author.name} <${who.author.email}>`);
    if (who.sign) args.push("-S");
    try {
      await this.run(["--literal-pathspecs", "add", ...pathspec], "git add");
      await this.run([...args, ...pathspec], "commit");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return (await this.run(["rev-parse", "HEAD"], "rev-parse")).trim();
  }

  async message(commit: string): Promise<string> {
    return this.run(["log", "-1", "--format=%B", commit], "read commit message");
  }

  /** First parent, read from the commit object itself so it works on shallow clones too. */
  async parent(commit: string): Promise<string | undefined> {
    const out = await this.run(["cat-file", "commit", commit], "cat-file");
    return /^parent ([0-9a-f]+)$/m.exec(out)?.[1];
  }

  /** A git configuration value as the checkout sees it (repo, global, system). */
  async config(key: string): Promise<string | undefined> {
    try {
      return (await this.git.raw(["config", "--get", key])).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  async tree(commit: string): Promise<string> {
    return (await this.run(["rev-parse", `${commit}^{tree}`], "rev-parse")).trim();
  }

  /**
   * Pushes `commit` to `branch`. With `lease`, the push only succeeds if the
   * remote branch is still at that commit (`null`: still absent).
   */
  async push(commit: string, branch: string, lease?: string | null): Promise<PushOutcome> {
    const args = ["push", "--porcelain", "--no-verify"];
    if (lease !== undefined) args.push(`--force-with-lease=refs/heads/${branch}:${lease ?? ""}`);
    args.push("origin", `${commit}:refs/heads/${checkBranchName(branch)}`);
    try {
      await this.git.raw(args);
      return { ok: true };
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      const rejected = text.split("\n").find((l) => l.startsWith("!\t")) ?? "";
      if (
        /\[rejected\] \((fetch first|non-fast-forward|stale info)\)/.test(rejected) ||
        /\[remote rejected\] \((cannot lock ref|failed to update ref|incorrect old value)/.test(rejected)
      )
        return { ok: false, race: true, message: redact(rejected.split("\t").slice(2).join(" ")) };
      throw new GitError(`push to ${branch}: ${firstLine(err)}`);
    }
  }
}

/** The most telling line of a git error (the `fatal:`/`error:` line when there is one). */
export function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const pick = lines.find((l) => /^(fatal|error|remote: error):\s*\S/.test(l)) ?? lines[0] ?? "failed";
  // A forge explains a refused push in plain `remote:` lines (e.g. Gitea's "Not allowed to push to
  // protected branch main"); git's own line then only says a hook declined.
  const said = lines.find((l) => /^remote:\s*\S/.test(l) && !/^remote:\s*(error|warning):/.test(l));
  return redact(said && pick !== said ? `${pick} (${said.replace(/^remote:\s*/, "")})` : pick);
}
