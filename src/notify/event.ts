/**
 * The event a notification is made from, shaped like Flux's
 * (fluxcd/pkg/apis/event v1beta1 Event): what the agent records about its
 * objects and what the CLI, the Action and the App report about a run
 * (bump pushed, request opened, merged) are both this, so every provider
 * formats one thing. Pure.
 */
import { createHash } from "node:crypto";

export type Severity = "info" | "error";

export interface InvolvedObject {
  apiVersion?: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

export interface NotifyEvent {
  involvedObject: InvolvedObject;
  severity: Severity;
  /** RFC 3339, seconds. */
  timestamp: string;
  message: string;
  /** Machine-readable, CamelCase (`ReconciliationSucceeded`). */
  reason: string;
  /** `revision` (the source revision acted on), `summary` (the Alert's), anything else the emitter adds. */
  metadata?: Record<string, string>;
  /** Flux's controller names for the agent's kinds (`kustomize-controller`), `shipmate` for runs. */
  reportingController: string;
  reportingInstance?: string;
}

/** The controller Flux would name for a kind, so filters on `reportingController` keep working. */
export function controllerFor(kind: string): string {
  if (kind === "Kustomization") return "kustomize-controller";
  if (kind === "HelmRelease") return "helm-controller";
  if (kind === "ImageRepository" || kind === "ImagePolicy") return "image-reflector-controller";
  if (kind === "ImageUpdateAutomation") return "image-automation-controller";
  if (kind === "ArtifactGenerator") return "source-watcher";
  return "source-controller";
}

/** `revision` metadata, also under a group prefix (`kustomize.toolkit.fluxcd.io/revision`, as older Flux sent it). */
export function revisionOf(event: NotifyEvent): string | undefined {
  const meta = event.metadata ?? {};
  if (meta.revision) return meta.revision;
  const key = Object.keys(meta).find((k) => k.endsWith("/revision"));
  return key ? meta[key] : undefined;
}

/**
 * The commit a revision names: `main@sha1:<hex>`, `sha1:<hex>`, the legacy
 * `main/<hex>`, or a bare hex id (sha1 or sha256 object names).
 */
export function commitOf(revision: string): string | undefined {
  const m = /(?:^|@|\/)(?:sha1:|sha256:)?([0-9a-f]{40}|[0-9a-f]{64})$/.exec(revision);
  return m?.[1];
}

/**
 * What makes two events "the same" for the 5-minute dedupe: the object, the
 * severity, the reason, the message and the revision (a new revision is news
 * even with the same words).
 */
export function eventKey(event: NotifyEvent): string {
  const o = event.involvedObject;
  const parts = [
    o.apiVersion?.split("/")[0] ?? "",
    o.kind,
    o.namespace,
    o.name,
    event.severity,
    event.reason,
    event.message,
    revisionOf(event) ?? "",
  ];
  return createHash("sha256").update(parts.join("\u0000")).digest("hex");
}

/** `kustomization/podinfo.apps`: how Flux names the object in a chat message. */
export function objectTitle(event: NotifyEvent): string {
  const o = event.involvedObject;
  return `${o.kind.toLowerCase()}/${o.name}.${o.namespace}`;
}

/** Metadata as sorted pairs: every provider lists them in the same, stable order. */
export function metadataPairs(event: NotifyEvent): [string, string][] {
  return Object.entries(event.metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
