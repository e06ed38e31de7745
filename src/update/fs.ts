/**
 * The I/O side of `src/update`: reading the files of a walked tree and
 * writing results back atomically. Which files are looked at (no `.git`, no
 * symlink followed, size and count bounds) is src/config/tree.ts's one walk;
 * here a walked file is read when the engine needs to see it, and a file
 * whose write bits are all off is reported instead of written, even for root.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fstatSync,
  lstatSync,
  openSync,
  realpathSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { MAX_FILE_BYTES } from "../config/limits.ts";
import { diskTree, inside, stampOf, type TreeFile, type TreeSource } from "../config/tree.ts";
import type { SourceFile } from "../manifest/apply.ts";
import { mayContainMarker } from "../manifest/marker.ts";
import type { FileUpdate, Problem } from "../manifest/types.ts";

/** Larger files are reported, not read: no manifest is this big, and parsing one would take the memory of many. */
export const DEFAULT_MAX_FILE_BYTES = MAX_FILE_BYTES;

/** A YAML file found by the walk, not read yet (src/config/tree.ts). */
export type Candidate = TreeFile;
export type { TreeSource };

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

/**
 * One walked file as the engine needs it: its text when it is UTF-8 YAML
 * the engine must see (a marker in it, or a policy claims it), nothing when
 * it needs not be seen, a problem when it cannot be read or is binary or
 * not UTF-8.
 */
export function readCandidate(
  source: Pick<TreeSource, "read">,
  c: Candidate,
  claimed?: (path: string) => boolean,
): { file?: SourceFile; problem?: Problem } {
  const read = source.read(c);
  if ("problem" in read) return { problem: read.problem };
  const content = read.text;
  return mayContainMarker(content) || claimed?.(c.path) ? { file: { path: c.path, content } } : {};
}

/** Walks `root/subdir` (or lists it from a run's FleetContext) and returns the YAML files the engine needs to see. */
export function readTree(root: string | TreeSource, opts: ReadOptions = {}): ReadResult {
  const source = typeof root === "string" ? diskTree(root) : root;
  const walked = source.list({
    ...(opts.subdir !== undefined ? { subdir: opts.subdir } : {}),
    ...(opts.maxFileBytes !== undefined ? { maxFileBytes: opts.maxFileBytes } : {}),
  });
  const result: ReadResult = {
    files: [],
    problems: [...walked.problems],
    scanned: walked.files.length,
    stamps: new Map(),
  };
  for (const c of walked.files) {
    const { file, problem } = readCandidate(source, c, opts.claimed);
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
