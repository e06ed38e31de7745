/**
 * GitRepository (source.toolkit.fluxcd.io/v1): a shallow fetch of a branch,
 * a tag or the newest tag in a semver range (./../source.ts), with basic-auth
 * credentials from a Flux git Secret.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { registerSecret } from "../../errors.ts";
import type { FieldTable } from "../fields/support.ts";
import { GitRepositorySpec, SOURCE_API_VERSION } from "../schema.ts";
import { type Artifact, type GitRef, GitSource } from "../source.ts";
import {
  type FetchContext,
  parseWith,
  SourceError,
  type SourceFetcher,
  type SourceHandler,
} from "./handler.ts";

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
  "ref.name": { refused: "checking out a named reference is not implemented" },
  "ref.commit": { refused: "checking out a pinned commit is not implemented" },
  secretRef: "honoured",
  "secretRef.name": "honoured",
  provider: { refused: "only generic (Secret) authentication is implemented", accepts: ["generic"] },
  proxySecretRef: { refused: "git over a proxy is not implemented" },
  serviceAccountName: { refused: "workload-identity authentication is not implemented" },
  ignore: "honoured",
  include: { refused: "including other GitRepositories is not implemented" },
  recurseSubmodules: { refused: "submodules are not fetched" },
  sparseCheckout: { refused: "sparse checkouts are not implemented" },
  verify: { refused: "commit signature verification is not implemented" },
};

/**
 * The ref to check out, with source-controller's precedence (semver over
 * tag over branch) and its default (`master` when no ref is given).
 */
export function gitRefOf(spec: GitRepositorySpec): GitRef {
  const ref = spec.ref;
  if (ref?.semver) return { semver: ref.semver };
  if (ref?.tag) return { tag: ref.tag };
  return { branch: ref?.branch ?? "master" };
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

class GitFetcher implements SourceFetcher<GitRepositorySpec> {
  private readonly dir: string;
  private source: GitSource | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  async fetch(spec: GitRepositorySpec, ctx: FetchContext): Promise<Artifact> {
    const ref = gitRefOf(spec);
    let url = spec.url;
    if (spec.secretRef) {
      try {
        url = urlWithSecret(url, await ctx.secret(spec.secretRef.name), spec.secretRef.name);
      } catch (err) {
        throw new SourceError("AuthenticationFailed", (err as Error).message, { cause: err });
      }
    }
    if (url !== this.source?.url) this.source = new GitSource({ url, branch: "", ref, workdir: this.dir });
    const artifact = await this.source.fetch(spec.ignore);
    return { ...artifact, digest: treeDigest(this.source.dir, artifact.commit ?? "HEAD") };
  }

  async clean(): Promise<void> {
    await this.source?.clean();
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
  open: (dir) => new GitFetcher(dir),
};
