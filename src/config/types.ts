import type { SelectionPolicy } from "../policy/types.ts";
import type { LimitRefusal } from "./limits.ts";

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
  /** Native format only: how updates are delivered (absent: the caller's default). */
  mode?: UpdateMode;
  /** `metadata.labels` of the policy document, for ImageUpdateAutomation `policySelector`. */
  labels?: Record<string, string>;
  /** Flux `spec.suspend` on the ImagePolicy or its ImageRepository: Flux would not reconcile it. */
  suspended?: boolean;
  source: SourceLocation;
}

/** Kubernetes `metav1.LabelSelector`, as ImageUpdateAutomation `policySelector` carries it. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
    values?: string[];
  }[];
}

/**
 * A Flux ImageUpdateAutomation (image.toolkit.fluxcd.io/v1, also v1beta2/v1beta1):
 * which repository and branch to update, how to commit and where to push.
 * Flux applies it to the ImagePolicies of its own namespace that match `policySelector`.
 */
export interface UpdateAutomation {
  /** `<namespace>:<name>`. */
  id: string;
  namespace: string;
  name: string;
  /** `spec.sourceRef`; namespace defaults to the automation's. */
  sourceRef: { kind: string; name: string; namespace: string };
  /** `spec.interval`, Go duration syntax as written (e.g. `30m`). */
  interval: string;
  /** `spec.git.checkout.ref`: where to start from (absent: the GitRepository's own ref). */
  checkout?: { branch?: string; tag?: string; semver?: string; name?: string; commit?: string };
  commit: {
    author: { name?: string; email: string };
    /** Go text/template as Flux renders it (`{{ range .Changed.Changes }}` …). */
    messageTemplate?: string;
    messageTemplateValues?: Record<string, string>;
    signingKey?: { secretRef: string; type: "gpg" | "ssh" };
  };
  /** `spec.git.push`: absent means push back to the checkout branch. */
  push?: { branch?: string; refspec?: string; options?: Record<string, string> };
  /** `spec.update`: strategy is always Setters; path defaults to the repository root (`.`). */
  update: { strategy: "Setters"; path: string };
  policySelector?: LabelSelector;
  suspended: boolean;
  source: SourceLocation;
}

/** Everything a policies directory declares. */
export interface PolicyConfig {
  policies: Policy[];
  automations: UpdateAutomation[];
  /** The YAML files read, in the order they were read. */
  files: string[];
  /** Files and documents refused by a bound of src/config/limits.ts (the others were read). */
  skipped?: LimitRefusal[];
}
