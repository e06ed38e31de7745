/**
 * The copy engine of an ArtifactGenerator (source.extensions.fluxcd.io
 * v1beta1 `spec.artifacts[].copy`), pure: it plans, over a listing of each
 * source's files, which file lands where in the artifact, with Flux's
 * source-watcher semantics (cp-like):
 *
 * - `from: "@alias/path"` without glob characters names a file or a
 *   directory. A file goes to `to` (or into it, when `to` ends with `/` or
 *   is a directory already); a directory is copied whole as
 *   `to/<its name>`. A missing path is an error.
 * - `from` with glob characters (`* ? [ ]`) is matched one level per path
 *   segment, as Go's `fs.Glob` does: `*` never crosses a `/`, and `**` is
 *   the same as `*`. Matched directories are copied whole. Each match keeps
 *   its path under `to`, except that `dir/**` strips `dir/` (the contents of
 *   dir). No match, or every match excluded, is an error.
 * - `exclude` patterns are doublestar globs (`**` spans directories, `{a,b}`
 *   alternatives) matched against the path from the source root and the
 *   path from the literal prefix of `from`; a pattern without `/` also
 *   matches the bare file name at any depth.
 * - Later copies overwrite earlier ones.
 *
 * The I/O (listing, copying, hashing) is in ./build.ts.
 */

/** One file of the artifact: which source file it is a copy of. */
export interface PlannedFile {
  alias: string;
  /** Path in the source, relative to its root. */
  from: string;
  /** Path in the artifact, relative to its root. */
  to: string;
}

export interface CopyOperation {
  from: string;
  to: string;
  exclude?: readonly string[];
}

/** A copy operation that cannot be carried out: the message names it, as Flux words it. */
export class CopyError extends Error {
  override name = "CopyError";
}

const GLOB_CHARS = /[*?[\]]/;

/** A source tree as a listing of its files (posix paths relative to its root, no `.git`). */
export class SourceTree {
  readonly files: ReadonlySet<string>;
  readonly dirs: ReadonlySet<string>;
  constructor(files: Iterable<string>) {
    const f = new Set<string>();
    const d = new Set<string>();
    for (const file of files) {
      f.add(file);
      const parts = file.split("/");
      for (let i = 1; i < parts.length; i++) d.add(parts.slice(0, i).join("/"));
    }
    this.files = f;
    this.dirs = d;
  }
  /** Files under a directory (`.`: all), sorted. */
  under(dir: string): string[] {
    const all = [...this.files].sort();
    if (dir === "." || dir === "") return all;
    return all.filter((p) => p.startsWith(`${dir}/`));
  }
}

/** Go's path.Clean for relative paths: no `.` segments, no `a/..`, no trailing `/`; `.` when empty. */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === ".." && out.length && out[out.length - 1] !== "..") out.pop();
    else out.push(seg);
  }
  return out.join("/") || ".";
}

function joinPath(...parts: string[]): string {
  return cleanPath(parts.filter((p) => p !== "").join("/"));
}

const basename = (p: string): string => p.slice(p.lastIndexOf("/") + 1);

/** A character class (`[a-z]`, `[^0-9]`, `[!x]`) from position i; returns its regex text and the end. */
function charClass(pattern: string, i: number): { re: string; end: number } | undefined {
  let j = i + 1;
  let negate = false;
  if (pattern[j] === "^" || pattern[j] === "!") {
    negate = true;
    j++;
  }
  let body = "";
  let first = true;
  for (; j < pattern.length; j++) {
    const c = pattern[j] as string;
    if (c === "]" && !first) return { re: `[${negate ? "^" : ""}${body}]`, end: j };
    first = false;
    if (c === "\\" && j + 1 < pattern.length) {
      body += `\\${pattern[++j]}`;
      continue;
    }
    body += c === "/" ? "" : /[\]\\^]/.test(c) ? `\\${c}` : c;
  }
  return undefined;
}

const escapeRe = (c: string) => c.replace(/[.+^${}()|[\]\\*?]/g, "\\$&");

/** One path segment of Go's path.Match syntax as a regex body (`*` and `?` never match `/`). */
function segmentRegex(seg: string): string {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const cls = charClass(seg, i);
      if (!cls) throw new CopyError(`syntax error in pattern '${seg}'`);
      re += cls.re;
      i = cls.end;
    } else if (c === "\\" && i + 1 < seg.length) re += escapeRe(seg[++i] as string);
    else re += escapeRe(c);
  }
  return re;
}

/**
 * Go's fs.Glob over a tree: every file or directory whose path has as many
 * segments as the pattern and whose segments match it one by one, sorted.
 */
export function fsGlob(tree: SourceTree, pattern: string): string[] {
  const segs = cleanPath(pattern).split("/");
  const res = segs.map((s) => new RegExp(`^${segmentRegex(s)}$`));
  const out: string[] = [];
  for (const p of [...tree.files, ...tree.dirs]) {
    const parts = p.split("/");
    if (parts.length !== segs.length) continue;
    if (parts.every((part, i) => (res[i] as RegExp).test(part))) out.push(p);
  }
  return out.sort();
}

/** Splits `{a,b}` alternatives at the top level (doublestar syntax). */
function alternatives(body: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === "\\" && i + 1 < body.length) {
      cur += c + body[++i];
      continue;
    }
    if (c === "{") depth++;
    if (c === "}") depth--;
    if (c === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** A doublestar pattern as a regex body: `**` as a whole segment spans zero or more directories. */
function doublestarRegex(pattern: string): string {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    const atSegStart = i === 0 || pattern[i - 1] === "/";
    if (c === "*" && pattern[i + 1] === "*" && atSegStart) {
      const after = pattern[i + 2];
      if (after === "/") {
        re += "(?:[^/]*(?:/[^/]*)*/)?"; // `**/`: zero or more directories
        i += 2;
        continue;
      }
      if (after === undefined) {
        // `dir/**` also names dir itself; a bare `**` matches everything.
        if (re.endsWith("/")) re = `${re.slice(0, -1)}(?:/.*)?`;
        else re += ".*";
        i += 1;
        continue;
      }
    }
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const cls = charClass(pattern, i);
      if (!cls) throw new CopyError(`invalid exclude pattern '${pattern}'`);
      re += cls.re;
      i = cls.end;
    } else if (c === "{") {
      let depth = 0;
      let j = i;
      for (; j < pattern.length; j++) {
        if (pattern[j] === "\\") j++;
        else if (pattern[j] === "{") depth++;
        else if (pattern[j] === "}" && --depth === 0) break;
      }
      if (j >= pattern.length) throw new CopyError(`invalid exclude pattern '${pattern}'`);
      re += `(?:${alternatives(pattern.slice(i + 1, j))
        .map(doublestarRegex)
        .join("|")})`;
      i = j;
    } else if (c === "\\" && i + 1 < pattern.length) re += escapeRe(pattern[++i] as string);
    else re += escapeRe(c);
  }
  return re;
}

const compiled = new Map<string, RegExp>();

/** doublestar.Match: the whole path against a pattern with `**` and `{a,b}`. */
export function doublestarMatch(pattern: string, path: string): boolean {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(`^${doublestarRegex(pattern)}$`);
    compiled.set(pattern, re);
  }
  return re.test(path);
}

function excludedBy(path: string, patterns: readonly string[]): boolean {
  const name = basename(path);
  return patterns.some((p) => doublestarMatch(p, path) || (!p.includes("/") && doublestarMatch(p, name)));
}

/** Excluded by its path from the source root, or from the literal prefix of `from` (`base`). */
export function isExcluded(path: string, base: string, patterns: readonly string[]): boolean {
  if (!patterns.length) return false;
  if (excludedBy(path, patterns)) return true;
  const b = cleanPath(base);
  if (b === ".") return false;
  if (!path.startsWith(`${b}/`)) return false;
  return excludedBy(path.slice(b.length + 1), patterns);
}

/** The literal directory prefix of a glob (`deploy/**` → `deploy`, `*.yaml` → `.`). */
export function selectionRoot(pattern: string): string {
  const parts: string[] = [];
  for (const seg of cleanPath(pattern).split("/")) {
    if (GLOB_CHARS.test(seg)) break;
    parts.push(seg);
  }
  return parts.length ? parts.join("/") : ".";
}

/** Where a glob match lands: `dir/**` copies dir's contents; other globs keep the matched path. */
export function globDestination(pattern: string, match: string, dest: string): string {
  if (pattern.endsWith("/**")) {
    const prefix = pattern.slice(0, -3);
    if (match.startsWith(`${prefix}/`)) return joinPath(dest, match.slice(prefix.length + 1));
  }
  return joinPath(dest, match);
}

/** `@alias/pattern` → alias and pattern. */
export function parseFrom(from: string): { alias: string; pattern: string } {
  if (!from.startsWith("@")) throw new CopyError(`invalid copy source '${from}': source must start with '@'`);
  const slash = from.indexOf("/");
  if (slash < 0) throw new CopyError(`invalid copy source '${from}': source format must be '@alias/pattern'`);
  return { alias: from.slice(1, slash), pattern: from.slice(slash + 1) };
}

/** `@artifact/path` → the path in the artifact (`.` for its root); never outside it. */
export function parseTo(to: string): string {
  if (!to.startsWith("@artifact/"))
    throw new CopyError(`invalid copy destination '${to}': destination must start with '@artifact/'`);
  const rest = to.slice("@artifact/".length);
  if (rest === "") return ".";
  if (rest.startsWith("/") || rest.split("/").includes(".."))
    throw new CopyError(
      `invalid copy destination '${to}': destination path must stay within the artifact root`,
    );
  return cleanPath(rest);
}

/** The artifact's files, in copy order; later entries for the same `to` win. */
export class ArtifactPlan {
  private readonly byDest = new Map<string, PlannedFile>();

  put(file: PlannedFile): void {
    // A file replaces a file; a directory path taken by a file is Flux's error too (cannot create).
    for (const existing of this.byDest.keys())
      if (existing.startsWith(`${file.to}/`))
        throw new CopyError(`cannot copy '${file.from}' to '${file.to}': a directory is there`);
    this.byDest.delete(file.to);
    this.byDest.set(file.to, file);
  }

  isDir(path: string): boolean {
    if (path === ".") return true;
    for (const k of this.byDest.keys()) if (k.startsWith(`${path}/`)) return true;
    return this.dirs.has(path);
  }

  /** Directories created empty (a copied directory with every file excluded still exists). */
  readonly dirs = new Set<string>();

  files(): PlannedFile[] {
    return [...this.byDest.values()].sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
  }
}

function copyDirectory(
  plan: ArtifactPlan,
  tree: SourceTree,
  alias: string,
  src: string,
  dest: string,
  exclude: readonly string[],
  base: string,
): void {
  plan.dirs.add(dest);
  for (const file of tree.under(src)) {
    const rel = src === "." ? file : file.slice(src.length + 1);
    // An excluded directory takes its whole subtree with it.
    const parts = rel.split("/");
    let skip = false;
    for (let i = 1; i <= parts.length && !skip; i++) {
      const p = src === "." ? parts.slice(0, i).join("/") : `${src}/${parts.slice(0, i).join("/")}`;
      skip = isExcluded(p, base, exclude);
    }
    if (!skip) plan.put({ alias, from: file, to: joinPath(dest, rel) });
  }
}

/** Applies one copy operation to the plan (Flux's applyCopyOperation). */
export function applyCopy(
  plan: ArtifactPlan,
  sources: ReadonlyMap<string, SourceTree>,
  op: CopyOperation,
): void {
  const { alias, pattern } = parseFrom(op.from);
  const dest = parseTo(op.to);
  const tree = sources.get(alias);
  if (!tree) throw new CopyError(`source alias '${alias}' not found`);
  const exclude = op.exclude ?? [];
  for (const p of exclude) doublestarMatch(p, "."); // rejects a malformed pattern up front
  if (!GLOB_CHARS.test(pattern)) {
    const src = cleanPath(pattern);
    if (src !== "." && !tree.files.has(src) && !tree.dirs.has(src))
      throw new CopyError(`source '${src}' does not exist`);
    if (src === "." || tree.dirs.has(src)) {
      copyDirectory(plan, tree, alias, src, joinPath(dest, src === "." ? "" : basename(src)), exclude, src);
      return;
    }
    if (isExcluded(src, ".", exclude)) return;
    const into = op.to.endsWith("/") || plan.isDir(dest);
    plan.put({ alias, from: src, to: into ? joinPath(dest, basename(src)) : dest });
    return;
  }
  const matches = fsGlob(tree, pattern).filter((m) => m !== "." && m !== "..");
  if (!matches.length) throw new CopyError(`no files match pattern '${pattern}' in source '${alias}'`);
  const base = selectionRoot(pattern);
  const kept = matches.filter((m) => !isExcluded(m, base, exclude));
  if (!kept.length)
    throw new CopyError(`all files matching pattern '${pattern}' in source '${alias}' were excluded`);
  for (const m of kept) {
    const to = globDestination(pattern, m, dest);
    if (tree.dirs.has(m)) copyDirectory(plan, tree, alias, m, to, exclude, base);
    else plan.put({ alias, from: m, to });
  }
}

/** The whole artifact: every copy operation in order (Flux's applyCopyOperations). */
export function planArtifact(
  sources: ReadonlyMap<string, SourceTree>,
  ops: readonly CopyOperation[],
): PlannedFile[] {
  const plan = new ArtifactPlan();
  for (const op of ops) {
    try {
      applyCopy(plan, sources, op);
    } catch (err) {
      throw new CopyError(
        `failed to apply copy operation from '${op.from}' to '${op.to}': ${(err as Error).message}`,
      );
    }
  }
  return plan.files();
}
