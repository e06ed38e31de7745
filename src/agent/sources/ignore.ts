/**
 * Applies Flux's artifact exclusions (../../validate/sourceignore.ts, the
 * matcher `validate` uses too) to a checked-out tree the agent owns: every
 * file source-controller would leave out of the artifact is removed from
 * the working copy, so a render sees the files Flux's kustomize-controller
 * would. As Flux's archiver does, each file is judged by its own path. The
 * next checkout restores them (it is forced).
 */
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { sourceIgnoreMatcher } from "../../validate/sourceignore.ts";

/** Removes every file the rules exclude; returns how many went. */
export function applySourceIgnore(root: string, specIgnore?: string): number {
  const excluded = sourceIgnoreMatcher(root, specIgnore);
  let removed = 0;
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      // The working copy's own .git stays: the fetcher needs it (it is never rendered).
      if (!rel && e.name === ".git") continue;
      if (e.isDirectory()) walk(p);
      else if (excluded(p)) {
        rmSync(join(root, p), { force: true });
        removed++;
      }
    }
  };
  walk("");
  return removed;
}
