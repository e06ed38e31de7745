/**
 * The narrow interface every source kind implements (GitRepository,
 * OCIRepository, Bucket, ExternalArtifact, HelmChart…): parse the spec,
 * say when it is due, and fetch into a directory the agent owns, returning
 * an artifact (revision + digest + files). The kind-agnostic SourceManager
 * (../sources.ts) lists the objects, decides when to fetch, writes Flux's
 * status (`artifact`, conditions) and events; a handler never talks to the
 * API server except through its FetchContext.
 */
import type { Logger } from "pino";
import type { FieldTable } from "../fields/support.ts";
import type { Artifact } from "../git-source.ts";

/** A status condition a handler reports beside Ready (GitRepository's `SourceVerified`, `IncludeUnavailable`). */
export interface StatusCondition {
  type: string;
  status: "True" | "False";
  reason: string;
  message: string;
}

/** A failure with source-controller's reason (`GitOperationFailed`, `OCIArtifactPullFailed`…). */
export class SourceError extends Error {
  readonly reason: string;
  /** Retrying will not help until the spec or the source content changes. */
  readonly stalled: boolean;
  /** Conditions the failure sets besides Ready (`SourceVerified=False`). */
  readonly conditions: readonly StatusCondition[];
  constructor(
    reason: string,
    message: string,
    opts: { stalled?: boolean; cause?: unknown; conditions?: readonly StatusCondition[] } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "SourceError";
    this.reason = reason;
    this.stalled = opts.stalled ?? false;
    this.conditions = opts.conditions ?? [];
  }
}

export interface SourceRef {
  kind: string;
  namespace: string;
  name: string;
}

export type Resolution =
  | { ok: true; artifact: Artifact }
  | { ok: false; reason: string; message: string; stalled: boolean };

export interface FetchContext {
  namespace: string;
  name: string;
  /** The source object as the cluster holds it (labels, annotations, uid). */
  object: SourceObjectLike;
  /** `data` of a Secret in the source's namespace (values base64, as the API returns them). */
  secret(name: string): Promise<Record<string, string>>;
  /** Another source's artifact (an ArtifactGenerator's inputs), fetched when due. */
  resolve(ref: SourceRef): Promise<Resolution>;
  /** Another source object as listed in this pass (a HelmChart reads its HelmRepository's URL and Secret). */
  lookup(ref: SourceRef): SourceObjectLike | undefined;
  /** The artifact this source holds now, if any: a fetcher may stop early when nothing changed. */
  previous: Artifact | undefined;
  log: Logger;
}

export interface SourceObjectLike {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  /** As listed; a handler whose producer writes status (ExternalArtifact) reads its artifact here. */
  status?: Record<string, unknown>;
}

/** One object's fetch state: a git working copy, an extracted OCI layer, a bucket mirror. */
export interface SourceFetcher<Spec> {
  /** Fetches into the fetcher's directory; throws SourceError with Flux's reason. */
  fetch(spec: Spec, ctx: FetchContext): Promise<Artifact>;
  /** Restores the fetched tree (drops files a render wrote) before each render. */
  clean(): Promise<void>;
}

export interface SourceHandler<Spec = unknown> {
  readonly kind: string;
  /** `source.toolkit.fluxcd.io/v1` */
  readonly apiVersion: string;
  /** The resource name in API paths (`gitrepositories`). */
  readonly plural: string;
  /** The reason a failed fetch is reported with when the error carries none. */
  readonly failureReason: string;
  /**
   * Whether the manager writes this kind's status. False for kinds whose
   * status another producer writes (ExternalArtifact: its ArtifactGenerator).
   */
  readonly writesStatus: boolean;
  /**
   * What the artifact holds: a tree of manifests (a Kustomization renders
   * from it), a chart repository index, or one chart (a HelmRelease installs it).
   */
  readonly holds: "manifests" | "chart-index" | "chart";
  /** Every spec field of Flux's served versions, honoured or refused (../fields/support.ts). */
  readonly fields: FieldTable;
  /** The spec checked through its schema; `invalid` names the first problem (InvalidSpec). */
  parse(spec: Record<string, unknown>): { spec: Spec } | { invalid: string };
  /** The spec's `interval`, a Go duration; undefined: fetched on every pass that needs it. */
  interval(spec: Spec): string | undefined;
  suspended(spec: Spec): boolean;
  /** What the fetch state depends on (URL, ref, credentials' name…): a change starts a new fetcher. */
  signature(spec: Spec): unknown;
  /**
   * Other sources whose artifacts this one is built from (a GitRepository's
   * `include`): they are resolved first, and a change in any of them makes
   * this source due, as source-controller watches included repositories.
   */
  dependencies?(spec: Spec, namespace: string): SourceRef[];
  /** Condition types the handler owns (set from artifacts and errors, removed when no longer reported). */
  readonly conditionTypes?: readonly string[];
  open(dir: string): SourceFetcher<Spec>;
}

/** A handler's `parse`: the spec through its schema, the first issue as InvalidSpec's one line. */
export function parseWith<Spec>(
  schema: {
    safeParse(
      v: unknown,
    ):
      | { success: true; data: Spec }
      | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
  },
  spec: Record<string, unknown>,
): { spec: Spec } | { invalid: string } {
  const parsed = schema.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { invalid: `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}` };
  }
  return { spec: parsed.data };
}
