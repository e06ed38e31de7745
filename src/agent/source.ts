/**
 * A git source as the agent sees it: a fetch of one branch, tag, newest tag
 * in a semver range, named reference or pinned commit into a working copy it
 * owns, checked out at the fetched commit (optionally sparse, optionally with
 * its submodules). Revisions are recorded in Flux's form: `<branch or
 * tag>@sha1:<commit>`, `<full ref name>@sha1:<commit>` for `ref.name`,
 * `sha1:<commit>` for a commit without a branch.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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
  /** The working copy (its .git holds the fetched objects). */
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

export class GitSource {
  readonly url: string;
  readonly branch: string;
  readonly ref: CheckoutRef;
  readonly dir: string;
  private readonly timeoutMs: number;
  private current: Artifact | undefined;
  /** Whether the last checkout has submodules (clean() then cleans inside them too). */
  private submodules = false;

  constructor(opts: SourceOptions) {
    this.url = opts.url;
    this.branch = opts.branch;
    this.ref = opts.ref ?? { branch: opts.branch };
    this.dir = join(opts.workdir, "source");
    this.timeoutMs = opts.timeoutMs ?? 60_000;
  }

  /** The last artifact fetched successfully, if any. */
  get artifact(): Artifact | undefined {
    return this.current;
  }

  private git() {
    return simpleGit({
      baseDir: this.dir,
      timeout: { block: this.timeoutMs },
      unsafe: operatorGitEnv(process.env),
    }).env({
      ...process.env,
      // Never wait for a password prompt: credentials come in the URL or not at all.
      GIT_TERMINAL_PROMPT: "0",
    });
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
   * Fetches the ref and checks it out; a failure leaves the previous checkout untouched.
   * What Flux leaves out of the artifact (defaults, `.sourceignore`, `specIgnore`) is removed.
   */
  async fetch(specIgnore?: string, opts: CheckoutOptions = {}): Promise<Artifact> {
    if (!existsSync(join(this.dir, ".git"))) {
      mkdirSync(this.dir, { recursive: true });
      await this.git().init();
    }
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
      dir: this.dir,
      commit,
      ...(tagRef ? { tagRef } : {}),
      ...(tagName ? { tagName } : {}),
    });
    await this.setSparse(opts.sparse);
    const previous = this.current;
    await this.checkout(commit);
    if (opts.submodules) {
      try {
        await this.updateSubmodules(opts.submodules.authHeader);
      } catch (err) {
        // The last artifact is still in use and lives in this working copy: put it back.
        if (previous?.commit) {
          await this.checkout(previous.commit).catch(() => undefined);
          await this.updateSubmodules(opts.submodules.authHeader).catch(() => undefined);
          applySourceIgnore(this.dir, specIgnore);
        }
        throw err;
      }
    }
    this.submodules = opts.submodules !== undefined;
    applySourceIgnore(this.dir, specIgnore);
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

  /** Sparse checkout of whole directories (non-cone patterns, so root files stay out too), or none. */
  private async setSparse(dirs: readonly string[] | undefined): Promise<void> {
    const git = this.git();
    const file = join(this.dir, ".git", "info", "sparse-checkout");
    if (!dirs?.length) {
      const on = await git.raw(["config", "--get", "core.sparseCheckout"]).then(
        (v) => v.trim() === "true",
        () => false,
      );
      // Files the old pattern skipped come back (skip-worktree bits cleared).
      if (on) await git.raw(["sparse-checkout", "disable"]);
      return;
    }
    const patterns = `${dirs.map((d) => `/${sparseDir(d)}/`).join("\n")}\n`;
    mkdirSync(join(this.dir, ".git", "info"), { recursive: true });
    const before = existsSync(file) ? readFileSync(file, "utf8") : "";
    writeFileSync(file, patterns);
    await git.raw(["config", "core.sparseCheckout", "true"]);
    await git.raw(["config", "core.sparseCheckoutCone", "false"]);
    // A changed pattern is applied to what is checked out now; the checkout then moves within it.
    if (before !== patterns) await git.raw(["read-tree", "-mu", "HEAD"]).catch(() => undefined);
  }

  /**
   * `git submodule update --init --recursive`, the superproject's credentials
   * sent to submodules on the same host as a header passed through git's
   * environment (never on a command line).
   */
  private async updateSubmodules(authHeader: string | undefined): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: "0" };
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
    await new Promise<void>((resolve, reject) => {
      execFile(
        "git",
        ["submodule", "update", "--init", "--recursive", "--force"],
        { cwd: this.dir, env, timeout: this.timeoutMs, maxBuffer: 16 * 1024 * 1024 },
        (err, _stdout, stderr) =>
          err
            ? reject(new GitError(`git submodule update in ${redact(this.url)}: ${firstLine(stderr || err)}`))
            : resolve(),
      );
    });
  }

  private async checkout(commit: string): Promise<void> {
    const git = this.git();
    await git.raw(["checkout", "--quiet", "--force", "--detach", commit]);
    await this.clean();
  }

  /** Drops files written into the working copy (generated kustomization files) so each render starts pristine. */
  async clean(): Promise<void> {
    await this.git().raw(["clean", "-ffdxq"]);
    if (this.submodules)
      await this.git().raw(["submodule", "foreach", "--quiet", "--recursive", "git clean -ffdxq"]);
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
