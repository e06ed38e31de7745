/**
 * The vocabulary of the manifest rewrite engine (`src/manifest`, used by
 * update, promote, validate and the App): what goes into it (file contents,
 * selections, the policies that claim paths) and what comes out (new
 * contents plus a structured account of every change and problem).
 */

import type { FileUpdate } from "../changes.ts";

/** The change vocabulary every folder shares (src/changes.ts), as this engine's callers have always named it. */
export type { Change, FileUpdate, ObjectId, SetterPart } from "../changes.ts";

/** The image a policy selected: `image` is the repository as it should be written (no tag, no digest). */
export interface ImageSelection {
  image: string;
  /** Absent only for an explicit `--set` of a digest without a tag. */
  tag?: string;
  /** `sha256:…`, present when the policy tracks digests. */
  digest?: string;
}

/** Selections keyed by policy id, `<namespace>:<name>` as markers name them. */
export type Selections = ReadonlyMap<string, ImageSelection>;

/** What the engine needs to know of a policy besides its selection. */
export interface PolicyClaim {
  /** `<namespace>:<name>`. */
  id: string;
  /** Image repository the policy tracks, as written in the policy (`ghcr.io/org/app`, `nginx`). */
  image: string;
  /** Repository-relative globs of files this policy may rewrite without markers (native policies only). */
  paths?: readonly string[];
}

export type ProblemKind =
  | "parse-error"
  | "invalid-marker"
  | "unknown-policy"
  | "no-selection"
  | "unsupported-scalar"
  | "digest-not-tracked"
  | "not-utf8"
  | "binary"
  | "too-large"
  | "symlink"
  | "read-only"
  | "unreadable"
  | "registry-error"
  /** A notification provider of shipmate.yaml that could not be used, or a delivery given up (src/notify/run.ts). */
  | "notification"
  /** A push branch shipmate.yaml wants proposed by pull request, with no forge to open it on (src/run/update.ts). */
  | "no-forge";

/** Something a person should know about one file; `error` problems make the run fail after the rest is delivered. */
export interface Problem {
  file: string;
  line?: number;
  kind: ProblemKind;
  severity: "error" | "warning";
  message: string;
  /** The policy the problem is about, when it is about one (a scan failure, a marker without a selection). */
  policy?: string;
}

export interface UpdateInput {
  selections: Selections;
  /** Policies known to the run: markers naming other policies are left alone and reported. */
  policies: readonly PolicyClaim[];
  /**
   * Policies whose selections another delivery of the same run writes (the
   * other half of a push / pull-request split): their markers are left alone
   * without a warning.
   */
  deferred?: readonly string[];
}

export interface UpdateResult {
  /** Only files with at least one change, in input order. */
  files: FileUpdate[];
  problems: Problem[];
}
