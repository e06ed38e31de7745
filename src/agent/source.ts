/**
 * A git source as the agent sees it: a shallow fetch of one branch, tag or
 * the newest tag in a semver range into a working copy it owns, checked out
 * at the fetched commit. Revisions are recorded in Flux's form,
 * `<branch or tag>@sha1:<commit>`.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
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
  readonly ref: GitRef;
  readonly dir: string;
  private readonly timeoutMs: number;
  private current: Artifact | undefined;

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
   * Fetches the ref (depth 1) and checks it out; a failure leaves the previous checkout untouched.
   * What Flux leaves out of the artifact (defaults, `.sourceignore`, `specIgnore`) is removed.
   */
  async fetch(specIgnore?: string): Promise<Artifact> {
    if (!existsSync(join(this.dir, ".git"))) {
      mkdirSync(this.dir, { recursive: true });
      await this.git().init();
    }
    const git = this.git();
    const t = await this.target();
    try {
      await git.raw(["fetch", "--depth=1", "--no-tags", "--force", this.url, `+${t.remote}:${t.local}`]);
    } catch (err) {
      throw new GitError(`git fetch ${redact(this.url)} (${t.what}): ${firstLine(err)}`);
    }
    const commit = (await git.revparse([`${t.local}^{commit}`])).trim();
    await this.checkout(commit);
    applySourceIgnore(this.dir, specIgnore);
    this.current = { revision: formatRevision(t.name, commit), commit, dir: this.dir };
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
