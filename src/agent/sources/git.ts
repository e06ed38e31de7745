/**
 * GitRepository (source.toolkit.fluxcd.io/v1): a fetch of a branch, a tag,
 * the newest tag in a semver range, a named reference or a pinned commit
 * (./../source.ts), with basic-auth credentials from a Flux git Secret;
 * optionally sparse, with submodules, signature-verified (./verify.ts) and
 * composed with other GitRepositories' artifacts (./include.ts).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { registerSecret } from "../../errors.ts";
import { GitRepositorySpec, SOURCE_API_VERSION } from "../../kube/schema.ts";
import type { FieldTable } from "../fields/support.ts";
import {
  type Artifact,
  type CheckoutOptions,
  type CheckoutRef,
  type FetchedRef,
  GitSource,
} from "../git-source.ts";
import {
  type FetchContext,
  parseWith,
  SourceError,
  type SourceFetcher,
  type SourceHandler,
  type SourceRef,
  type StatusCondition,
} from "./handler.ts";
import { applySourceIgnore } from "./ignore.ts";
import { composeArtifact, composedDigest, includePaths, listTree, type ResolvedInclude } from "./include.ts";
import { pruneTree, treePaths } from "./tree.ts";
import { normalMode, SOURCE_VERIFIED, verifyFetched } from "./verify.ts";

/** Condition a GitRepository carries while an included repository has no artifact. */
export const INCLUDE_UNAVAILABLE = "IncludeUnavailable";

/** source.toolkit.fluxcd.io/v1 GitRepository spec fields, honoured or refused. */
export const GIT_REPOSITORY_FIELDS: FieldTable = {
  url: "honoured",
  interval: "honoured",
  timeout: "honoured",
  suspend: "honoured",
  ref: "honoured",
  "ref.branch": "honoured",
  "ref.tag": "honoured",
  "ref.semver": "honoured",
  "ref.name": "honoured",
  "ref.commit": "honoured",
  secretRef: "honoured",
  "secretRef.name": "honoured",
  provider: { refused: "only generic (Secret) authentication is implemented", accepts: ["generic"] },
  proxySecretRef: { refused: "git over a proxy is not implemented" },
  serviceAccountName: { refused: "workload-identity authentication is not implemented" },
  ignore: "honoured",
  include: "honoured",
  "include.repository": "honoured",
  "include.repository.name": "honoured",
  "include.fromPath": "honoured",
  "include.toPath": "honoured",
  recurseSubmodules: "honoured",
  sparseCheckout: "honoured",
  verify: "honoured",
  "verify.mode": "honoured",
  "verify.secretRef": "honoured",
  "verify.secretRef.name": "honoured",
};

/**
 * The fleet's own GitRepository is fetched from the agent's --repo/--branch
 * flags, not through this handler: its ref and includes would change what
 * it checks out, so there they stay refused (sparseCheckout,
 * recurseSubmodules and verify are honoured on it, through checkoutFor).
 */
export const ROOT_GIT_REPOSITORY_FIELDS: FieldTable = {
  ...GIT_REPOSITORY_FIELDS,
  "ref.name": {
    refused:
      "the fleet's own GitRepository follows the agent's --branch; a named reference is not followed there",
  },
  "ref.commit": {
    refused:
      "the fleet's own GitRepository follows the agent's --branch; a pinned commit is not followed there",
  },
  include: { refused: "the fleet's own GitRepository is fetched from the agent's flags, without includes" },
};

/**
 * The ref to check out, with source-controller's precedence (commit, then
 * name, semver, tag, branch; a commit keeps its branch) and its default
 * (`master` when no ref is given).
 */
export function gitRefOf(spec: GitRepositorySpec): CheckoutRef {
  return checkoutRefOf(spec.ref);
}

/** gitRefOf for a bare `ref` (a GitRepository's, or an ImageUpdateAutomation's `git.checkout.ref`). */
export function checkoutRefOf(
  ref: { branch?: string; tag?: string; semver?: string; name?: string; commit?: string } | undefined,
): CheckoutRef {
  if (ref?.commit) return ref.branch ? { commit: ref.commit, branch: ref.branch } : { commit: ref.commit };
  if (ref?.name) return { name: ref.name };
  if (ref?.semver) return { semver: ref.semver };
  if (ref?.tag) return { tag: ref.tag };
  return { branch: ref?.branch ?? "master" };
}

/** The `Authorization` header of a Flux git Secret's basic-auth pair (sent to submodules' remotes). */
export function basicAuthHeader(data: Record<string, string>): string | undefined {
  const decode = (k: string) =>
    data[k] === undefined ? undefined : Buffer.from(data[k], "base64").toString();
  const password = decode("password");
  if (password === undefined) return undefined;
  const header = `Authorization: Basic ${Buffer.from(`${decode("username") || "git"}:${password}`).toString("base64")}`;
  registerSecret(header.slice("Authorization: Basic ".length));
  return header;
}

/** The `Authorization` header for credentials written in a URL (`https://user:token@host/…`), if any. */
export function urlAuthHeader(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (!u.password || (u.protocol !== "https:" && u.protocol !== "http:")) return undefined;
  const pair = `${decodeURIComponent(u.username) || "git"}:${decodeURIComponent(u.password)}`;
  const token = Buffer.from(pair).toString("base64");
  registerSecret(token);
  return `Authorization: Basic ${token}`;
}

/** The GitRepositories a spec includes, in its namespace. */
export function includedRefs(spec: GitRepositorySpec, namespace: string): SourceRef[] {
  return (spec.include ?? []).map((i) => ({ kind: "GitRepository", namespace, name: i.repository.name }));
}

/**
 * An https URL carrying the basic-auth pair of a Flux git Secret
 * (`username`/`password`); other Secret kinds are refused with the reason.
 */
export function urlWithSecret(url: string, data: Record<string, string>, secret: string): string {
  const decode = (k: string) =>
    data[k] === undefined ? undefined : Buffer.from(data[k], "base64").toString();
  const password = decode("password");
  if (password === undefined) {
    const has = Object.keys(data).sort().join(", ") || "no keys";
    throw new Error(
      `secret ${secret} has ${has}; the shipmate agent reads "username" and "password" (basic auth over https)`,
    );
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`secret ${secret}: basic auth needs an http(s) URL, got ${url}`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:")
    throw new Error(`secret ${secret}: basic auth needs an http(s) URL, got ${u.protocol}//`);
  registerSecret(password);
  u.username = decode("username") || "git";
  u.password = password;
  return u.toString();
}

/**
 * A digest of the checked-out tree: sha256 over `git ls-tree -r` (mode,
 * object id and path of every file), so equal trees have equal digests
 * whatever commit carries them, at the cost of one local git command.
 */
export function treeDigest(dir: string, commit: string): string {
  // A commit id names one tree for good: each pass asks again for the same one.
  const key = /^[0-9a-f]{40,64}$/.test(commit) ? `${dir}\0${commit}` : undefined;
  const known = key && digests.get(key);
  if (known) return known;
  const listing = execFileSync("git", ["ls-tree", "-r", "--full-tree", commit], {
    cwd: dir,
    maxBuffer: 256 * 1024 * 1024,
  });
  const digest = `sha256:${createHash("sha256").update(listing).digest("hex")}`;
  if (key) {
    if (digests.size >= 256) digests.delete(digests.keys().next().value as string);
    digests.set(key, digest);
  }
  return digest;
}
const digests = new Map<string, string>();

/**
 * What a GitRepository spec asks of a checkout (sparse directories,
 * submodules, signature verification with the keys of its Secret), the
 * conditions a successful fetch then records (`SourceVerified`) and the
 * observations source-controller writes in status. Shared by the fetcher
 * and the fleet's own GitRepository.
 */
export async function checkoutFor(
  spec: Pick<GitRepositorySpec, "sparseCheckout" | "recurseSubmodules" | "verify">,
  secret: (name: string) => Promise<Record<string, string>>,
  authHeader?: string,
): Promise<{
  options: CheckoutOptions;
  conditions: () => StatusCondition[];
  status: Record<string, unknown>;
}> {
  let verified: StatusCondition | undefined;
  let check: ((f: FetchedRef) => Promise<void>) | undefined;
  const verify = spec.verify;
  if (verify) {
    let keys: Record<string, string>;
    try {
      keys = await secret(verify.secretRef.name);
    } catch (err) {
      const message = `public keys secret error: ${(err as Error).message}`;
      throw new SourceError("VerificationError", message, {
        conditions: [{ type: SOURCE_VERIFIED, status: "False", reason: "VerificationError", message }],
      });
    }
    check = async (fetched) => {
      verified = await verifyFetched(fetched, verify.mode, keys);
    };
  }
  return {
    options: {
      ...(spec.sparseCheckout?.length ? { sparse: spec.sparseCheckout } : {}),
      ...(spec.recurseSubmodules ? { submodules: authHeader ? { authHeader } : {} } : {}),
      ...(check ? { check } : {}),
    },
    conditions: () => (verified ? [verified] : []),
    status: {
      observedRecurseSubmodules: spec.recurseSubmodules ? true : null,
      observedSparseCheckout: spec.sparseCheckout?.length ? spec.sparseCheckout : null,
      sourceVerificationMode: verify ? normalMode(verify.mode) : null,
    },
  };
}

class GitFetcher implements SourceFetcher<GitRepositorySpec> {
  private readonly dir: string;
  private source: GitSource | undefined;
  /** With includes: the composed tree and what it holds (anything else is a render's and goes). */
  private composed: { dir: string; keep: Set<string> } | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  async fetch(spec: GitRepositorySpec, ctx: FetchContext): Promise<Artifact> {
    const ref = gitRefOf(spec);
    let url = spec.url;
    let authHeader: string | undefined;
    if (spec.secretRef) {
      try {
        const data = await ctx.secret(spec.secretRef.name);
        url = urlWithSecret(url, data, spec.secretRef.name);
        authHeader = basicAuthHeader(data);
      } catch (err) {
        throw new SourceError("AuthenticationFailed", (err as Error).message, { cause: err });
      }
    }
    const includes = await this.resolveIncludes(spec, ctx);
    const checkout = await checkoutFor(spec, (name) => ctx.secret(name), authHeader);
    if (url !== this.source?.url || JSON.stringify(ref) !== JSON.stringify(this.source.ref))
      this.source = new GitSource({ url, branch: "", ref, workdir: this.dir });
    const artifact = await this.source.fetch(spec.ignore, checkout.options);
    const own = treeDigest(this.source.dir, artifact.commit ?? "HEAD");
    let dir = artifact.dir;
    if (includes.length) {
      const out = join(this.dir, "artifact");
      composeArtifact(this.source.dir, out, includes);
      applySourceIgnore(out, spec.ignore);
      this.composed = { dir: out, keep: treePaths(listTree(out)) };
      dir = out;
    } else this.composed = undefined;
    const included = (spec.include ?? []).map(
      (i) =>
        ctx.lookup({ kind: "GitRepository", namespace: ctx.namespace, name: i.repository.name })?.status
          ?.artifact,
    );
    return {
      ...artifact,
      dir,
      digest: composedDigest(own, includes),
      conditions: checkout.conditions(),
      status: {
        ...checkout.status,
        includedArtifacts: includes.length && included.every(Boolean) ? included : null,
        observedInclude: spec.include?.length ? spec.include : null,
      },
    };
  }

  /** Each included GitRepository's artifact, fetched when due; one without is IncludeUnavailable. */
  private async resolveIncludes(spec: GitRepositorySpec, ctx: FetchContext): Promise<ResolvedInclude[]> {
    const out: ResolvedInclude[] = [];
    for (const incl of spec.include ?? []) {
      const name = incl.repository.name;
      const ref = { kind: "GitRepository", namespace: ctx.namespace, name };
      const found = ctx.lookup(ref);
      const res = found ? await ctx.resolve(ref) : undefined;
      if (!res?.ok) {
        const [reason, message] = found
          ? ["NoArtifact", `no artifact available for include '${name}'${res ? `: ${res.message}` : ""}`]
          : [
              "NotFound",
              `could not get resource for include '${name}': GitRepository ${ctx.namespace}/${name} not found`,
            ];
        throw new SourceError(reason, message, {
          conditions: [{ type: INCLUDE_UNAVAILABLE, status: "True", reason, message }],
        });
      }
      const { from, to } = includePaths(incl);
      out.push({
        name,
        from,
        to,
        dir: res.artifact.dir,
        revision: res.artifact.revision,
        ...(res.artifact.digest ? { digest: res.artifact.digest } : {}),
      });
    }
    return out;
  }

  async clean(): Promise<void> {
    if (this.composed) pruneTree(this.composed.dir, this.composed.keep);
    else await this.source?.clean();
  }
}

export const gitRepositoryHandler: SourceHandler<GitRepositorySpec> = {
  kind: "GitRepository",
  apiVersion: SOURCE_API_VERSION,
  plural: "gitrepositories",
  failureReason: "GitOperationFailed",
  writesStatus: true,
  holds: "manifests",
  fields: GIT_REPOSITORY_FIELDS,
  parse: (spec) => parseWith(GitRepositorySpec, spec),
  interval: (spec) => spec.interval,
  suspended: (spec) => spec.suspend === true,
  signature: (spec) => ({ url: spec.url, ref: gitRefOf(spec), secret: spec.secretRef?.name ?? null }),
  dependencies: (spec, namespace) => includedRefs(spec, namespace),
  conditionTypes: [SOURCE_VERIFIED, INCLUDE_UNAVAILABLE],
  open: (dir) => new GitFetcher(dir),
};
