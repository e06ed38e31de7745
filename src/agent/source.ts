/**
 * A git source as the agent sees it: a shallow fetch of one branch, tag or
 * the newest tag in a semver range into a repository it owns, and the
 * fetched commit's tree served from a working copy. Revisions are recorded
 * in Flux's form, `<branch or tag>@sha1:<commit>`.
 *
 * Crash discipline: the repository (`<workdir>/source.git`) is created in a
 * temporary folder and renamed into place; a new commit's tree is written
 * into a temporary folder beside the working copy, the exclusions applied
 * there, and only then swapped in by rename. So the tree served is always
 * one whole commit: a fetch that fails or dies mid-way leaves the previous
 * tree (which a failed fetch keeps serving, as source-controller does), and a
 * new process never serves a tree it did not write itself. Leftovers of a
 * killed run (temporary folders, git's lock files) are swept at first use.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { simpleGit } from "simple-git";
import { GitError, redact } from "../errors.ts";
import { compareVersions, parseLooseVersion, parseSemverRange, type SemVersion } from "../policy/semver.ts";
import { applySourceIgnore } from "./sources/ignore.ts";

/** What to check out, as a GitRepository's `spec.ref` says (Flux precedence: semver, tag, branch). */
export type GitRef = { branch: string } | { tag: string } | { semver: string };

export interface SourceOptions {
  url: string;
  /** The branch to follow; `ref` takes precedence when given. */
  branch: string;
  ref?: GitRef;
  /** Directory the agent owns; the working copy lives in `<workdir>/source`. */
  workdir: string;
  timeoutMs?: number;
}

/** What a source produced: a tree of files at a revision (see ./sources/handler.ts for the kinds). */
export interface Artifact {
  /** Flux's revision: `<branch or tag>@sha1:<commit>`, `<tag>@sha256:<manifest digest>`, `sha256:<etags digest>`… */
  revision: string;
  /** The git commit, for git sources. */
  commit?: string;
  /** `sha256:<hex>`: a digest of the artifact's content (status `artifact.digest`). */
  digest?: string;
  /** Root of the fetched tree. */
  dir: string;
  /** `<Kind>/<namespace>/<name>` of the source object this came from, when the agent knows it. */
  source?: string;
  /** Upstream metadata (`org.opencontainers.image.*` annotations of an OCI artifact). */
  metadata?: Record<string, string>;
}

export function formatRevision(branch: string, commit: string): string {
  return `${branch}@sha1:${commit}`;
}

/**
 * The newest tag satisfying a semver range, as source-controller picks it:
 * tags parsed leniently (a leading `v`, missing minor or patch), the
 * highest version wins; undefined when none matches.
 */
export function pickSemverTag(tags: readonly string[], range: string): string | undefined {
  const constraint = parseSemverRange(range);
  let best: { tag: string; v: SemVersion } | undefined;
  for (const tag of tags) {
    const v = parseLooseVersion(tag);
    if (!v || !constraint.check(v)) continue;
    if (!best || compareVersions(v, best.v) > 0) best = { tag, v };
  }
  return best?.tag;
}

/**
 * Environment variables through which git reads configuration or runs
 * helpers, by the simple-git safety switch that otherwise refuses them
 * ("Use of GIT_CONFIG_GLOBAL is not permitted without enabling
 * allowUnsafeConfigPaths").
 */
const GIT_ENV_SWITCHES: Readonly<Record<string, string>> = {
  GIT_CONFIG_GLOBAL: "allowUnsafeConfigPaths",
  GIT_CONFIG_SYSTEM: "allowUnsafeConfigPaths",
  GIT_CONFIG: "allowUnsafeConfigPaths",
  GIT_EXEC_PATH: "allowUnsafeConfigPaths",
  PREFIX: "allowUnsafeConfigPaths",
  GIT_CONFIG_COUNT: "allowUnsafeConfigEnvCount",
  GIT_SSH: "allowUnsafeSshCommand",
  GIT_SSH_COMMAND: "allowUnsafeSshCommand",
  GIT_ASKPASS: "allowUnsafeAskPass",
  SSH_ASKPASS: "allowUnsafeAskPass",
  GIT_PROXY_COMMAND: "allowUnsafeGitProxy",
  GIT_TEMPLATE_DIR: "allowUnsafeTemplateDir",
  GIT_EXTERNAL_DIFF: "allowUnsafeDiffExternal",
  PAGER: "allowUnsafePager",
  GIT_PAGER: "allowUnsafePager",
  EDITOR: "allowUnsafeEditor",
  GIT_EDITOR: "allowUnsafeEditor",
  GIT_SEQUENCE_EDITOR: "allowUnsafeEditor",
};

/**
 * The simple-git switches for the variables set in the agent's own
 * environment. Those come from whoever runs the agent (a global or system
 * git config, an ssh command), never from a repository or a cluster
 * object, so they are the user's git configuration and honoured; arguments
 * built from specs (URLs, refs) still pass simple-git's checks.
 */
export function operatorGitEnv(env: NodeJS.ProcessEnv): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const [name, value] of Object.entries(env)) {
    const flag = GIT_ENV_SWITCHES[name.toUpperCase()];
    if (flag && value !== undefined) out[flag] = true;
  }
  return out;
}

/** Whether a process of that id is alive (a folder it names may still be in use). */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Lock files under a git folder (refs, HEAD, index, shallow, config, packed-refs), objects/ left out. */
function gitLocks(gitDir: string, rel = ""): string[] {
  const out: string[] = [];
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(join(gitDir, rel), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (path !== "objects") out.push(...gitLocks(gitDir, path));
    } else if (e.name.endsWith(".lock")) out.push(path);
  }
  return out;
}

/** Working copies swept in this process: each is swept once, before its first fetch. */
const swept = new Set<string>();

/**
 * Removes what a killed agent left around the working copy `dir`: temporary
 * trees and repositories of dead processes, git lock files in the
 * repository (the agent alone runs git there), index files of unfinished
 * checkouts, and a working copy of the older layout (its own `.git` folder).
 * Returns what went, relative to the working copy's parent.
 */
export function sweepWorkingCopy(dir: string): string[] {
  const parent = dirname(dir);
  const base = basename(dir);
  const gitDir = `${dir}.git`;
  const removed: string[] = [];
  if (!existsSync(parent)) return removed;
  const temp = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?:\\.git)?\\.(?:tmp|old)-(\\d+)-`);
  for (const name of readdirSync(parent)) {
    const m = temp.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
    removed.push(name);
  }
  try {
    if (statSync(join(dir, ".git")).isDirectory()) {
      rmSync(dir, { recursive: true, force: true });
      removed.push(base);
    }
  } catch {
    // No working copy yet, or one of this layout.
  }
  if (existsSync(gitDir)) {
    for (const lock of gitLocks(gitDir)) {
      unlinkSync(join(gitDir, lock));
      removed.push(`${basename(gitDir)}/${lock}`);
    }
    for (const name of readdirSync(gitDir)) {
      const m = /^index\.tmp-(\d+)$/.exec(name);
      if (!m || alive(Number(m[1]))) continue;
      rmSync(join(gitDir, name), { force: true });
      removed.push(`${basename(gitDir)}/${name}`);
    }
  }
  return removed;
}

let stagingSeq = 0;

export class GitSource {
  readonly url: string;
  readonly branch: string;
  readonly ref: GitRef;
  /** The working copy: the tree of the last commit checked out, whole (see the file's comment). */
  readonly dir: string;
  /** The repository the fetches land in; the working copy's `.git` file points here. */
  readonly gitDir: string;
  private readonly timeoutMs: number;
  private current: Artifact | undefined;
  /** What this process last wrote into the working copy; undefined until it has written one. */
  private checkedOut: { commit: string; ignore: string | undefined } | undefined;

  constructor(opts: SourceOptions) {
    this.url = opts.url;
    this.branch = opts.branch;
    this.ref = opts.ref ?? { branch: opts.branch };
    this.dir = join(opts.workdir, "source");
    this.gitDir = `${this.dir}.git`;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
  }

  /** The last artifact fetched successfully, if any. */
  get artifact(): Artifact | undefined {
    return this.current;
  }

  /** git on the agent's repository; `env` adds a work tree or an index file. */
  private git(env: Record<string, string> = {}) {
    const inherited = { ...process.env };
    // The operator's environment chooses git's configuration, never which repository or tree.
    for (const k of ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"])
      delete inherited[k];
    return simpleGit({
      baseDir: dirname(this.dir),
      timeout: { block: this.timeoutMs },
      unsafe: operatorGitEnv(process.env),
    }).env({
      ...inherited,
      GIT_DIR: this.gitDir,
      // Never wait for a password prompt: credentials come in the URL or not at all.
      GIT_TERMINAL_PROMPT: "0",
      ...env,
    });
  }

  /** Sweeps a killed run's leftovers once per process, and creates the repository whole when missing. */
  private async prepare(): Promise<void> {
    if (!swept.has(this.dir)) {
      swept.add(this.dir);
      sweepWorkingCopy(this.dir);
    }
    if (existsSync(join(this.gitDir, "HEAD"))) return;
    mkdirSync(dirname(this.dir), { recursive: true });
    const tmp = `${this.gitDir}.tmp-${process.pid}-${++stagingSeq}`;
    rmSync(tmp, { recursive: true, force: true });
    try {
      await this.git({ GIT_DIR: tmp }).raw(["init", "--quiet", "--bare", tmp]);
      await this.git({ GIT_DIR: tmp }).raw(["config", "core.bare", "false"]);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw new GitError(`cannot create the agent's repository in ${dirname(this.dir)}: ${firstLine(err)}`);
    }
    rmSync(this.gitDir, { recursive: true, force: true });
    renameSync(tmp, this.gitDir);
  }

  /** Which remote ref to fetch, its name in the revision, and where it lands locally. */
  private async target(): Promise<{ remote: string; name: string; local: string; what: string }> {
    const r = this.ref;
    if ("branch" in r)
      return {
        remote: `refs/heads/${r.branch}`,
        name: r.branch,
        local: `refs/remotes/origin/${r.branch}`,
        what: `branch ${r.branch}`,
      };
    let tag: string;
    let what: string;
    if ("tag" in r) {
      tag = r.tag;
      what = `tag ${tag}`;
    } else {
      let listing: string;
      try {
        listing = await this.git().raw(["ls-remote", "--tags", "--refs", this.url]);
      } catch (err) {
        throw new GitError(`git ls-remote ${redact(this.url)}: ${firstLine(err)}`);
      }
      const tags = listing
        .split("\n")
        .map((l) => l.split("\t")[1]?.replace(/^refs\/tags\//, ""))
        .filter((t): t is string => Boolean(t));
      let picked: string | undefined;
      try {
        picked = pickSemverTag(tags, r.semver);
      } catch (err) {
        throw new GitError(`semver range "${r.semver}": ${(err as Error).message}`);
      }
      if (!picked) throw new GitError(`no tag of ${redact(this.url)} matches semver range "${r.semver}"`);
      tag = picked;
      what = `tag ${tag} (semver ${r.semver})`;
    }
    return { remote: `refs/tags/${tag}`, name: tag, local: `refs/tags/${tag}`, what };
  }

  /**
   * Fetches the ref (depth 1) and serves its tree; a failure leaves the previous tree untouched.
   * What Flux leaves out of the artifact (defaults, `.sourceignore`, `specIgnore`) is removed.
   */
  async fetch(specIgnore?: string): Promise<Artifact> {
    await this.prepare();
    const git = this.git();
    const t = await this.target();
    try {
      await git.raw(["fetch", "--depth=1", "--no-tags", "--force", this.url, `+${t.remote}:${t.local}`]);
    } catch (err) {
      throw new GitError(`git fetch ${redact(this.url)} (${t.what}): ${firstLine(err)}`);
    }
    const commit = (await git.revparse([`${t.local}^{commit}`])).trim();
    const same =
      this.checkedOut?.commit === commit && this.checkedOut.ignore === specIgnore && existsSync(this.dir);
    if (same) await this.restore(specIgnore);
    else await this.materialize(commit, specIgnore);
    this.current = { revision: formatRevision(t.name, commit), commit, dir: this.dir };
    return this.current;
  }

  /**
   * Writes the commit's tree into a temporary folder beside the working
   * copy, applies the exclusions there, and swaps it in by rename; the
   * index written with it replaces the repository's. Until the swap the
   * working copy is the previous tree, whole.
   */
  private async materialize(commit: string, specIgnore: string | undefined): Promise<void> {
    const parent = dirname(this.dir);
    const seq = ++stagingSeq;
    const staging = join(parent, `${basename(this.dir)}.tmp-${process.pid}-${seq}`);
    const index = join(this.gitDir, `index.tmp-${process.pid}`);
    rmSync(staging, { recursive: true, force: true });
    rmSync(index, { force: true });
    try {
      mkdirSync(staging);
      const env = { GIT_WORK_TREE: staging, GIT_INDEX_FILE: index };
      await this.git(env).raw(["read-tree", commit]);
      await this.git(env).raw(["checkout-index", "--all", "--force"]);
      // A git file, so git run in the working copy (treeDigest, clean) finds the repository.
      writeFileSync(join(staging, ".git"), `gitdir: ../${basename(this.gitDir)}\n`);
      applySourceIgnore(staging, specIgnore);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      rmSync(index, { force: true });
      throw new GitError(
        `checking out ${commit.slice(0, 12)} into the agent's working copy failed: ${firstLine(err)}`,
      );
    }
    const old = join(parent, `${basename(this.dir)}.old-${process.pid}-${seq}`);
    if (existsSync(this.dir)) renameSync(this.dir, old);
    renameSync(staging, this.dir);
    renameSync(index, join(this.gitDir, "index"));
    this.checkedOut = { commit, ignore: specIgnore };
    rmSync(old, { recursive: true, force: true });
    await this.git().raw(["update-ref", "--no-deref", "HEAD", commit]);
  }

  /**
   * The same commit again: files a render changed are restored in place
   * (git rewrites only those that differ), the rest dropped, the exclusions
   * applied again. A kill here leaves that commit's files, and the next
   * process writes a fresh tree anyway.
   */
  private async restore(specIgnore: string | undefined): Promise<void> {
    await this.git({ GIT_WORK_TREE: this.dir }).raw(["checkout-index", "--all", "--force"]);
    await this.clean();
    applySourceIgnore(this.dir, specIgnore);
  }

  /** Drops files written into the working copy (generated kustomization files) so each render starts pristine. */
  async clean(): Promise<void> {
    if (!existsSync(this.dir)) return;
    await this.git({ GIT_WORK_TREE: this.dir }).raw(["clean", "-ffdxq"]);
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
