/**
 * The one walk of a fleet tree: which files under a folder shipmate looks
 * at, and reading one of them. The update engine, the policy load, validate,
 * promote and the dashboard all list files here, under one set of rules:
 * - `.git` is never entered. Other hidden folders are walked like any other:
 *   Flux's image automation rewrites markers in them and Flux's source
 *   artifact carries them, so skipping them would leave files Flux updates
 *   unread (what Flux leaves out of its artifact is validate's own filter).
 * - Symlinks are never followed, file or folder. A link that resolves inside
 *   the root is skipped quietly (its target is listed under its own path); a
 *   link out of the root, a loop and a dangling link are reported.
 * - A file over the size bound (src/config/limits.ts) is reported, not listed;
 *   past the bound on the number of files the walk stops and says so.
 * - Reading a listed file: binary and non-UTF-8 files are reported, not read.
 * Lives in config/ because every engine that walks (update, validate,
 * promote, the dashboard) already imports config/, and config/ imports none
 * of them: the arrow runs downwards.
 */
import { lstatSync, readdirSync, readFileSync, realpathSync, type Stats, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { MAX_FILE_BYTES, MAX_TREE_FILES } from "./limits.ts";

/** A file found by the walk, not read yet. */
export interface TreeFile {
  /** Relative to the walked root, `/`-separated. */
  path: string;
  size: number;
  /** Identity when walked (inode, size, mtime), checked again before the file is replaced. */
  stamp: string;
}

/** Why a file was left out; the kinds are the update engine's (src/manifest/types.ts). */
export interface TreeProblem {
  file: string;
  kind: "symlink" | "too-large" | "unreadable" | "binary" | "not-utf8";
  severity: "error" | "warning";
  message: string;
}

export interface TreeWalk {
  /** The root with symlinks resolved: every file lies under it. */
  realRoot: string;
  /** In path order. */
  files: TreeFile[];
  problems: TreeProblem[];
}

export interface WalkOptions {
  /** Folder (relative to the root) to walk; the whole tree by default. It must lie inside the root. */
  subdir?: string;
  maxFileBytes?: number;
  /** Files listed at most; past it the walk stops with one problem. */
  maxFiles?: number;
  /** Which file names are listed (default: Flux's, `isYamlName`). */
  match?: (name: string) => boolean;
  /**
   * A caller's own exclusions (validate's: chart templates, what Flux leaves
   * out of its artifact). `names` are the entries of the folder holding
   * `path`. It can only narrow the walk: the rules above always hold.
   */
  skip?: (path: string, isDir: boolean, names: ReadonlySet<string>) => boolean;
}

/** Flux's image automation's YAML files (`.yaml`, `.yml`) and kustomize's `Kustomization`. */
export function isYamlName(name: string): boolean {
  return name.endsWith(".yaml") || name.endsWith(".yml") || name === "Kustomization";
}

/** YAML in any case (the policy load's: `app.YML` holds policies too), and `Kustomization`. */
export function isYamlAnyCase(name: string): boolean {
  return /\.ya?ml$/i.test(name) || name === "Kustomization";
}

export function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

export function stampOf(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

function toPosix(p: string): string {
  return sep === "/" ? p : p.split(sep).join("/");
}

function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** What a symlink at `full` is: a problem when it points out of `realRoot` or nowhere, else nothing. */
function linkProblem(realRoot: string, full: string, rel: string, listed: boolean): TreeProblem | undefined {
  let target: string;
  try {
    target = realpathSync(full);
  } catch (err) {
    // A dangling link or a loop can only matter where a file of that name would be listed.
    if (!listed) return undefined;
    const code = (err as NodeJS.ErrnoException).code;
    return {
      file: rel,
      kind: "symlink",
      severity: "warning",
      message: code === "ELOOP" ? "symlink loop; skipped" : "dangling symlink; skipped",
    };
  }
  if (inside(realRoot, target)) return undefined;
  // A link out of the root is reported where it could have been read: a listed name, or a folder.
  if (!listed && !statSync(full, { throwIfNoEntry: false })?.isDirectory()) return undefined;
  return {
    file: rel,
    kind: "symlink",
    severity: "warning",
    message: "symlink points outside the repository; not followed",
  };
}

/**
 * Walks `root/subdir` and lists the matching files in path order, without
 * reading them; links, files over the size bound and a walk over the file
 * bound are reported. Synchronous: a fleet has thousands of small folders,
 * and direct system calls beat the thread pool's round trips.
 */
export function walkTree(root: string, opts: WalkOptions = {}): TreeWalk {
  const realRoot = realpathSync(root);
  const maxBytes = opts.maxFileBytes ?? MAX_FILE_BYTES;
  const maxFiles = opts.maxFiles ?? MAX_TREE_FILES;
  const match = opts.match ?? isYamlName;
  const result: TreeWalk = { realRoot, files: [], problems: [] };
  const problem = (
    file: string,
    kind: TreeProblem["kind"],
    severity: TreeProblem["severity"],
    message: string,
  ) => result.problems.push({ file, kind, severity, message });
  const start = resolve(realRoot, opts.subdir ?? ".");
  if (!inside(realRoot, start) || (start !== realRoot && !inside(realRoot, realpathOr(start)))) {
    problem(opts.subdir ?? ".", "symlink", "error", "path is outside the repository");
    return result;
  }

  const stack = [start];
  walking: while (stack.length > 0) {
    const dir = stack.pop() as string;
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      problem(toPosix(relative(realRoot, dir)) || ".", "unreadable", "error", (err as Error).message);
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const names = opts.skip ? new Set(entries.map((e) => e.name)) : undefined;
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i] as import("node:fs").Dirent;
      const full = join(dir, e.name);
      const rel = toPosix(relative(realRoot, full));
      if (e.isDirectory()) {
        if (e.name === ".git" || opts.skip?.(rel, true, names as Set<string>)) continue;
        stack.push(full);
        continue;
      }
      if (e.isSymbolicLink()) {
        const found = linkProblem(realRoot, full, rel, match(e.name));
        if (found) result.problems.push(found);
        continue;
      }
      if (!e.isFile() || !match(e.name) || opts.skip?.(rel, false, names as Set<string>)) continue;
      let st: Stats;
      try {
        st = lstatSync(full);
      } catch (err) {
        problem(rel, "unreadable", "error", (err as Error).message);
        continue;
      }
      if (st.size > maxBytes) {
        problem(
          rel,
          "too-large",
          "warning",
          `file is ${st.size} bytes, over the ${maxBytes}-byte bound; skipped`,
        );
        continue;
      }
      if (result.files.length >= maxFiles) {
        problem(
          toPosix(relative(realRoot, start)) || ".",
          "too-large",
          "error",
          `the tree holds more than ${maxFiles} files to read, the bound; the rest are skipped`,
        );
        break walking;
      }
      result.files.push({ path: rel, size: st.size, stamp: stampOf(st) });
    }
  }
  // The stack visits folders depth first in reverse; files are listed in path order.
  result.files.sort(byPath);
  return result;
}

/** `p` with symlinks resolved; `p` itself when it does not exist. */
export function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * The one file at `path` (relative to `realRoot`) under the walk's rules,
 * as a later walk would find it: listed, reported, or neither (gone, not a
 * matching name, under `.git`). For refreshing a walk after a run changed
 * some of its files.
 */
export function entryAt(
  realRoot: string,
  path: string,
  opts: Pick<WalkOptions, "maxFileBytes" | "match"> = {},
): { file?: TreeFile; problem?: TreeProblem } {
  const parts = path.split("/");
  const name = parts.at(-1) ?? "";
  if (parts.includes(".git") || !(opts.match ?? isYamlName)(name)) return {};
  const full = join(realRoot, ...parts);
  // A folder on the way that is a link is never entered.
  if (!inside(realRoot, realpathOr(join(full, "..")))) return {};
  const st = lstatSync(full, { throwIfNoEntry: false });
  if (!st) return {};
  if (st.isSymbolicLink()) {
    const found = linkProblem(realRoot, full, path, true);
    return found ? { problem: found } : {};
  }
  if (!st.isFile()) return {};
  const max = opts.maxFileBytes ?? MAX_FILE_BYTES;
  if (st.size > max)
    return {
      problem: {
        file: path,
        kind: "too-large",
        severity: "warning",
        message: `file is ${st.size} bytes, over the ${max}-byte bound; skipped`,
      },
    };
  return { file: { path, size: st.size, stamp: stampOf(st) } };
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Reads one listed file as text; a problem when it cannot be read, is binary, or is not UTF-8. */
export function readTreeFile(realRoot: string, file: TreeFile): { text: string } | { problem: TreeProblem } {
  const problem = (kind: TreeProblem["kind"], severity: TreeProblem["severity"], message: string) => ({
    problem: { file: file.path, kind, severity, message },
  });
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(realRoot, file.path));
  } catch (err) {
    return problem("unreadable", "error", (err as Error).message);
  }
  if (bytes.subarray(0, 8192).includes(0)) return problem("binary", "warning", "binary file; skipped");
  try {
    return { text: utf8.decode(bytes) };
  } catch {
    return problem("not-utf8", "warning", "not UTF-8 text; skipped");
  }
}

/**
 * Where a run's files come from: a walk of the tree and the reading of one
 * file. src/config/context.ts's FleetContext is one (one walk, each file
 * read once per run); `diskTree` walks and reads afresh each time.
 */
export interface TreeSource {
  /** The files under `subdir` (all of them without), with the walk's problems there. */
  list(opts?: Pick<WalkOptions, "subdir" | "maxFileBytes" | "match">): TreeWalk;
  /** `keep`: whether the run keeps this text for its later readers (a FleetContext does; the disk needs not). */
  read(
    file: TreeFile,
    opts?: { keep?: (text: string) => boolean },
  ): { text: string } | { problem: TreeProblem };
}

/** A source that walks and reads the disk each time it is asked. */
export function diskTree(root: string): TreeSource {
  let realRoot: string | undefined;
  return {
    list: (opts = {}) => {
      const walked = walkTree(root, opts);
      realRoot = walked.realRoot;
      return walked;
    },
    read: (file) => {
      realRoot ??= realpathSync(root);
      return readTreeFile(realRoot, file);
    },
  };
}
