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
import type { SourceFile } from "./apply.ts";
import { mayContainMarker } from "./marker.ts";
import type { FileUpdate, Problem } from "./types.ts";

/** Larger files are reported, not read: no manifest is this big, and parsing one would take the memory of many. */
export const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;

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

/** Walks `root/subdir` (never into `.git`) and returns the YAML files the engine needs to see. */
export function readTree(root: string, opts: ReadOptions = {}): ReadResult {
  const realRoot = realpathSync(root);
  const max = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const result: ReadResult = { files: [], problems: [], scanned: 0, stamps: new Map() };
  const start = resolve(realRoot, opts.subdir ?? ".");
  if (!inside(realRoot, start)) {
    result.problems.push({
      file: opts.subdir ?? ".",
      kind: "symlink",
      severity: "error",
      message: "path is outside the repository",
    });
    return result;
  }
  const problem = (file: string, kind: Problem["kind"], severity: Problem["severity"], message: string) =>
    result.problems.push({ file, kind, severity, message });

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
      const rel = toPosix(relative(realRoot, full));
      if (e.isDirectory()) {
        if (e.name !== ".git") stack.push(full);
        continue;
      }
      if (e.isSymbolicLink()) {
        if (!isYamlName(e.name)) continue;
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
      if (!e.isFile() || !isYamlName(e.name)) continue;
      result.scanned++;
      let size: number;
      let stamp: string;
      try {
        const st = lstatSync(full);
        size = st.size;
        stamp = stampOf(st);
      } catch (err) {
        problem(rel, "unreadable", "error", (err as Error).message);
        continue;
      }
      if (size > max) {
        problem(rel, "too-large", "warning", `file is ${size} bytes, over the ${max}-byte bound; skipped`);
        continue;
      }
      let bytes: Buffer;
      try {
        bytes = readFileSync(full);
      } catch (err) {
        problem(rel, "unreadable", "error", (err as Error).message);
        continue;
      }
      if (bytes.subarray(0, 8192).includes(0)) {
        problem(rel, "binary", "warning", "binary file; skipped");
        continue;
      }
      let content: string;
      try {
        content = utf8.decode(bytes);
      } catch {
        problem(rel, "not-utf8", "warning", "not UTF-8 text; skipped");
        continue;
      }
      if (mayContainMarker(content) || opts.claimed?.(rel)) {
        result.files.push({ path: rel, content });
        result.stamps.set(rel, stamp);
      }
    }
  }
  return result;
}

export interface WriteResult {
  written: string[];
  problems: Problem[];
}

/**
 * Writes each updated file atomically (temporary file in the same directory,
 * then rename), keeping its mode. Every file is checked before any is
 * written: one that is read-only, no longer a regular file inside the
 * repository, or changed since it was read is reported and left alone.
 */
export function writeUpdates(
  root: string,
  updates: readonly FileUpdate[],
  stamps: ReadonlyMap<string, string>,
): WriteResult {
  const realRoot = realpathSync(root);
  const out: WriteResult = { written: [], problems: [] };
  const realDirs = new Map<string, string>();
  const realDir = (d: string) => {
    let r = realDirs.get(d);
    if (r === undefined) {
      r = realpathSync.native(d);
      realDirs.set(d, r);
    }
    return r;
  };
  const ready: { full: string; mode: number; content: string; path: string }[] = [];
  for (const u of updates) {
    if (u.content === undefined) continue;
    const full = resolve(realRoot, u.path);
    const fail = (kind: Problem["kind"], message: string) =>
      out.problems.push({ file: u.path, kind, severity: "error", message });
    let st: import("node:fs").Stats;
    try {
      st = lstatSync(full);
    } catch (err) {
      fail("unreadable", (err as Error).message);
      continue;
    }
    if (!st.isFile() || !inside(realRoot, realDir(dirname(full)) + sep + basename(full))) {
      fail("symlink", "no longer a regular file inside the repository; not written");
      continue;
    }
    if ((st.mode & 0o222) === 0) {
      fail("read-only", "file is read-only; not written");
      continue;
    }
    const stamp = stamps.get(u.path);
    if (stamp !== undefined && stampOf(st) !== stamp) {
      fail("unreadable", "file changed while shipmate was updating it; not written");
      continue;
    }
    ready.push({ full, mode: st.mode & 0o7777, content: u.content, path: u.path });
  }
  for (const r of ready) {
    const tmp = join(dirname(r.full), `.${basename(r.full)}.shipmate-${randomBytes(6).toString("hex")}`);
    try {
      const fd = openSync(tmp, "wx", r.mode);
      try {
        // No fsync: rename-over is atomic for readers, and a crash leaves the old file or the new one in a
        // git checkout that can be re-run; an fsync per file would cost more than the whole update.
        writeSync(fd, r.content);
        // The umask may have narrowed the mode given to open.
        fchmodSync(fd, r.mode);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, r.full);
      out.written.push(r.path);
    } catch (err) {
      rmSync(tmp, { force: true });
      out.problems.push({
        file: r.path,
        kind: "unreadable",
        severity: "error",
        message: (err as Error).message,
      });
    }
  }
  return out;
}
