/**
 * What a change to the fleet's files is, as every part that writes, commits
 * or describes one sees it: the rewrite engine (src/update) produces these,
 * git (src/git) commits and words them, forges (src/forge) list them. Types
 * only; they live here so that none of those folders imports another's.
 */

/**
 * Which part of a reference a change wrote, Flux's setter vocabulary:
 * `image` is the whole reference (`name:tag[@digest]`), the others one part of it.
 */
export type SetterPart = "image" | "tag" | "name" | "digest";

/** The Kubernetes object a change sits in (empty fields for plain values files). */
export interface ObjectId {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
}

export interface Change {
  /** The setter as Flux names it: `ns:name` for the whole reference, `ns:name:tag|name|digest` for a part. */
  setter: string;
  policy: string;
  part: SetterPart;
  /** `marker` for a `$imagepolicy` comment, `paths` for a reference claimed by a native policy's `paths`. */
  via: "marker" | "paths";
  old: string;
  new: string;
  /** 1-based line of the changed scalar in the file. */
  line: number;
  object: ObjectId;
}

/** One file's outcome. `content` is set only when something changed. */
export interface FileUpdate {
  path: string;
  changes: Change[];
  content?: string;
}
