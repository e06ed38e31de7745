/**
 * A git source as the agent sees it: a fetch of one branch, tag, newest tag
 * in a semver range, named reference or pinned commit into a repository it
 * owns, and the fetched commit's tree (optionally sparse, optionally with
 * its submodules) served from a working copy. Revisions are recorded in
 * Flux's form: `<branch or tag>@sha1:<commit>`, `<full ref name>@sha1:<commit>`
 * for `ref.name`, `sha1:<commit>` for a commit without a branch.
 *
 * Crash discipline: the repository (`<workdir>/source.git`) is created in a
 * temporary folder and renamed into place; a new commit's tree is written
 * into a temporary folder beside the working copy (sparse patterns applied,
 * submodules checked out, the exclusions applied there), and only then
 * swapped in by rename. So the tree served is always one whole commit: a
 * fetch that fails, is refused (signature verification) or dies mid-way
 * leaves the previous tree (which a failed fetch keeps serving, as
 * source-controller does), and a new process never serves a tree it did not
 * write itself. Leftovers of a killed run (temporary folders, git's lock
 * files) are swept at first use.
 */
import { execFile } from "node:child_process";
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
import { sparseDir } from "../validate/sourceignore.ts";
import { applySourceIgnore } from "./sources/ignore.ts";

export { sparseDir };

/** What to check out, as a GitRepository's `spec.ref` says (Flux precedence: semver, tag, branch). */
export type GitRef = { branch: string } | { tag: string } | { semver: string };

/**
 * What a GitRepository checks out, with source-controller's precedence
 * (commit, then name, then semver, tag, branch): GitRef plus a full
 * reference name (`refs/heads/main`, `refs/pull/1/head`) or a commit SHA,
 * alone or within a branch.
 */
export type CheckoutRef = GitRef | { name: string } | { commit: string; branch?: string };

/** The fetched objects, before anything is checked out: a check may refuse them (signature verification). */
export interface FetchedRef {
  /** The agent's repository (a git folder, `<workdir>/source.git`) holding the fetched objects. */
  dir: string;
  commit: string;
  /** The local ref of the tag the checkout came through (`ref.tag`, `ref.semver`, a `refs/tags/` name). */
  tagRef?: string;
  /** The tag's name as Flux prints it (`v1.0.0`). */
  tagName?: string;
}

/** Options of a GitRepository that shape the checked-out tree. */
export interface CheckoutOptions {
  /** Directories (`spec.sparseCheckout`): only they are checked out. */
  sparse?: readonly string[];
  /** `spec.recurseSubmodules`: submodules checked out, recursively, with the same credentials. */
  submodules?: { authHeader?: string };
  /** Runs on the fetched objects before the working copy changes; throwing leaves it as it was. */
  check?: (fetched: FetchedRef) => Promise<void>;
}

export interface SourceOptions {
  url: string;
  /** The branch to follow; `ref` takes precedence when given. */
  branch: string;
  ref?: CheckoutRef;
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
  /** Conditions to record beside Ready (a GitRepository's `SourceVerified`). */
  conditions?: readonly { type: string; status: "True" | "False"; reason: string; message: string }[];
  /** Status fields of the kind to record with the artifact (`includedArtifacts`, `observedInclude`…); null removes one. */
  status?: Record<string, unknown>;
  /**
   * A data container, not an artifact (an OCI HelmRepository: its HelmCharts
   * read its spec and pull for themselves). Its status stays empty, as
   * source-controller keeps it, and no event is posted.
   */
  static?: true;
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
  readonly ref: CheckoutRef;
  /** The working copy: the tree of the last commit checked out, whole (see the file's comment). */
  readonly dir: string;
  /** The repository the fetches land in; the working copy's `.git` file points here. */
  readonly gitDir: string;
  private readonly timeoutMs: number;
  private current: Artifact | undefined;
  /**
   * What this process last wrote into the working copy: the commit and the
   * options that shaped its tree (exclusions, sparse dirs, submodules);
   * undefined until it has written one.
   */
  private checkedOut: { commit: string; shape: string; ignore: string | undefined } | undefined;
  /** Whether the working copy has its submodules checked out (restore and clean() then reach into them). */
  private submodules = false;

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

  /** The agent's environment for git, without what would choose another repository, tree or index. */
  private baseEnv(): NodeJS.ProcessEnv {
    const inherited = { ...process.env };
    // The operator's environment chooses git's configuration, never which repository or tree.
    for (const k of ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"])
      delete inherited[k];
    // Never wait for a password prompt: credentials come in the URL or not at all.
    return { ...inherited, GIT_TERMINAL_PROMPT: "0" };
  }

  /** git on the agent's repository; `env` adds a work tree or an index file. */
  private git(env: Record<string, string> = {}) {
    return simpleGit({
      baseDir: dirname(this.dir),
      timeout: { block: this.timeoutMs },
      unsafe: operatorGitEnv(process.env),
    }).env({
      ...this.baseEnv(),
      GIT_DIR: this.gitDir,
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
  private async target(): Promise<{
    remote: string;
    name: string;
    local: string;
    what: string;
    tag?: string;
  }> {
    const r = this.ref;
    if ("commit" in r) throw new Error("a pinned commit has no single ref to fetch");
    if ("name" in r) {
      // Kept apart from the refs a checkout could be on; a tag keeps its (annotated) tag object.
      const local = `refs/shipmate/${r.name.replace(/^refs\//, "")}`;
      const tag = r.name.startsWith("refs/tags/") ? r.name.slice("refs/tags/".length) : undefined;
      return { remote: r.name, name: r.name, local, what: `reference ${r.name}`, ...(tag ? { tag } : {}) };
    }
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
    return { remote: `refs/tags/${tag}`, name: tag, local: `refs/tags/${tag}`, what, tag };
  }

  /** Whether the working copy holds a shallow history (a full fetch must then deepen it). */
  private async shallow(): Promise<boolean> {
    return (await this.git().raw(["rev-parse", "--is-shallow-repository"])).trim() === "true";
  }

  /**
   * A pinned commit, as source-controller fetches it: the full history of the
   * branch when one is given (the commit must be in it), else of every branch.
   */
  private async fetchCommit(r: {
    commit: string;
    branch?: string;
  }): Promise<{ commit: string; name?: string }> {
    if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(r.commit))
      throw new GitError(`ref.commit "${r.commit}" is not a full commit SHA`);
    const git = this.git();
    const spec = r.branch
      ? `+refs/heads/${r.branch}:refs/remotes/origin/${r.branch}`
      : "+refs/heads/*:refs/remotes/origin/*";
    // --prune: a branch gone from the remote no longer vouches for a commit.
    const args = [
      "fetch",
      "--no-tags",
      "--force",
      "--prune",
      ...((await this.shallow()) ? ["--unshallow"] : []),
      this.url,
      spec,
    ];
    try {
      await git.raw(args);
    } catch (err) {
      throw new GitError(
        `git fetch ${redact(this.url)} (${r.branch ? `branch ${r.branch}` : "all branches"}): ${firstLine(err)}`,
      );
    }
    const found = await git.raw(["cat-file", "-t", r.commit]).then(
      (t) => t.trim() === "commit",
      () => false,
    );
    // Objects of earlier fetches stay in the working copy: the commit must be on the branch(es) fetched now.
    const inBranch = !found
      ? false
      : r.branch
        ? await git.raw(["merge-base", "--is-ancestor", r.commit, `refs/remotes/origin/${r.branch}`]).then(
            () => true,
            () => false,
          )
        : (
            await git.raw([
              "for-each-ref",
              "--contains",
              r.commit,
              "--format=%(refname)",
              "refs/remotes/origin/",
            ])
          ).trim().length > 0;
    if (!inBranch)
      throw new GitError(
        `commit ${r.commit} not found in ${r.branch ? `branch ${r.branch}` : "any branch"} of ${redact(this.url)}`,
      );
    return { commit: r.commit, ...(r.branch ? { name: r.branch } : {}) };
  }

  /**
   * Fetches the ref and serves its tree; a failure (or a refusal by
   * `opts.check`, which sees the fetched objects before any tree is written)
   * leaves the previous tree untouched. What Flux leaves out of the artifact
   * (defaults, `.sourceignore`, `specIgnore`) is removed.
   */
  async fetch(specIgnore?: string, opts: CheckoutOptions = {}): Promise<Artifact> {
    await this.prepare();
    const git = this.git();
    let commit: string;
    let revision: string;
    let tagRef: string | undefined;
    let tagName: string | undefined;
    if ("commit" in this.ref) {
      const got = await this.fetchCommit(this.ref);
      commit = got.commit;
      revision = got.name ? formatRevision(got.name, commit) : `sha1:${commit}`;
    } else {
      const t = await this.target();
      try {
        await git.raw(["fetch", "--depth=1", "--no-tags", "--force", this.url, `+${t.remote}:${t.local}`]);
      } catch (err) {
        throw new GitError(`git fetch ${redact(this.url)} (${t.what}): ${firstLine(err)}`);
      }
      commit = (await git.revparse([`${t.local}^{commit}`])).trim();
      revision = formatRevision(t.name, commit);
      if (t.tag) {
        tagRef = t.local;
        tagName = t.tag;
      }
    }
    if (opts.sparse?.length) await this.checkSparse(commit, opts.sparse);
    await opts.check?.({
      dir: this.gitDir,
      commit,
      ...(tagRef ? { tagRef } : {}),
      ...(tagName ? { tagName } : {}),
    });
    const shape = JSON.stringify({
      ignore: specIgnore ?? null,
      sparse: opts.sparse?.length ? opts.sparse.map(sparseDir) : null,
      submodules: opts.submodules !== undefined,
    });
    const same =
      this.checkedOut?.commit === commit && this.checkedOut.shape === shape && existsSync(this.dir);
    if (same) await this.restore(specIgnore);
    else await this.materialize(commit, specIgnore, opts, shape);
    this.current = { revision, commit, dir: this.dir };
    return this.current;
  }

  /** Each sparse directory must exist at the commit (source-controller fails the fetch otherwise). */
  private async checkSparse(commit: string, dirs: readonly string[]): Promise<void> {
    for (const d of dirs) {
      const path = sparseDir(d);
      const type = await this.git()
        .raw(["cat-file", "-t", `${commit}:${path}`])
        .then(
          (t) => t.trim(),
          () => "",
        );
      if (type !== "tree")
        throw new GitError(`sparse checkout dir '${d}' does not exist in repository at ${commit}`);
    }
  }

  /**
   * The repository's sparse patterns: whole directories (non-cone patterns,
   * so root files stay out too), or none. They shape the next tree written;
   * the one served keeps its own (its index's skip-worktree bits).
   */
  private async setSparse(dirs: readonly string[] | undefined): Promise<void> {
    const git = this.git();
    if (!dirs?.length) {
      const on = await git.raw(["config", "--get", "core.sparseCheckout"]).then(
        (v) => v.trim() === "true",
        () => false,
      );
      if (on) await git.raw(["config", "core.sparseCheckout", "false"]);
      return;
    }
    mkdirSync(join(this.gitDir, "info"), { recursive: true });
    writeFileSync(
      join(this.gitDir, "info", "sparse-checkout"),
      `${dirs.map((d) => `/${sparseDir(d)}/`).join("\n")}\n`,
    );
    await git.raw(["config", "core.sparseCheckout", "true"]);
    await git.raw(["config", "core.sparseCheckoutCone", "false"]);
  }

  /**
   * Writes the commit's tree into a temporary folder beside the working
   * copy (within the sparse dirs when given), checks its submodules out
   * there, applies the exclusions there, and swaps it in by rename; the
   * index written with it replaces the repository's. Until the swap the
   * working copy is the previous tree, whole.
   */
  private async materialize(
    commit: string,
    specIgnore: string | undefined,
    opts: CheckoutOptions,
    shape: string,
  ): Promise<void> {
    const parent = dirname(this.dir);
    const seq = ++stagingSeq;
    const staging = join(parent, `${basename(this.dir)}.tmp-${process.pid}-${seq}`);
    const index = join(this.gitDir, `index.tmp-${process.pid}`);
    rmSync(staging, { recursive: true, force: true });
    rmSync(index, { force: true });
    try {
      await this.setSparse(opts.sparse);
      mkdirSync(staging);
      const env = { GIT_WORK_TREE: staging, GIT_INDEX_FILE: index };
      // A one-tree merge into an empty index: every file written, outside the sparse patterns none.
      await this.git(env).raw(["read-tree", "--reset", "-u", commit]);
      // A git file, so git run in the working copy (treeDigest, clean, submodules) finds the repository.
      writeFileSync(join(staging, ".git"), `gitdir: ../${basename(this.gitDir)}\n`);
      if (opts.submodules) await this.updateSubmodules(staging, index, opts.submodules.authHeader);
      applySourceIgnore(staging, specIgnore);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      rmSync(index, { force: true });
      if (opts.submodules) await this.repairSubmodules(opts.submodules.authHeader);
      await detachSubmoduleWorkTrees(this.gitDir);
      if (err instanceof GitError) throw err;
      throw new GitError(
        `checking out ${commit.slice(0, 12)} into the agent's working copy failed: ${firstLine(err)}`,
      );
    }
    // Submodule repositories name no work tree: each finds its own by its `.git` file, wherever the tree moves.
    await detachSubmoduleWorkTrees(this.gitDir);
    const old = join(parent, `${basename(this.dir)}.old-${process.pid}-${seq}`);
    if (existsSync(this.dir)) renameSync(this.dir, old);
    renameSync(staging, this.dir);
    renameSync(index, join(this.gitDir, "index"));
    this.checkedOut = { commit, shape, ignore: specIgnore };
    this.submodules = opts.submodules !== undefined;
    rmSync(old, { recursive: true, force: true });
    await this.git().raw(["update-ref", "--no-deref", "HEAD", commit]);
  }

  /**
   * The same commit again: files a render changed are restored in place
   * (git rewrites only those that differ, in submodules too), the rest
   * dropped, the exclusions applied again. A kill here leaves that commit's
   * files, and the next process writes a fresh tree anyway.
   */
  private async restore(specIgnore: string | undefined): Promise<void> {
    await this.git({ GIT_WORK_TREE: this.dir }).raw(["checkout-index", "--all", "--force"]);
    if (this.submodules)
      await this.inTree(this.dir, [
        "submodule",
        "foreach",
        "--quiet",
        "--recursive",
        "git checkout-index --all --force",
      ]);
    await this.clean();
    applySourceIgnore(this.dir, specIgnore);
  }

  /** Runs git in a tree of the agent's repository (submodule commands need a current directory). */
  private inTree(tree: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
    const what = args[0] === "submodule" ? args.slice(0, 2).join(" ") : args[0];
    return new Promise<void>((resolve, reject) => {
      execFile(
        "git",
        args,
        {
          cwd: tree,
          env: { ...this.baseEnv(), GIT_DIR: this.gitDir, GIT_WORK_TREE: tree, ...env },
          timeout: this.timeoutMs,
          maxBuffer: 16 * 1024 * 1024,
        },
        (err, _stdout, stderr) =>
          err
            ? reject(new GitError(`git ${what} in ${redact(this.url)}: ${firstLine(stderr || err)}`))
            : resolve(),
      );
    });
  }

  /**
   * `git submodule update --init --recursive` in a tree being written (its
   * own index), the superproject's credentials sent to submodules on the same
   * host as a header passed through git's environment (never on a command
   * line).
   */
  private async updateSubmodules(tree: string, index: string, authHeader: string | undefined): Promise<void> {
    const env: NodeJS.ProcessEnv = { GIT_INDEX_FILE: index };
    let origin = "";
    try {
      const u = new URL(this.url);
      if (u.protocol === "https:" || u.protocol === "http:") origin = `${u.protocol}//${u.host}/`;
    } catch {
      // Not an http(s) URL: there is no header to send.
    }
    if (authHeader && origin) {
      // Only towards the GitRepository's own host: a submodule elsewhere never receives its credentials.
      const base = Number(process.env.GIT_CONFIG_COUNT ?? 0) || 0;
      env.GIT_CONFIG_COUNT = String(base + 1);
      env[`GIT_CONFIG_KEY_${base}`] = `http.${origin}.extraHeader`;
      env[`GIT_CONFIG_VALUE_${base}`] = authHeader;
    }
    await this.inTree(tree, ["submodule", "update", "--init", "--recursive", "--force"], env);
  }

  /**
   * After a failed tree with submodules: their repositories are shared by
   * both trees and were moved to the failed one (HEAD, index), so they are
   * set back to the tree still served (its commits are all local), and its
   * exclusions applied again. Should that fail too, the next fetch writes a
   * fresh tree rather than restore this one.
   */
  private async repairSubmodules(authHeader: string | undefined): Promise<void> {
    if (!this.submodules || !this.checkedOut || !existsSync(this.dir)) return;
    try {
      await this.updateSubmodules(this.dir, join(this.gitDir, "index"), authHeader);
      await this.git({ GIT_WORK_TREE: this.dir }).raw(["clean", "-ffdxq"]);
      applySourceIgnore(this.dir, this.checkedOut.ignore);
    } catch {
      this.checkedOut = undefined;
    }
  }

  /** Drops files written into the working copy (generated kustomization files) so each render starts pristine. */
  async clean(): Promise<void> {
    if (!existsSync(this.dir)) return;
    await this.git({ GIT_WORK_TREE: this.dir }).raw(["clean", "-ffdxq"]);
    if (this.submodules)
      await this.inTree(this.dir, ["submodule", "foreach", "--quiet", "--recursive", "git clean -ffdxq"]);
  }
}

/**
 * Unsets `core.worktree` in every submodule repository under the agent's
 * (`modules/`, nested ones too): `git submodule update` points them at the
 * temporary tree it checked out, which the swap then moves; without the
 * setting git takes the folder holding a submodule's `.git` file.
 */
async function detachSubmoduleWorkTrees(gitDir: string): Promise<void> {
  const configs: string[] = [];
  const walk = (dir: string) => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const sub = join(dir, e.name);
      if (existsSync(join(sub, "HEAD")) && existsSync(join(sub, "config"))) {
        configs.push(join(sub, "config"));
        walk(join(sub, "modules"));
      } else walk(sub);
    }
  };
  walk(join(gitDir, "modules"));
  for (const config of configs)
    await new Promise<void>((resolve) => {
      // Exit status 5 when it is not set: nothing to do.
      execFile("git", ["config", "--file", config, "--unset-all", "core.worktree"], () => resolve());
    });
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("hint:"));
  return redact(lines.find((l) => l.startsWith("fatal:")) ?? lines[0] ?? "failed");
}
