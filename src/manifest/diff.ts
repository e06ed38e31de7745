/** Unified diffs of planned updates, for `--dry-run` and review. */
import { createTwoFilesPatch } from "diff";
import type { FileUpdate } from "./types.ts";

/** One unified diff for all files, `a/`/`b/` prefixed like `git diff`. */
export function unifiedDiff(files: readonly FileUpdate[], originals: ReadonlyMap<string, string>): string {
  const out: string[] = [];
  for (const f of files) {
    if (f.content === undefined) continue;
    const before = originals.get(f.path) ?? "";
    const patch = createTwoFilesPatch(`a/${f.path}`, `b/${f.path}`, before, f.content, undefined, undefined, {
      context: 3,
    });
    // Drop the "Index:"/"===" preamble the diff package writes; keep the ---/+++ headers.
    out.push(patch.replace(/^(?:Index:.*\n)?=+\n/, ""));
  }
  return out.join("");
}
