/**
 * The policy vocabulary shared by config (which parses it), policy (which
 * applies it, pure) and the scanner (which feeds it registry data).
 * Flux ImagePolicy (image.toolkit.fluxcd.io/v1) semantics, plus newestBuild and digest.
 */

/** How the newest allowed tag is chosen. */
export type SelectionStrategy =
  /** Masterminds-style constraint as Flux users write it: `1.0.x`, `^1.0`, `>0,<2.0`, `^1.x-0`. */
  | { kind: "semver"; range: string }
  | { kind: "alphabetical"; order: "asc" | "desc" }
  | { kind: "numerical"; order: "asc" | "desc" }
  /** The tag whose image was built last (image config `created`). */
  | { kind: "newestBuild" }
  /** Follow the digest of one mutable tag (e.g. `latest`). */
  | { kind: "digest"; tag: string };

/** Flux `spec.filterTags`: an RE2 pattern and an optional extraction template (`$name`, `${name}`, `$1`). */
export interface TagFilter {
  pattern: string;
  extract?: string;
}

export interface SelectionPolicy {
  strategy: SelectionStrategy;
  filter?: TagFilter;
  /**
   * Regexes (RE2) of tags never considered (Flux ImageRepository `exclusionList`).
   * Absent or empty means none here; the config layer fills Flux's default
   * (`DEFAULT_EXCLUSION_LIST`, `^.*\.sig$`) where Flux would.
   */
  exclusionList?: string[];
  /** Ignore images younger than this many milliseconds (needs build times; candidates without one are ignored). */
  minAgeMs?: number;
}

/** A tag as the scanner knows it; `created`/`digest` are filled only when the strategy needs them. */
export interface TagCandidate {
  tag: string;
  created?: Date;
  digest?: string;
}

export type NoSelectionReason =
  /** The repository has no tags, or exclusionList removed all of them. */
  | "no-tags"
  /** No tag matches filterTags.pattern. */
  | "none-matched-filter"
  /** semver: no matching tag is a version inside the range. */
  | "none-in-range"
  /** numerical: a candidate is not a number; Flux refuses the whole list then. */
  | "not-a-number"
  /** digest: the followed tag does not exist. */
  | "tag-not-found"
  /** minAge: every candidate was built too recently. */
  | "all-too-young"
  /** newestBuild or minAge: no candidate has a build time. */
  | "no-build-time";

export type Selection =
  | { ok: true; tag: string; digest?: string; created?: Date }
  | { ok: false; reason: NoSelectionReason; message: string };
