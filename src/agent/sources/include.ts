/**
 * GitRepository `spec.include`: other GitRepositories' artifacts (or a
 * folder of them, `fromPath`) copied into this one's at `toPath` (default:
 * the included repository's name), as source-controller composes them. The
 * composed tree is built beside the working copy, so a render's generated
 * files and a failed build never touch the checkout, and the artifact's
 * digest covers what was included.
 */
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { SourceError } from "./handler.ts";

/** source.toolkit.fluxcd.io/v1 GitRepositoryInclude. */
export interface IncludeSpec {
  repository: { name: string };
  fromPath?: string;
  toPath?: string;
}

/** A path inside `root` whatever `rel` says (`..` cannot climb out), as Flux's secure join does. */
export function secureJoin(root: string, rel: string): string {
  const clean = posix.normalize(`/${rel.replaceAll("\\", "/")}`);
  return join(root, clean);
}

/** `fromPath` (default: the whole artifact) and `toPath` (default: the repository's name). */
export function includePaths(incl: IncludeSpec): { from: string; to: string } {
  return { from: incl.fromPath ?? "", to: incl.toPath || incl.repository.name };
}

export interface ResolvedInclude {
  name: string;
  from: string;
  to: string;
  /** Root of the included artifact. */
  dir: string;
  revision: string;
  digest?: string;
}

/**
 * The artifact's digest: the checkout's own tree digest and, in order, each
 * include's paths and the revision and digest of what it copied.
 */
export function composedDigest(own: string, includes: readonly ResolvedInclude[]): string {
  if (includes.length === 0) return own;
  const h = createHash("sha256").update(own);
  for (const i of includes) h.update(`\n${i.name}\0${i.from}\0${i.to}\0${i.revision}\0${i.digest ?? ""}`);
  return `sha256:${h.digest("hex")}`;
}

/** Every file and folder under `root`, relative (`a`, `a/b.yaml`). */
export function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      out.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  if (existsSync(root)) walk("");
  return out;
}

/**
 * Builds `out` afresh: the checkout (without its `.git`), then each include
 * copied in. A missing `fromPath`, or a `toPath` the tree already fills,
 * fails with Flux's reason (CopyFailure); `out` is replaced only on success.
 */
export function composeArtifact(checkout: string, out: string, includes: readonly ResolvedInclude[]): void {
  const next = `${out}.new`;
  rmSync(next, { recursive: true, force: true });
  mkdirSync(next, { recursive: true });
  cpSync(checkout, next, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => src !== join(checkout, ".git"),
  });
  for (const i of includes) {
    const from = secureJoin(i.dir, i.from);
    const to = secureJoin(next, i.to);
    const fail = (why: string) => {
      rmSync(next, { recursive: true, force: true });
      return new SourceError(
        "CopyFailure",
        `failed to copy '${i.name}' include from ${i.from || "./"} to ${i.to}: ${why}`,
      );
    };
    if (!existsSync(from)) throw fail(`${i.from} does not exist in the included artifact`);
    if (existsSync(to) && (!statSync(to).isDirectory() || readdirSync(to).length > 0))
      throw fail(`${i.to} already exists in the artifact`);
    mkdirSync(dirname(to), { recursive: true });
    cpSync(from, to, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (src) => src !== join(i.dir, ".git"),
    });
  }
  rmSync(out, { recursive: true, force: true });
  renameSync(next, out);
}
