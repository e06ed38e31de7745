/**
 * The I/O side of `src/update`: finding the files to read under a directory
 * and writing results back atomically. Symlinks are never followed (a link
 * inside the repository is skipped because its target is visited under its
 * own path; a link out of it is reported), files over a size bound are never
 * read, binary and non-UTF-8 files are skipped, and a file whose write bits
 * are all off is reported instead of written, even for root.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { MAX_FILE_BYTES } from "../config/limits.ts";
import type { SourceFile } from "../manifest/apply.ts";
import { mayContainMarker } from "../manifest/marker.ts";
import type { FileUpdate, Problem } from "../manifest/types.ts";

/** Larger files are reported, not read: no manifest is this big, and parsing one would take the memory of many. */
export const DEFAULT_MAX_FILE_BYTES = MAX_FILE_BYTES;

export interface ReadOptions {
  /** Directory (relative to root) to look under; the whole tree by default. */
  subdir?: string;
  maxFileBytes?: number;
  /** Files a native policy claims by path are read even without a marker. */
  claimed?: (path: string) => boolean;
}

export interface ReadResult {
  /** Candidate files only: YAML files with a marker or claimed by a policy. */
  files: SourceFile[];
  problems: Problem[];
  /** YAML files looked at (for reporting). */
  scanned: number;
  /** Identity of each returned file when read (inode, size, mtime), to notice a change before writing. */
  stamps: Map<string, string>;
}

/** A YAML file found by the walk, not read yet. */
export interface Candidate {
  /** Repository-relative, `/`-separated. */
  path: string;
  size: number;
  /** Identity when walked (inode, size, mtime), checked again before the file is replaced. */
  stamp: string;
}

export interface WalkResult {
  /** The root with symlinks resolved: every candidate lies under it. */
  realRoot: string;
  candidates: Candidate[];
  problems: Problem[];
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function isYamlName(name: string): boolean {
  return name.endsWith(".yaml") || name.endsWith(".yml") || name === "Kustomization";
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

function stampOf(st: import("node:fs").Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

function toPosix(p: string): string {
  return sep === "/" ? p : p.split(sep).join("/");
}

/**
 * Walks `root/subdir` (never into `.git`, never through a symlink) and lists
 * the YAML files in it, in path order, without reading them; files over the
 * size bound and links are reported here.
 */
export function walkTree(root: string, opts: Omit<ReadOptions, "claimed"> = {}): WalkResult {
  const realRoot = realpathSync(root);
  const max = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const result: WalkResult = { realRoot, candidates: [], problems: [] };
  const start = resolve(realRoot, opts.subdir ?? ".");
  const problem = (file: string, kind: Problem["kind"], severity: Problem["severity"], message: string) =>
    result.problems.push({ file, kind, severity, message });
  if (!inside(realRoot, start)) {
    problem(opts.subdir ?? ".", "symlink", "error", "path is outside the repository");
    return result;
  }

  const stack = [start];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      problem(toPosix(relative(realRoot, dir)) || ".", "unreadable", "error", (err as Error).message);
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i] as import("node:fs").Dirent;
      const full = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== ".git") stack.push(full);
        continue;
      }
      if (!isYamlName(e.name) || !(e.isFile() || e.isSymbolicLink())) continue;
      const rel = toPosix(relative(realRoot, full));
      if (e.isSymbolicLink()) {
        let target: string;
        try {
          target = realpathSync(full);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          problem(
            rel,
            "symlink",
            "warning",
            code === "ELOOP" ? "symlink loop; skipped" : "dangling symlink; skipped",
          );
          continue;
        }
        if (!inside(realRoot, target))
          problem(rel, "symlink", "warning", "symlink points outside the repository; not followed");
        continue;
      }
      let st: import("node:fs").Stats;
      try {
        st = lstatSync(full);
      } catch (err) {
        problem(rel, "unreadable", "error", (err as Error).message);
        continue;
      }
      if (st.size > max) {
        problem(rel, "too-large", "warning", `file is ${st.size} bytes, over the ${max}-byte bound; skipped`);
        continue;
      }
      result.candidates.push({ path: rel, size: st.size, stamp: stampOf(st) });
    }
  }
  // The stack visits directories depth first in reverse; files are listed in path order.
  result.candidates.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return result;
}

/**
 * Reads one walked file: its text when it is UTF-8 YAML the engine needs to
 * see (a marker in it, or a policy claims it), nothing when it needs not be
 * seen, a problem when it cannot be read or is binary or not UTF-8.
 */
export function readCandidate(
  realRoot: string,
  c: Candidate,
  claimed?: (path: string) => boolean,
): { file?: SourceFile; problem?: Problem } {
  const problem = (kind: Problem["kind"], severity: Problem["severity"], message: string) => ({
    problem: { file: c.path, kind, severity, message },
  });
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(realRoot, c.path));
  } catch (err) {
    return problem("unreadable", "error", (err as Error).message);
  }
  if (bytes.subarray(0, 8192).includes(0)) return problem("binary", "warning", "binary file; skipped");
  let content: string;
  try {
    content = utf8.decode(bytes);
  } catch {
    return problem("not-utf8", "warning", "not UTF-8 text; skipped");
  }
  return mayContainMarker(content) || claimed?.(c.path) ? { file: { path: c.path, content } } : {};
}

/** Walks `root/subdir` (never into `.git`) and returns the YAML files the engine needs to see. */
export function readTree(root: string, opts: ReadOptions = {}): ReadResult {
  const walked = walkTree(root, opts);
  const result: ReadResult = {
    files: [],
    problems: walked.problems,
    scanned: walked.candidates.length,
    stamps: new Map(),
  };
  for (const c of walked.candidates) {
    const { file, problem } = readCandidate(walked.realRoot, c, opts.claimed);
    if (problem) result.problems.push(problem);
    if (!file) continue;
    result.files.push(file);
    result.stamps.set(c.path, c.stamp);
  }
  return result;
}

export interface WriteResult {
  written: string[];
  problems: Problem[];
}

/**
 * Replaces files under one repository root atomically, in two phases: each
 * file is checked and its new content written to a temporary file beside it
 * (`stage`), then every staged file is renamed over its original (`commit`).
 * A file that is read-only, no longer a regular file inside the repository,
 * or changed since it was read (its stamp differs) is reported and left
 * alone; the others are written.
 *
 * Staging everything before replacing anything keeps the replacements
 * together at the end of a run, and keeps the new inodes apart from the
 * freed ones: on ext4 without a journal, allocating an inode skips every
 * inode of its group freed in the last minute (five while the inode table
 * block is dirty), so a create after each replace grew quadratic over a
 * large tree (7 s of kernel time for 10,000 files, measured).
 */
export class AtomicWriter {
  private readonly realRoot: string;
  private readonly realDirs = new Map<string, string>();
  /** Whether the umask narrows a file mode given to open (the umask is the process's, so once per mode). */
  private readonly narrowed = new Map<number, boolean>();
  private readonly prefix = randomBytes(4).toString("hex");
  private counter = 0;
  /** Staged files, in order: the temporary file and the file it replaces. */
  private readonly staged: { path: string; tmp: string; full: string }[] = [];
  /**
   * Set when the filesystem itself refused a write (full, over quota,
   * read-only): no file of the run is written then, and this is the one
   * problem reported for them all.
   */
  private refusedBy: Problem | undefined;

  /** The filesystem's refusal, when one stopped the staging. */
  get fsProblem(): Problem | undefined {
    return this.refusedBy;
  }

  /** `realRoot`: the root with symlinks resolved (walkTree's `realRoot`). */
  constructor(realRoot: string) {
    this.realRoot = realRoot;
  }

  private realDir(d: string): string {
    let r = this.realDirs.get(d);
    if (r === undefined) {
      r = realpathSync.native(d);
      this.realDirs.set(d, r);
    }
    return r;
  }

  /** Checks `path` (repository-relative) and writes `content` beside it; a problem when it will not be written. */
  stage(path: string, content: string, stamp: string | undefined): Problem | undefined {
    // After the filesystem refused one write, the rest are not tried: the run writes nothing.
    if (this.refusedBy) return undefined;
    const full = resolve(this.realRoot, path);
    const fail = (kind: Problem["kind"], message: string): Problem => ({
      file: path,
      kind,
      severity: "error",
      message,
    });
    let st: import("node:fs").Stats;
    try {
      st = lstatSync(full);
    } catch (err) {
      return fail("unreadable", (err as Error).message);
    }
    if (!st.isFile() || !inside(this.realRoot, this.realDir(dirname(full)) + sep + basename(full)))
      return fail("symlink", "no longer a regular file inside the repository; not written");
    if ((st.mode & 0o222) === 0) return fail("read-only", "file is read-only; not written");
    if (stamp !== undefined && stampOf(st) !== stamp)
      return fail("unreadable", "file changed while shipmate was updating it; not written");
    const mode = st.mode & 0o7777;
    const tmp = join(
      dirname(full),
      `.${basename(full)}.shipmate-${this.prefix}${(this.counter++).toString(36)}`,
    );
    try {
      const fd = openSync(tmp, "wx", mode);
      try {
        // No fsync: rename-over is atomic for readers, and a crash leaves the old file or the new one in a
        // git checkout that can be re-run; an fsync per file would cost more than the whole update.
        writeSync(fd, content);
        // The umask may have narrowed the mode given to open: learnt once per mode, mended where it did.
        let narrowed = this.narrowed.get(mode);
        if (narrowed === undefined) {
          narrowed = (fstatSync(fd).mode & 0o7777) !== mode;
          this.narrowed.set(mode, narrowed);
        }
        if (narrowed) fchmodSync(fd, mode);
      } finally {
        closeSync(fd);
      }
      this.staged.push({ path, tmp, full });
      return undefined;
    } catch (err) {
      rmSync(tmp, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOSPC" || code === "EDQUOT" || code === "EROFS") {
        this.refusedBy = fail("unreadable", `${(err as Error).message}; no file was written`);
        this.discard();
        return undefined;
      }
      return fail("unreadable", (err as Error).message);
    }
  }

  /** Removes every staged file: the originals stay as they are. */
  discard(): void {
    for (const { tmp } of this.staged.splice(0)) rmSync(tmp, { force: true });
  }

  /**
   * Stages `[path, content, stamp]` of each file, then commits them all; the problems of the files not
   * written. When the filesystem refuses a write, nothing is written and that is the one problem.
   */
  replace(files: Iterable<readonly [string, string, string | undefined]>): Problem[] {
    const problems: Problem[] = [];
    for (const [path, content, stamp] of files) {
      const problem = this.stage(path, content, stamp);
      if (problem) problems.push(problem);
    }
    if (this.refusedBy) return [this.refusedBy];
    problems.push(...this.commit());
    return problems;
  }

  /** Renames every staged file over its original; the problems of those that could not be. */
  commit(): Problem[] {
    const problems: Problem[] = [];
    for (const { path, tmp, full } of this.staged.splice(0)) {
      try {
        renameSync(tmp, full);
      } catch (err) {
        rmSync(tmp, { force: true });
        problems.push({ file: path, kind: "unreadable", severity: "error", message: (err as Error).message });
      }
    }
    return problems;
  }
}

/** Writes each updated file atomically (see AtomicWriter), keeping its mode. */
export function writeUpdates(
  root: string,
  updates: readonly FileUpdate[],
  stamps: ReadonlyMap<string, string>,
): WriteResult {
  const changed = updates.flatMap((u) =>
    u.content === undefined ? [] : [[u.path, u.content, stamps.get(u.path)] as const],
  );
  const problems = new AtomicWriter(realpathSync(root)).replace(changed);
  const failed = new Set(problems.map((p) => p.file));
  return {
    written: changed.map(([path]) => path).filter((path) => !failed.has(path)),
    problems,
  };
}
