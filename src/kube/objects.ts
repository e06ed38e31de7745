/**
 * Pure helpers on Kubernetes objects: identity, Flux inventory ids, apply
 * order, and the state hash that lets an unchanged object cost no request
 * beyond one list per kind.
 */
import { createHash } from "node:crypto";
import type { KubeObject } from "./schema.ts";

export const FIELD_MANAGER = "shipmate";
export const NAME_LABEL = "kustomize.toolkit.fluxcd.io/name";
export const NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace";
/** Flux's "do not prune" annotation, honoured as written in Flux repositories. */
export const FLUX_PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune";
/** shipmate's own spelling of the same switch. */
export const SHIPMATE_PRUNE_ANNOTATION = "shipmate.io/prune";
/** Flux's per-object reconcile switch: `disabled` means create once, never update. */
export const FLUX_RECONCILE_ANNOTATION = "kustomize.toolkit.fluxcd.io/reconcile";
export const REQUESTED_AT_ANNOTATION = "reconcile.fluxcd.io/requestedAt";

export interface ObjectRef {
  group: string;
  version: string;
  kind: string;
  namespace: string;
  name: string;
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.lastIndexOf("/");
  return i < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

export function refOf(obj: KubeObject): ObjectRef {
  const { group, version } = splitApiVersion(obj.apiVersion);
  return {
    group,
    version,
    kind: obj.kind,
    namespace: obj.metadata.namespace ?? "",
    name: obj.metadata.name ?? "",
  };
}

/** Flux's inventory id: `<namespace>_<name>_<group>_<kind>` (empty namespace/group for cluster-scoped/core). */
export function inventoryId(ref: Pick<ObjectRef, "group" | "kind" | "namespace" | "name">): string {
  return `${ref.namespace}_${ref.name}_${ref.group}_${ref.kind}`;
}

/** Parses an inventory id back; names and namespaces never contain `_`, kinds never do either. */
export function parseInventoryId(id: string, version: string): ObjectRef | undefined {
  const parts = id.split("_");
  if (parts.length !== 4) return undefined;
  const [namespace, name, group, kind] = parts as [string, string, string, string];
  if (!name || !kind) return undefined;
  return { namespace, name, group, kind, version };
}

export function apiVersionOf(ref: Pick<ObjectRef, "group" | "version">): string {
  return ref.group ? `${ref.group}/${ref.version}` : ref.version;
}

/** `Kind/namespace/name` (or `Kind/name`), the form used in messages and events, like Flux's change sets. */
export function describeRef(ref: Pick<ObjectRef, "kind" | "namespace" | "name">): string {
  return ref.namespace ? `${ref.kind}/${ref.namespace}/${ref.name}` : `${ref.kind}/${ref.name}`;
}

/**
 * Apply order. Stage 0 (CRDs, Namespaces) is written and waited for before
 * anything else so custom resources and namespaced objects have somewhere to
 * go; within stage 1, kinds others refer to come first; webhooks come last so
 * they cannot reject the objects of the same apply.
 */
const RANK: Record<string, number> = {
  CustomResourceDefinition: 0,
  Namespace: 1,
  PriorityClass: 10,
  StorageClass: 10,
  IngressClass: 10,
  RuntimeClass: 10,
  ResourceQuota: 11,
  LimitRange: 11,
  ServiceAccount: 12,
  Secret: 13,
  ConfigMap: 13,
  ClusterRole: 14,
  Role: 14,
  ClusterRoleBinding: 15,
  RoleBinding: 15,
  PersistentVolume: 16,
  PersistentVolumeClaim: 17,
  Service: 18,
  MutatingWebhookConfiguration: 90,
  ValidatingWebhookConfiguration: 90,
  ValidatingAdmissionPolicy: 90,
  ValidatingAdmissionPolicyBinding: 91,
};
const DEFAULT_RANK = 50;

export function applyRank(kind: string): number {
  return RANK[kind] ?? DEFAULT_RANK;
}

/** Stage 0 holds the cluster definitions that other objects need to exist first. */
export function isStageZero(kind: string): boolean {
  return applyRank(kind) < 10;
}

/** JSON with object keys sorted, so equal objects serialize equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The field set shipmate's apply owns on a live object (its `Apply` managedFields entry on the main resource). */
export function ownedFields(obj: KubeObject): unknown {
  const entry = obj.metadata.managedFields?.find(
    (m) => m.manager === FIELD_MANAGER && m.operation === "Apply" && !m.subresource,
  );
  return entry?.fieldsV1;
}

/**
 * The state hash recorded in the inventory after a successful apply: what we
 * sent and which fields the server says we own. If another writer changes one
 * of our fields, ownership moves to it and the hash no longer matches; if git
 * changes, the desired half no longer matches. Either way the object is
 * looked at again; otherwise it is provably as we left it.
 */
export function stateHash(desired: KubeObject, owned: unknown): string | undefined {
  if (owned === undefined) return undefined;
  return createHash("sha256")
    .update(canonicalJson(desired))
    .update("\n")
    .update(canonicalJson(owned))
    .digest("hex")
    .slice(0, 16);
}

/**
 * Whether applying would change the live object: compares the server's
 * dry-run result with the live object (read after it), ignoring the
 * bookkeeping a dry run always touches (timestamps in managedFields) and
 * what other writers may change between the two reads: the resourceVersion,
 * and the status, unless the desired object itself sets one (a controller
 * writing a Deployment's or Kustomization's status in that moment is not a
 * change the apply would make).
 */
export function sameObject(live: KubeObject, dryRun: KubeObject, desiredHasStatus = false): boolean {
  return (
    canonicalJson(comparable(live, desiredHasStatus)) === canonicalJson(comparable(dryRun, desiredHasStatus))
  );
}

function comparable(obj: KubeObject, keepStatus: boolean): unknown {
  const managedFields = obj.metadata.managedFields?.map(({ time: _t, ...rest }) => rest);
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  const { status: _s, ...rest } = obj as KubeObject & { status?: unknown };
  return { ...(keepStatus ? obj : rest), metadata: { ...metadata, managedFields } };
}

/** Whether an annotation pair says "never prune this object". */
export function pruneDisabled(annotations: Record<string, string> | undefined): boolean {
  return (
    annotations?.[FLUX_PRUNE_ANNOTATION] === "disabled" ||
    annotations?.[SHIPMATE_PRUNE_ANNOTATION] === "disabled"
  );
}

/** Adds the ownership labels Flux puts on every object, so objects can be traced to their Kustomization. */
export function withOwnerLabels(obj: KubeObject, ksName: string, ksNamespace: string): KubeObject {
  return {
    ...obj,
    metadata: {
      ...obj.metadata,
      labels: { ...obj.metadata.labels, [NAME_LABEL]: ksName, [NAMESPACE_LABEL]: ksNamespace },
    },
  };
}
