/**
 * The gzip'd tarballs inside Flux OCI artifacts: built reproducibly (the
 * same tree gives the same bytes, so the same digest), and extracted
 * defensively (an entry that would land outside the target directory, a
 * link, a device or more bytes than allowed is refused, and nothing of the
 * archive is left behind).
 *
 * Layout as fluxcd/pkg/tar writes it: entries named by their slash path
 * relative to the archived directory, directories included, uid/gid 0, no
 * user or group names, zero mtimes. We also fix modes (0755 for
 * directories and executables, 0644 for other files), so a checkout's umask
 * does not change the digest.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { ArtifactError } from "../errors.ts";

/** What `buildTarball` archived. */
export interface BuiltTarball {
  /** The gzip'd tar. */
  data: Buffer;
  /** `sha256:<hex>` of `data`: the layer digest. */
  digest: string;
  /** `sha256:<hex>` of the uncompressed tar (the image config's `rootfs.diff_ids`). */
  diffId: string;
  /** Regular files archived. */
  files: number;
}

const EPOCH = new Date(0);

/** Byte order, as Go's filepath.WalkDir visits a directory (and so as Flux archives it). */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Every entry under `dir`, depth first in byte order; symlinks and special files are refused. */
async function walk(root: string, rel = ""): Promise<{ rel: string; dir: boolean; exec: boolean }[]> {
  const out: { rel: string; dir: boolean; exec: boolean }[] = [];
  const names = (await readdir(join(root, rel))).sort(byteOrder);
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(root, path));
    if (st.isSymbolicLink())
      throw new ArtifactError(`${path}: a symbolic link; artifacts carry regular files and directories only`);
    if (st.isDirectory()) {
      out.push({ rel: path, dir: true, exec: true });
      out.push(...(await walk(root, path)));
    } else if (st.isFile()) out.push({ rel: path, dir: false, exec: (st.mode & 0o111) !== 0 });
    else throw new ArtifactError(`${path}: not a regular file or directory`);
  }
  return out;
}

/** Archives `dir` into a reproducible gzip'd tarball (see the module comment for the layout). */
export async function buildTarball(dir: string): Promise<BuiltTarball> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(dir);
  } catch {
    throw new ArtifactError(`${dir}: no such directory`);
  }
  if (!st.isDirectory()) throw new ArtifactError(`${dir}: not a directory`);
  const entries = await walk(dir);
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  let files = 0;
  const fixed = { mtime: EPOCH, uid: 0, gid: 0, uname: "", gname: "" };
  for (const e of entries) {
    if (e.dir) {
      pack.entry({ name: e.rel, type: "directory", mode: 0o755, ...fixed });
      continue;
    }
    const content = await readFile(join(dir, e.rel));
    files++;
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: e.rel, type: "file", mode: e.exec ? 0o755 : 0o644, ...fixed }, content, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  pack.finalize();
  await done;
  const raw = Buffer.concat(chunks);
  // zlib writes a zero mtime and no file name in the gzip header: the bytes depend on the content only.
  const data = gzipSync(raw, { level: 9 });
  return { data, digest: sha256(data), diffId: sha256(raw), files };
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export interface ExtractLimits {
  /** Bytes of all files once uncompressed (a gzip bomb stops here). Default 1 GiB. */
  maxBytes?: number;
  /** Entries in the archive. Default 100,000. */
  maxEntries?: number;
}

/**
 * An entry name as a safe relative path, or why it is refused: absolute
 * paths, `..` components and NUL bytes never reach the file system.
 * `./a/b`, `a//b/` and `.` (Flux archives carry the root as `.`) are fine.
 */
export function safeEntryPath(name: string): { path: string } | { refused: string } {
  if (name.includes("\0")) return { refused: "contains a NUL byte" };
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name)) return { refused: "is an absolute path" };
  const parts = name.split(/[\\/]+/).filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) return { refused: "climbs out of the artifact (..)" };
  return { path: parts.join("/") };
}

/**
 * Extracts a gzip'd tarball into `target` (created; must not exist yet).
 * The first refused entry stops extraction with one line naming it, and
 * `target` is removed: nothing half-extracted is ever used. Returns the
 * relative paths of everything extracted (directories end in `/`).
 */
export async function extractTarball(
  file: string,
  target: string,
  limits: ExtractLimits = {},
): Promise<string[]> {
  const maxBytes = limits.maxBytes ?? 1024 * 1024 * 1024;
  const maxEntries = limits.maxEntries ?? 100_000;
  const paths: string[] = [];
  let bytes = 0;
  let count = 0;
  await mkdir(target, { recursive: false });
  const extract = tar.extract();
  const feeding = pipeline(createReadStream(file), createGunzip(), extract).catch((err: Error) => {
    throw new ArtifactError(`not a gzip'd tarball (${err.message})`);
  });
  try {
    for await (const entry of extract) {
      const h = entry.header;
      if (++count > maxEntries) throw new ArtifactError(`more than ${maxEntries} entries`);
      const safe = safeEntryPath(h.name);
      if ("refused" in safe) throw new ArtifactError(`entry "${h.name}" ${safe.refused}`);
      const { path } = safe;
      if (h.type === "directory") {
        if (path) {
          await mkdir(join(target, path), { recursive: true });
          paths.push(`${path}/`);
        }
        entry.resume();
        continue;
      }
      if (h.type !== "file" && h.type !== "contiguous-file")
        throw new ArtifactError(
          `entry "${h.name}" is a ${h.type}${h.linkname ? ` to "${h.linkname}"` : ""}; only regular files and directories are accepted`,
        );
      if (!path) throw new ArtifactError(`entry "${h.name}" is a file without a name`);
      bytes += h.size;
      if (bytes > maxBytes) throw new ArtifactError(`more than ${maxBytes} bytes once extracted`);
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
      if (parent) await mkdir(join(target, parent), { recursive: true });
      // `wx`: a second entry of the same name (or a file over a directory) is not silently merged.
      try {
        await writeFile(join(target, path), Buffer.concat(chunks), {
          flag: "wx",
          mode: (h.mode ?? 0o644) & 0o111 ? 0o755 : 0o644,
        });
      } catch (err) {
        throw new ArtifactError(
          `entry "${h.name}" cannot be written (${(err as NodeJS.ErrnoException).code})`,
        );
      }
      paths.push(path);
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    await feeding.catch(() => {});
    await rm(target, { recursive: true, force: true });
    if (err instanceof ArtifactError) throw err;
    throw new ArtifactError(`not a gzip'd tarball (${(err as Error).message})`);
  }
  return paths;
}
