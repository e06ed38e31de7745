/**
 * Flux's artifact exclusion rules (source-controller, fluxcd/pkg/sourceignore):
 * which files of a repository never reach the artifact a Kustomization
 * builds, so `validate` neither reads nor builds them.
 *
 * - Patterns use the `.gitignore` format as Flux's matcher reads it: `#`
 *   comments and blank lines skipped, `!` re-includes, a trailing `/` matches
 *   directories only, a pattern without `/` matches any path element at any
 *   depth (so a directory name excludes everything beneath it), a pattern
 *   with `/` matches element by element from its file's folder (a prefix
 *   match: everything beneath a matched folder), `**` spans folders, and
 *   each element follows Go's filepath.Match (`*`, `?`, `[...]`, `\`).
 * - `.sourceignore` files are read from every folder (except `.git`), each
 *   scoped to its folder; the root's first, then folders in name order.
 * - The last matching pattern decides.
 * - Defaults: Git files always; images, archives, CI configs, `.sops.yaml`,
 *   `.goreleaser.yml` and `.flux.yaml` only when no `.sourceignore` pattern
 *   (and no `spec.ignore`) exists: user patterns replace that list.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const IGNORE_FILE = ".sourceignore";
const EXCLUDE_VCS = [".git/", ".gitignore", ".gitmodules", ".gitattributes"];
const EXCLUDE_DEFAULT = [
  ...["*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip"],
  ...[".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml"],
  ...["cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml"],
  ...["**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml"],
];

export interface IgnorePattern {
  /** The folder the pattern was read in, as path elements from the root. */
  domain: readonly string[];
  elements: readonly string[];
  include: boolean;
  dirOnly: boolean;
  /** Has a `/`: matched element by element from the domain, not by name anywhere. */
  anchored: boolean;
}

export function parsePattern(line: string, domain: readonly string[] = []): IgnorePattern {
  let p = line;
  const include = p.startsWith("!");
  if (include) p = p.slice(1);
  if (!p.endsWith("\\ ")) p = p.replace(/ +$/, "");
  const dirOnly = p.endsWith("/");
  if (dirOnly) p = p.slice(0, -1);
  return { domain: [...domain], elements: p.split("/"), include, dirOnly, anchored: p.includes("/") };
}

/** Patterns of a `.sourceignore` file (or `spec.ignore`) read in `domain`. */
export function readPatterns(text: string, domain: readonly string[] = []): IgnorePattern[] {
  return text
    .split(/\r?\n/)
    .filter((l) => !l.startsWith("#") && l.trim() !== "")
    .map((l) => parsePattern(l, domain));
}

/** Go's filepath.Match for one path element, as a RegExp; undefined for a malformed pattern (it never matches). */
function elementRegExp(pattern: string): RegExp | undefined {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\") {
      if (++i >= pattern.length) return undefined;
      re += literal(pattern[i]!);
    } else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) return undefined;
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith("^");
      if (negate) body = body.slice(1);
      if (body === "") return undefined;
      re += `[${negate ? "^" : ""}${body.replace(/[\]\\^]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else re += literal(c);
  }
  try {
    return new RegExp(`^${re}$`);
  } catch {
    return undefined;
  }
}
const literal = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

const cache = new Map<string, RegExp | undefined>();
function elementMatch(pattern: string, name: string): boolean {
  if (!cache.has(pattern)) cache.set(pattern, elementRegExp(pattern));
  return cache.get(pattern)?.test(name) ?? false;
}

function matchByName(p: IgnorePattern, path: readonly string[], isDir: boolean): boolean {
  for (const [i, name] of path.entries()) {
    if (!elementMatch(p.elements[0]!, name)) continue;
    return !(p.dirOnly && !isDir && i === path.length - 1);
  }
  return false;
}

function matchAnchored(p: IgnorePattern, input: readonly string[], isDir: boolean): boolean {
  let path = input;
  let matched = false;
  let traverse = false;
  for (const [i, el] of p.elements.entries()) {
    if (el === "") {
      traverse = false;
      continue;
    }
    if (el === "**") {
      if (i === p.elements.length - 1) break;
      traverse = true;
      continue;
    }
    if (el.includes("**") || path.length === 0) return false;
    if (traverse) {
      traverse = false;
      while (path.length) {
        const name = path[0]!;
        path = path.slice(1);
        if (elementMatch(el, name)) {
          matched = true;
          break;
        }
        if (path.length === 0) matched = false;
      }
    } else {
      if (!elementMatch(el, path[0]!)) return false;
      matched = true;
      path = path.slice(1);
    }
  }
  return matched && !(p.dirOnly && !isDir && path.length === 0);
}

/** "exclude", "include" or undefined (the pattern does not speak about the path). */
export function matchPattern(
  p: IgnorePattern,
  path: readonly string[],
  isDir = false,
): "exclude" | "include" | undefined {
  if (path.length <= p.domain.length) return undefined;
  if (p.domain.some((d, i) => path[i] !== d)) return undefined;
  const rest = path.slice(p.domain.length);
  const hit = p.anchored ? matchAnchored(p, rest, isDir) : matchByName(p, rest, isDir);
  if (!hit) return undefined;
  return p.include ? "include" : "exclude";
}

/** Whether the path (elements from the root) is excluded: the last pattern that matches decides. */
export function isExcluded(
  patterns: readonly IgnorePattern[],
  path: readonly string[],
  isDir = false,
): boolean {
  for (let i = patterns.length - 1; i >= 0; i--) {
    const m = matchPattern(patterns[i]!, path, isDir);
    if (m) return m === "exclude";
  }
  return false;
}

/** The matcher's patterns: Git files, then Flux's default list unless the user wrote patterns, then theirs. */
export function withDefaults(user: readonly IgnorePattern[]): IgnorePattern[] {
  const vcs = EXCLUDE_VCS.map((p) => parsePattern(p));
  if (user.length) return [...vcs, ...user];
  return [...vcs, ...EXCLUDE_DEFAULT.map((p) => parsePattern(p))];
}

/** Every `.sourceignore` under `root`, each scoped to its folder, in Flux's reading order. */
export function loadIgnorePatterns(root: string, domain: readonly string[] = []): IgnorePattern[] {
  const dir = join(root, ...domain);
  const file = join(dir, IGNORE_FILE);
  const out = existsSync(file) ? readPatterns(readFileSync(file, "utf8"), domain) : [];
  const entries = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== ".git")
    .map((e) => e.name)
    .sort();
  for (const name of entries) out.push(...loadIgnorePatterns(root, [...domain, name]));
  return out;
}

/** The exclusion test source-controller applies to a repository checked out at `root`. */
export function sourceIgnoreMatcher(root: string, specIgnore?: string): (relPath: string) => boolean {
  const user = loadIgnorePatterns(root);
  if (specIgnore !== undefined) user.push(...readPatterns(specIgnore));
  const patterns = withDefaults(user);
  return (relPath) => isExcluded(patterns, relPath.split("/"), false);
}

/**
 * A GitRepository `sparseCheckout` directory as a tree path (`./deploy/` →
 * `deploy`), as source-controller trims it: only such directories are in
 * the artifact.
 */
export function sparseDir(d: string): string {
  return d.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
}
