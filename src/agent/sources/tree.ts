/**
 * The tree an OCI layer or a bucket was unpacked into, kept pristine
 * between renders: the agent writes kustomization files into it, and each
 * render must start from exactly what the source held.
 */
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

/** Every path of the tree and each of its parent folders (`a/b/c.yaml` → `a`, `a/b`, `a/b/c.yaml`). */
export function treePaths(paths: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const p of paths) {
    const parts = p.replace(/\/$/, "").split("/");
    for (let i = 1; i <= parts.length; i++) out.add(parts.slice(0, i).join("/"));
  }
  return out;
}

/** Removes from `root` whatever `keep` does not name (files a render generated). */
export function pruneTree(root: string | undefined, keep: ReadonlySet<string>): void {
  if (!root || !existsSync(root)) return;
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const path = rel ? `${rel}/${name}` : name;
      if (!keep.has(path)) rmSync(join(root, path), { recursive: true, force: true });
      else if (statSync(join(root, path)).isDirectory()) walk(path);
    }
  };
  walk("");
}
