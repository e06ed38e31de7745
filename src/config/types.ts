import type { SelectionPolicy } from "../policy/types.ts";

/** Where a document came from, for errors that name the file, document and line. */
export interface SourceLocation {
  file: string;
  /** 1-based index of the YAML document in a multi-document file. */
  document: number;
  line?: number;
}

/** How changes selected by a policy reach git. */
export type UpdateMode = "push" | "pull-request";

/**
 * One image policy, from either a Flux ImageRepository + ImagePolicy pair or
 * the native `shipmate.dev/v1alpha1` ImagePolicy document.
 */
export interface Policy {
  /** Flux's identity: `<namespace>:<name>`, as markers reference it. */
  id: string;
  namespace: string;
  name: string;
  /** Image repository without tag or digest, as written (e.g. `ghcr.io/org/app`, `nginx`). */
  image: string;
  /** Plain HTTP allowed (Flux `spec.insecure` on the ImageRepository). */
  insecure: boolean;
  /** Name of a `kubernetes.io/dockerconfigjson` Secret (Flux `spec.secretRef.name`); resolved from files by the CLI. */
  secretRef?: string;
  /** Platform chosen inside an image index, `os/arch[/variant]`. */
  platform?: string;
  /** Flux v1 `digestReflectionPolicy`: whether the selected tag's digest is resolved. */
  digestReflection: "Never" | "IfNotPresent" | "Always";
  selection: SelectionPolicy;
  /** Native format only: files/globs (relative to the repo) this policy may rewrite without markers. */
  paths?: string[];
  /** Native format or the owning ImageUpdateAutomation: how updates are delivered. */
  mode?: UpdateMode;
  source: SourceLocation;
}
