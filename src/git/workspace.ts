/**
 * A git working tree shipmate edits: a local checkout, or a shallow clone of
 * a URL in a temporary directory. Thin, typed wrappers over simple-git; every
 * failure becomes a one-line GitError with credentials redacted.
 */
import { execFile } from "node:child_process";
import {
  closeSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { type SimpleGit, simpleGit } from "simple-git";
import { GitError, redact, UsageError } from "../errors.ts";
import {
  type AskPass,
  askPass,
  credentialsFromEnv,
  DEFAULT_TOKEN_ENV,
  type GitCredentials,
  stripUserinfo,
} from "./auth.ts";
import { processAlive, releaseScratch, scratchDir, sweepScratch } from "./scratch.ts";

export interface Identity {
  name: string;
  email: string;
}

export interface WorkspaceOptions {
  /** Environment the git processes inherit (the CLI's, normally). */
  env?: NodeJS.ProcessEnv;
  credentials?: GitCredentials;
}

/** What `.git/shipmate-run.json` holds while a run uses the checkout. */
interface RunRecord {
  pid?: number;
  started?: number;
  /** The branch the run fetches and pushes. */
  branch?: string;
  /** Set while `ref` is being moved from `from` to `to` (see Workspace.advance). */
  ref?: string;
  from?: string;
  to?: string;
}

/** Where Workspace.cloneAt starts: a full reference name, the tag `pick` chooses (`what` names the choice), or a commit. */
export type CloneStart =
  | { ref: string }
  | { pick: (tags: readonly string[]) => string | undefined; what: string }
  | { commit: string; branch?: string };

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
  /** The environment every git process of this workspace gets (plumbing runs without simple-git). */
  private readonly env: Record<string, string>;
  /** This process's run marker, while it holds one (see beginRun). */
  private runFile: string | undefined;
  /**
   * Told of the working files git changes (`all` when it cannot tell which):
   * a run's FleetContext looks at those again instead of walking the tree anew.
   */
  onFilesChanged: ((paths: readonly string[] | "all") => void) | undefined;

  private constructor(dir: string, temporary: boolean, opts: WorkspaceOptions) {
    this.dir = dir;
    this.temporary = temporary;
    this.askpass = opts.credentials ? askPass(opts.credentials) : undefined;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.env ?? process.env))
      if (v !== undefined && !DROPPED_ENV.has(k)) env[k] = v;
    env.GIT_TERMINAL_PROMPT = "0";
    Object.assign(env, this.askpass?.env);
    this.env = env;
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

  /**
   * The one way a run gets its checkout: opens a local one, or clones a URL
   * (shallow, one branch), with the HTTPS token in `tokenEnv` (default
   * SHIPMATE_GIT_TOKEN) as the git credential; `clone` clones a local path
   * too. The caller disposes it.
   */
  static async acquire(
    repo: string,
    opts: {
      branch?: string;
      /** A clone that starts elsewhere than a branch's tip (a URL only); takes the place of `branch`. */
      start?: CloneStart;
      env: NodeJS.ProcessEnv;
      tokenEnv?: string;
      clone?: boolean;
    },
  ): Promise<Workspace> {
    const credentials = credentialsFromEnv(opts.env, opts.tokenEnv ?? DEFAULT_TOKEN_ENV);
    const wsOpts = { env: opts.env, ...(credentials ? { credentials } : {}) };
    if (opts.start) return Workspace.cloneAt(repo, opts.start, wsOpts);
    return opts.clone || isUrl(repo)
      ? Workspace.clone(repo, opts.branch, wsOpts)
      : Workspace.open(repo, wsOpts);
  }

  /** Runs `work` in the checkout of `repo`, disposing it afterwards. */
  static async with<T>(
    repo: string,
    opts: { branch?: string; env: NodeJS.ProcessEnv; tokenEnv?: string },
    work: (ws: Workspace) => Promise<T>,
  ): Promise<T> {
    const ws = await Workspace.acquire(repo, opts);
    try {
      return await work(ws);
    } finally {
      ws.dispose();
    }
  }

  /** Opens the checkout that contains `dir`. */
  static async open(dir: string, opts: WorkspaceOptions = {}): Promise<Workspace> {
    sweepScratch();
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
    sweepScratch();
    const dir = scratchDir("clone");
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

  /**
   * Clones `url` into a new temporary directory at a detached HEAD that is
   * not a branch's tip (Flux's checkout refs other than a branch): a tag or
   * full reference name (`refs/tags/v1`, `refs/pull/1/head`), shallow; the
   * tag `pick` chooses among the remote's tags (a semver range), shallow; or
   * a pinned commit, which must be in `branch` (else in some branch), with
   * that history. `origin` is the URL, as after a clone.
   */
  static async cloneAt(url: string, start: CloneStart, opts: WorkspaceOptions = {}): Promise<Workspace> {
    const { url: clean, credentials } = stripUserinfo(url);
    sweepScratch();
    const dir = scratchDir("clone");
    const ws = new Workspace(dir, true, { ...opts, credentials: opts.credentials ?? credentials });
    const where = redact(clean);
    try {
      await ws.run(["init", "--quiet"], "git init");
      await ws.run(["remote", "add", "origin", "--", clean], "git remote add");
      let commit: string;
      if ("commit" in start) {
        if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(start.commit))
          throw new GitError(`commit "${start.commit}" is not a full commit SHA`);
        const branch = start.branch ? checkBranchName(start.branch) : undefined;
        const spec = branch
          ? `+refs/heads/${branch}:refs/remotes/origin/${branch}`
          : "+refs/heads/*:refs/remotes/origin/*";
        await ws.run(
          ["fetch", "--quiet", "--no-tags", "origin", spec],
          `fetch ${branch ? `branch ${branch}` : "all branches"}`,
        );
        const holders = (
          await ws
            .run(
              ["for-each-ref", "--contains", start.commit, "--format=%(refname)", "refs/remotes/origin/"],
              "for-each-ref",
            )
            .catch(() => "")
        ).trim();
        if (!holders)
          throw new GitError(
            `commit ${start.commit} not found in ${branch ? `branch ${branch}` : "any branch"} of ${where}`,
          );
        commit = start.commit;
      } else {
        let ref: string;
        if ("pick" in start) {
          const listing = await ws.run(["ls-remote", "--tags", "--refs", "origin"], "ls-remote --tags");
          const tags = listing
            .split("\n")
            .map((l) => l.split("\t")[1]?.replace(/^refs\/tags\//, ""))
            .filter((t): t is string => Boolean(t));
          const tag = start.pick(tags);
          if (!tag) throw new GitError(`no tag of ${where} matches ${start.what}`);
          ref = `refs/tags/${tag}`;
        } else ref = start.ref;
        if (!/^refs\/[^\s:^~?*[\\]+$/.test(ref) || ref.includes(".."))
          throw new GitError(`"${ref}" is not a full reference name`);
        await ws.run(["fetch", "--quiet", "--no-tags", "--depth=1", "origin", ref], `fetch ${ref}`);
        commit = (await ws.run(["rev-parse", "FETCH_HEAD^{commit}"], "read fetched commit")).trim();
      }
      await ws.run(["checkout", "--quiet", "--detach", commit], "checkout");
    } catch (err) {
      ws.dispose();
      throw err instanceof GitError ? new GitError(`clone ${where}: ${err.message}`) : err;
    }
    return ws;
  }

  dispose(): void {
    this.askpass?.dispose();
    if (this.runFile) rmSync(this.runFile, { force: true });
    this.runFile = undefined;
    if (this.temporary) releaseScratch(this.dir);
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

  /** Tracked paths whose index or working-tree content differs from HEAD (both sides of a rename). */
  async dirtyPaths(): Promise<string[]> {
    const out = await this.plumb(["status", "--porcelain", "-z", "--untracked-files=no"], "git status");
    const parts = out.split("\0");
    const paths: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const entry = parts[i] as string;
      if (entry.length < 4) continue;
      paths.push(entry.slice(3));
      // A rename or copy names its source in the next field.
      if (entry[0] === "R" || entry[0] === "C") paths.push(parts[++i] ?? "");
    }
    return paths;
  }

  /** The ref HEAD points at (`refs/heads/…`), or HEAD itself when detached. */
  async headRef(): Promise<string> {
    try {
      return (await this.plumb(["symbolic-ref", "-q", "HEAD"], "symbolic-ref")).trim() || "HEAD";
    } catch {
      return "HEAD";
    }
  }

  /** Runs git without simple-git: plumbing that reads stdin or needs its own environment. */
  private plumb(
    args: string[],
    what: string,
    opts: { input?: string | Buffer; env?: Record<string, string>; cwd?: string } = {},
  ): Promise<string> {
    return new Promise((resolveOut, reject) => {
      const child = execFile(
        "git",
        args,
        {
          cwd: opts.cwd ?? this.dir,
          env: { ...this.env, ...opts.env },
          encoding: "utf8",
          maxBuffer: 1 << 30,
        },
        (err, stdout, stderr) =>
          err ? reject(new GitError(`${what}: ${firstLine(stderr || err)}`)) : resolveOut(stdout),
      );
      // git may exit before reading all of stdin (it failed); its error is the one to report.
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(opts.input ?? "");
    });
  }

  /** An absolute path inside this worktree's git directory. */
  async gitPath(name: string): Promise<string> {
    return resolve(this.dir, (await this.plumb(["rev-parse", "--git-path", name], "rev-parse")).trim());
  }

  /** Writes `contents` as blobs in one fast-import (small sets stay loose objects); their ids in order. */
  private async writeBlobs(contents: readonly string[], scratch: string): Promise<string[]> {
    if (contents.length === 0) return [];
    const marks = join(scratch, "marks");
    const chunks: Buffer[] = [];
    contents.forEach((text, i) => {
      const data = Buffer.from(text, "utf8");
      chunks.push(Buffer.from(`blob\nmark :${i + 1}\ndata ${data.length}\n`), data, Buffer.from("\n"));
    });
    chunks.push(Buffer.from("done\n"));
    await this.plumb(["fast-import", "--quiet", "--done", `--export-marks=${marks}`], "write blobs", {
      input: Buffer.concat(chunks),
    });
    const ids = new Map<number, string>();
    for (const line of readFileSync(marks, "utf8").split("\n")) {
      const m = /^:(\d+) ([0-9a-f]+)$/.exec(line);
      if (m) ids.set(Number(m[1]), m[2] as string);
    }
    return contents.map((_, i) => {
      const id = ids.get(i + 1);
      if (!id) throw new GitError("write blobs: fast-import did not report every blob");
      return id;
    });
  }

  /**
   * Makes a commit of `base`'s tree with `files` replaced, using plumbing on
   * a private index: the user's index and working files are not read or
   * touched, and only the changed files are hashed.
   */
  async commitFiles(
    base: string | undefined,
    files: readonly { path: string; content: string }[],
    message: string,
    who: { author: Identity; committer: Identity; sign: boolean },
  ): Promise<string> {
    const scratch = scratchDir("msg");
    try {
      const env = { GIT_INDEX_FILE: join(scratch, "index") };
      if (base) await this.plumb(["read-tree", base], "read-tree", { env });
      const wanted = new Set(files.map((f) => f.path));
      const modes = new Map<string, string>();
      if (base)
        for (const entry of (await this.plumb(["ls-files", "-s", "-z"], "ls-files", { env })).split("\0")) {
          const tab = entry.indexOf("\t");
          const path = entry.slice(tab + 1);
          if (tab > 0 && wanted.has(path)) modes.set(path, entry.slice(0, entry.indexOf(" ")));
        }
      // A file git does not track is someone's uncommitted work (or ignored on purpose): not shipmate's to commit.
      const untracked = files.find((f) => !modes.has(f.path));
      if (untracked)
        throw new UsageError(
          `${untracked.path} is not tracked by git; shipmate commits its edits of tracked files only (add and commit the file first)`,
        );
      const ids = await this.writeBlobs(
        files.map((f) => f.content),
        scratch,
      );
      const info = files.map((f, i) => `${modes.get(f.path)} ${ids[i]}\t${f.path}\0`).join("");
      await this.plumb(["update-index", "-z", "--index-info"], "update-index", { env, input: info });
      const tree = (await this.plumb(["write-tree"], "write-tree", { env })).trim();
      const args = ["commit-tree", tree];
      if (base) args.push("-p", base);
      // commit-tree does not read commit.gpgSign as `git commit` does; a repository that asks for it is signed.
      const asked = await this.plumb(["config", "--bool", "--get", "commit.gpgSign"], "config").catch(
        () => "",
      );
      if (who.sign || asked.trim() === "true") args.push("-S");
      const ids2 = {
        GIT_AUTHOR_NAME: who.author.name,
        GIT_AUTHOR_EMAIL: who.author.email,
        GIT_COMMITTER_NAME: who.committer.name,
        GIT_COMMITTER_EMAIL: who.committer.email,
      };
      return (await this.plumb(args, "commit", { env: ids2, input: message })).trim();
    } finally {
      releaseScratch(scratch);
    }
  }

  /**
   * Moves `ref` from `from` to `to` and brings the index and working files
   * of the paths that differ in line, recorded in the run marker first so
   * that a run killed half way is finished by the next (see beginRun).
   * The caller has made sure those paths hold no one else's changes.
   */
  async advance(ref: string, from: string | undefined, to: string): Promise<void> {
    if (from === to) return;
    this.mark({ ref, ...(from ? { from } : {}), to });
    await this.plumb(["update-ref", "-m", "shipmate: update", ref, to, from ?? ""], `update ${ref}`);
    await this.syncPaths(from, to);
    this.mark({});
  }

  /** Makes index and working files match `to` wherever `from` and `to` differ. */
  private async syncPaths(from: string | undefined, to: string): Promise<void> {
    const listed = from
      ? await this.plumb(["diff-tree", "-r", "-z", "--name-only", "--no-renames", from, to], "diff-tree")
      : await this.plumb(["ls-tree", "-r", "-z", "--name-only", "--full-tree", to], "ls-tree");
    const paths = listed.split("\0").filter(Boolean);
    if (paths.length === 0) return;
    this.onFilesChanged?.(paths);
    await this.plumb(
      [
        "--literal-pathspecs",
        "restore",
        `--source=${to}`,
        "--staged",
        "--worktree",
        "--pathspec-from-file=-",
        "--pathspec-file-nul",
      ],
      "update the working files",
      { input: `${paths.join("\0")}\0` },
    );
  }

  /**
   * Claims the checkout for this run. A marker left by a shipmate run that
   * died (kill -9, power loss) is finished or discarded first: the locks
   * git held when it died with it are removed, and an update whose ref had
   * moved gets its files written; a live run's marker is refused.
   */
  async beginRun(branch?: string): Promise<void> {
    const file = await this.gitPath("shipmate-run.json");
    const record = JSON.stringify({ pid: process.pid, started: Date.now(), ...(branch ? { branch } : {}) });
    for (;;) {
      try {
        const fd = openSync(file, "wx", 0o600);
        try {
          writeSync(fd, record);
        } catch (err) {
          // Created but not written (a full disk): no run holds the checkout, so no marker stays.
          closeSync(fd);
          rmSync(file, { force: true });
          throw err;
        }
        closeSync(fd);
        this.runFile = file;
        this.runRecord = JSON.parse(record) as RunRecord;
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST")
          throw new GitError(`${file}: ${(err as Error).message}`);
      }
      let prior: RunRecord = {};
      let since = 0;
      try {
        since = statSync(file).mtimeMs;
        prior = JSON.parse(readFileSync(file, "utf8")) as RunRecord;
      } catch {
        // Half written: its writer died writing it, before doing anything else.
      }
      if (prior.pid && prior.pid !== process.pid && processAlive(prior.pid))
        throw new UsageError(
          `another shipmate run (pid ${prior.pid}) is updating ${this.dir}; wait for it to finish`,
        );
      await this.recover(prior, Math.min(since, prior.started ?? since));
      rmSync(file, { force: true });
    }
    // Worktrees shipmate added for a run that died are gone from disk by now (swept); forget them.
    await this.plumb(["worktree", "prune"], "worktree prune").catch(() => undefined);
  }

  endRun(): void {
    if (this.runFile) rmSync(this.runFile, { force: true });
    this.runFile = undefined;
  }

  private runRecord: RunRecord = {};

  /** Rewrites the run marker atomically with `state` (what a successor must finish). */
  private mark(state: Pick<RunRecord, "ref" | "from" | "to">): void {
    if (!this.runFile) return;
    const next = {
      pid: this.runRecord.pid,
      started: this.runRecord.started,
      branch: this.runRecord.branch,
      ...state,
    };
    const tmp = `${this.runFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(next), { mode: 0o600 });
    renameSync(tmp, this.runFile);
  }

  private async recover(prior: RunRecord, since: number): Promise<void> {
    // A lock made while the dead run ran was its own (git removes its locks on every exit but SIGKILL).
    const locks = ["index.lock", "HEAD.lock", "packed-refs.lock", "shallow.lock", "shipmate-run.json.tmp"];
    if (prior.ref) locks.push(`${prior.ref}.lock`);
    if (prior.branch)
      locks.push(`refs/heads/${prior.branch}.lock`, `refs/remotes/origin/${prior.branch}.lock`);
    for (const name of locks) {
      const path = await this.gitPath(name);
      try {
        if (statSync(path).mtimeMs >= since - 1000) rmSync(path, { force: true });
      } catch {
        // Not there.
      }
    }
    if (!prior.ref || !prior.to) return;
    const now = (
      await this.plumb(["rev-parse", "--verify", "-q", prior.ref], "rev-parse").catch(() => "")
    ).trim();
    // The ref moved before the run died: write the files it did not get to. Otherwise nothing was written.
    if (now === prior.to) await this.syncPaths(prior.from, prior.to);
  }

  /** A detached worktree at `commit` in a temporary folder, for preparing a change beside the user's files. */
  async addWorktree(commit: string): Promise<string> {
    const dir = scratchDir("wt");
    try {
      await this.plumb(["worktree", "add", "--quiet", "--detach", dir, commit], "worktree add");
    } catch (err) {
      releaseScratch(dir);
      throw err;
    }
    return dir;
  }

  async removeWorktree(dir: string): Promise<void> {
    await this.plumb(["worktree", "remove", "--force", dir], "worktree remove").catch(() => undefined);
    releaseScratch(dir);
    await this.plumb(["worktree", "prune"], "worktree prune").catch(() => undefined);
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

  /** Fetches `commits` more of history behind a shallow clone's boundary (a no-op on a full one): rollbacks read older pins. */
  async deepen(commits: number): Promise<void> {
    if (!(await this.isShallow())) return;
    await this.run(["fetch", "--quiet", "--no-tags", `--deepen=${commits}`, "origin"], "deepen");
  }

  async isShallow(): Promise<boolean> {
    return (await this.run(["rev-parse", "--is-shallow-repository"], "rev-parse")).trim() === "true";
  }

  /** Points the current branch (or `branch`, created if needed) at `commit` and makes the tree match it. */
  async resetTo(commit: string, branch?: string): Promise<void> {
    this.onFilesChanged?.("all");
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
    const tmp = scratchDir("msg");
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
      releaseScratch(tmp);
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
  async push(
    commit: string,
    branch: string | undefined,
    lease?: string | null,
    /** Further full ref names the commit is pushed to in the same push (`refs/for/main`). */
    alsoTo: readonly string[] = [],
  ): Promise<PushOutcome> {
    const args = ["push", "--porcelain", "--no-verify"];
    if (branch !== undefined && lease !== undefined)
      args.push(`--force-with-lease=refs/heads/${branch}:${lease ?? ""}`);
    args.push("origin");
    if (branch !== undefined) args.push(`${commit}:refs/heads/${checkBranchName(branch)}`);
    for (const ref of alsoTo) {
      if (!ref.startsWith("refs/")) throw new UsageError(`push destination "${ref}" is not a full ref name`);
      args.push(`${commit}:${checkBranchName(ref, "push destination")}`);
    }
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
      throw new GitError(`push to ${branch ?? alsoTo.join(", ")}: ${firstLine(err)}`);
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
