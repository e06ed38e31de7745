/**
 * A chart archive read safely: the ustar/PAX/GNU subset that `helm package`
 * (Go's archive/tar) and `tar` write, decoded in memory with bounds, so a
 * hostile tarball cannot write outside the chart directory (`../`, absolute
 * paths), plant a link, or exhaust memory. Pure: bytes in, entries out.
 */
import { posix } from "node:path";
import { gunzipSync } from "node:zlib";

export class ChartArchiveError extends Error {
  override name = "ChartArchiveError";
}

export interface TarEntry {
  /** Normalised relative path (no leading `./`, no `..` component). */
  path: string;
  data: Buffer;
}

export interface TarLimits {
  /** Bytes after decompression, all entries together. */
  maxBytes: number;
  maxEntries: number;
}

const DEFAULT_LIMITS: TarLimits = { maxBytes: 64 * 1024 * 1024, maxEntries: 10_000 };

function field(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul === -1 ? raw.length : nul).toString("utf8");
}

function octal(block: Buffer, offset: number, length: number): number {
  // Base-256 (GNU) sizes start with 0x80: only sizes beyond 8 GiB use it, never a chart.
  if ((block[offset] ?? 0) & 0x80) throw new ChartArchiveError("archive entry too large");
  const text = field(block, offset, length).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new ChartArchiveError(`corrupt tar header (size "${text}")`);
  return Number.parseInt(text, 8);
}

/** PAX extended header records: `<len> key=value\n`. */
function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space === -1) break;
    const len = Number(data.subarray(i, space).toString());
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length)
      throw new ChartArchiveError("corrupt PAX header");
    const record = data.subarray(space + 1, i + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

/**
 * The path an entry may be written to, or an error naming it: absolute
 * paths and any `..` component are refused, as Helm's own loader does.
 */
export function safeEntryPath(name: string): string {
  if (name.includes("\0")) throw new ChartArchiveError(`archive entry "${name}" has a NUL byte`);
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name))
    throw new ChartArchiveError(`archive entry "${name}" has an absolute path`);
  const parts = name.replaceAll("\\", "/").split("/");
  if (parts.includes("..")) throw new ChartArchiveError(`archive entry "${name}" leaves the chart directory`);
  const norm = posix
    .normalize(parts.join("/"))
    .replace(/^(\.\/)+/, "")
    .replace(/\/+$/, "");
  return norm === "." ? "" : norm;
}

/** The regular files of an uncompressed tar stream; links, devices and FIFOs are refused. */
export function readTar(tar: Buffer, limits: TarLimits = DEFAULT_LIMITS): TarEntry[] {
  const entries: TarEntry[] = [];
  let total = 0;
  let offset = 0;
  let pending: { path?: string } = {};
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156] ?? 0);
    const magic = field(header, 257, 6);
    const prefix = magic.startsWith("ustar") ? field(header, 345, 155) : "";
    const base = field(header, 0, 100);
    const start = offset + 512;
    const end = start + size;
    if (end > tar.length) throw new ChartArchiveError("truncated archive");
    const data = tar.subarray(start, end);
    offset = start + Math.ceil(size / 512) * 512;
    if (type === "x") {
      pending = { path: paxRecords(data).path };
      continue;
    }
    if (type === "g") continue; // global PAX header: no per-file meaning
    if (type === "L") {
      pending = { path: field(data, 0, data.length) };
      continue;
    }
    const name = pending.path ?? (prefix ? `${prefix}/${base}` : base);
    pending = {};
    if (type === "5") {
      safeEntryPath(name);
      continue;
    }
    if (type === "1" || type === "2")
      throw new ChartArchiveError(`archive entry "${name}" is a ${type === "2" ? "symbolic" : "hard"} link`);
    if (type !== "0" && type !== "\0" && type !== "7")
      throw new ChartArchiveError(
        `archive entry "${name}" is not a regular file (type ${JSON.stringify(type)})`,
      );
    const path = safeEntryPath(name);
    if (!path) continue;
    total += size;
    if (total > limits.maxBytes)
      throw new ChartArchiveError(`archive expands beyond ${limits.maxBytes} bytes`);
    if (entries.length >= limits.maxEntries)
      throw new ChartArchiveError(`archive has more than ${limits.maxEntries} entries`);
    entries.push({ path, data: Buffer.from(data) });
  }
  return entries;
}

/** A gzip-compressed chart archive (`.tgz`), decompressed within the byte limit. */
export function readChartArchive(tgz: Buffer, limits: TarLimits = DEFAULT_LIMITS): TarEntry[] {
  let tar: Buffer;
  try {
    // The tar framing adds headers and padding: allow some slack over the content limit.
    tar = gunzipSync(tgz, { maxOutputLength: limits.maxBytes + 4 * 1024 * 1024 });
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new ChartArchiveError(
      code === "ERR_BUFFER_TOO_LARGE"
        ? `archive expands beyond ${limits.maxBytes} bytes`
        : `not a gzip archive: ${(err as Error).message}`,
    );
  }
  return readTar(tar, limits);
}

/**
 * The chart's root directory inside the archive (`helm package` writes
 * `<name>/Chart.yaml`): every entry must sit under one top directory.
 */
export function chartRoot(entries: readonly TarEntry[]): string {
  const tops = new Set(entries.map((e) => e.path.split("/")[0] ?? ""));
  const chartYaml = entries.find((e) => /^[^/]+\/Chart\.yaml$/.test(e.path));
  if (!chartYaml) throw new ChartArchiveError("archive has no <chart>/Chart.yaml");
  if (tops.size !== 1)
    throw new ChartArchiveError(`archive has ${tops.size} top-level entries, a chart has one`);
  return chartYaml.path.split("/")[0] ?? "";
}
