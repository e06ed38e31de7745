/**
 * Builds an ArtifactGenerator's output artifact on disk: lists each
 * source's files, plans the copies (./copy.ts), writes them into a fresh
 * directory and digests the result. The digest covers paths and contents
 * only (as Flux's dirhash of the staging directory does), so the same
 * inputs always give the same digest and revision, whatever the directory.
 */
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { type CopyOperation, type PlannedFile, planArtifact, SourceTree } from "./copy.ts";

/** Every regular file under dir, as posix paths relative to it; `.git` is never part of an artifact. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!rel && e.name === ".git") continue;
        walk(p);
      } else if (e.isFile()) out.push(p);
    }
  };
  walk("");
  return out.sort();
}

/** sha256 over `<sha256 of content>  <path>` lines in path order. */
export function treeDigest(dir: string, files: readonly string[]): string {
  const h = createHash("sha256");
  for (const f of [...files].sort()) {
    const content = createHash("sha256")
      .update(readFileSync(join(dir, f)))
      .digest("hex");
    h.update(`${content}  ${f}\n`);
  }
  return `sha256:${h.digest("hex")}`;
}

export interface BuiltArtifact {
  digest: string;
  files: string[];
}

/**
 * Builds into `dest` (replaced whole, via a sibling staging directory, so a
 * failed build leaves the previous artifact in place).
 */
export function buildArtifact(
  sources: ReadonlyMap<string, string>,
  copy: readonly CopyOperation[],
  dest: string,
): BuiltArtifact {
  const trees = new Map<string, SourceTree>();
  for (const [alias, dir] of sources) trees.set(alias, new SourceTree(listFiles(dir)));
  const plan: PlannedFile[] = planArtifact(trees, copy);
  const staging = `${dest}.staging`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  for (const f of plan) {
    const target = join(staging, f.to);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(sources.get(f.alias) as string, f.from), target);
  }
  const files = plan.map((f) => f.to);
  const digest = treeDigest(staging, files);
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dirname(dest), { recursive: true });
  renameSync(staging, dest);
  return { digest, files };
}
