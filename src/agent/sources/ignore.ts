/**
 * Applies Flux's artifact exclusions (../../config/sourceignore.ts) to a
 * checked-out tree the agent owns: what source-controller would leave out
 * of the artifact is removed from the working copy, so a render sees the
 * same files Flux's kustomize-controller would. The next checkout restores
 * them (it is forced).
 */
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { SOURCEIGNORE_FILE, sourceIgnoreMatcher } from "../../config/sourceignore.ts";

/** `.sourceignore` files under root, by the directory holding them (`""` for root). */
function readIgnoreFiles(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = join(root, rel);
    const file = join(abs, SOURCEIGNORE_FILE);
    if (existsSync(file)) out.set(rel, readFileSync(file, "utf8"));
    for (const e of readdirSync(abs, { withFileTypes: true }))
      if (e.isDirectory() && e.name !== ".git") walk(rel ? `${rel}/${e.name}` : e.name);
  };
  walk("");
  return out;
}

/** Removes every path the rules exclude; returns how many files and directories went. */
export function applySourceIgnore(root: string, specIgnore?: string): number {
  const ignored = sourceIgnoreMatcher({ files: readIgnoreFiles(root), specIgnore });
  let removed = 0;
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      // The working copy's own .git stays: the fetcher needs it (it is never rendered).
      if (!rel && e.name === ".git") continue;
      if (ignored(e.isDirectory() ? `${p}/` : p)) {
        rmSync(join(root, p), { recursive: true, force: true });
        removed++;
      } else if (e.isDirectory()) walk(p);
    }
  };
  walk("");
  return removed;
}
