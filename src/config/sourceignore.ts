/**
 * Which files of a repository are left out of a GitRepository's artifact,
 * as Flux's source-controller decides it (fluxcd/pkg sourceignore, used by
 * the GitRepository reconciler), pure:
 *
 * 1. the default exclusions, lowest priority: version control files
 *    (`.git/`, `.gitignore`, `.gitmodules`, `.gitattributes`), media and
 *    archives (`*.jpg` … `*.zip`), CI configuration (`.github/`,
 *    `.gitlab-ci.yml` …) and a few tool files (`**∕.sops.yaml` …);
 * 2. every `.sourceignore` file in the tree, the root's first, then each
 *    directory's in depth-first name order, its patterns relative to the
 *    directory holding it;
 * 3. the GitRepository's `spec.ignore`, relative to the root, last.
 *
 * All in gitignore syntax; the last pattern that matches a path decides
 * (so `spec.ignore` can re-include with `!`), and a path inside an
 * excluded directory stays excluded. Matching is the `ignore` npm package
 * (a maintained implementation of the gitignore spec), case-sensitive as
 * git and Flux are on Linux.
 *
 * The agent applies this to the trees it renders from; `shipmate validate`
 * applies it to the files it checks.
 */
import ignore from "ignore";

export const SOURCEIGNORE_FILE = ".sourceignore";

/** fluxcd/pkg/sourceignore ExcludeVCS, ExcludeExt, ExcludeCI and ExcludeExtra, in that order. */
export const DEFAULT_SOURCE_IGNORE: readonly string[] = [
  ".git/",
  ".gitignore",
  ".gitmodules",
  ".gitattributes",
  "*.jpg",
  "*.jpeg",
  "*.gif",
  "*.png",
  "*.wmv",
  "*.flv",
  "*.tar.gz",
  "*.zip",
  ".github/",
  ".circleci/",
  ".travis.yml",
  ".gitlab-ci.yml",
  "appveyor.yml",
  ".drone.yml",
  "cloudbuild.yaml",
  "codeship-services.yml",
  "codeship-steps.yml",
  "**/.goreleaser.yml",
  "**/.sops.yaml",
  "**/.flux.yaml",
];

/** The patterns of an ignore file: one a line, `#` comments and blank lines dropped (as Flux reads them). */
export function ignoreLines(text: string): string[] {
  return text.split(/\r?\n/).filter((l) => !l.startsWith("#") && l.trim().length > 0);
}

/**
 * A pattern from the ignore file in `dir` rewritten relative to the root:
 * anchored patterns (a `/` before the end) get the directory prefixed;
 * unanchored ones match at any depth below the directory.
 */
export function scopePattern(pattern: string, dir: string): string {
  const d = dir.replace(/^\.?\/*/, "").replace(/\/+$/, "");
  if (!d) return pattern;
  const negated = pattern.startsWith("!");
  const body = negated ? pattern.slice(1) : pattern;
  const trimmed = body.endsWith("/") ? body.slice(0, -1) : body;
  const anchored = trimmed.includes("/");
  const scoped = anchored ? `${d}/${body.replace(/^\/+/, "")}` : `${d}/**/${body}`;
  return negated ? `!${scoped}` : scoped;
}

/** Directories in Flux's LoadIgnorePatterns order: depth first, names sorted, a parent before its children. */
export function ignoreFileOrder(dirs: readonly string[]): string[] {
  const segs = (d: string) => (d === "" || d === "." ? [] : d.split("/"));
  return [...dirs].sort((a, b) => {
    const x = segs(a);
    const y = segs(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const xi = x[i] as string;
      const yi = y[i] as string;
      if (xi !== yi) return xi < yi ? -1 : 1;
    }
    return x.length - y.length;
  });
}

export interface SourceIgnoreInput {
  /** `.sourceignore` files by the directory holding them (`""` for the root). */
  files?: ReadonlyMap<string, string>;
  /** The GitRepository's `spec.ignore`. */
  specIgnore?: string;
}

/** Every rule, root-relative, lowest priority first. */
export function sourceIgnoreRules(input: SourceIgnoreInput): string[] {
  const rules = [...DEFAULT_SOURCE_IGNORE];
  const files = input.files ?? new Map<string, string>();
  for (const dir of ignoreFileOrder([...files.keys()]))
    for (const line of ignoreLines(files.get(dir) ?? "")) rules.push(scopePattern(line, dir));
  if (input.specIgnore) rules.push(...ignoreLines(input.specIgnore));
  return rules;
}

/** A predicate: is this root-relative path (a directory when it ends with `/`) left out of the artifact? */
export function sourceIgnoreMatcher(input: SourceIgnoreInput): (path: string) => boolean {
  const ig = ignore({ allowRelativePaths: true, ignorecase: false }).add(sourceIgnoreRules(input));
  return (path: string) => {
    const p = path.replace(/^\.?\/+/, "");
    return p !== "" && ig.ignores(p);
  };
}
