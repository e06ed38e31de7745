/**
 * Taking field ownership over from Flux's controllers, pure. A cluster that
 * Flux ran holds objects whose fields are owned (server-side apply
 * `managedFields`) by `kustomize-controller` (its applier) and
 * `helm-controller`. When the agent takes such a cluster over, those fields
 * become the agent's: the entries of exactly these managers on the main
 * resource are folded into the agent's own `Apply` entry, so that the next
 * server-side apply neither conflicts with a controller that is gone nor
 * leaves it co-owning fields nobody will ever release (a field that left git
 * would otherwise never be removed). Every other manager keeps what it owns.
 */
import type { ObjectMeta } from "./schema.ts";

/** Flux's field managers the agent takes over, and only these (fluxcd/kustomize-controller, fluxcd/helm-controller). */
export const FLUX_FIELD_MANAGERS: readonly string[] = ["kustomize-controller", "helm-controller"];

export type ManagedFieldsEntry = NonNullable<ObjectMeta["managedFields"]>[number];

type FieldSet = Record<string, unknown>;

function isFieldSet(v: unknown): v is FieldSet {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The union of two `FieldsV1` sets. A FieldsV1 set is a trie: each key is a
 * path element (`f:spec`, `k:{"name":"app"}`, `v:"x"`, `i:0`) or `.` (the
 * node itself), each value the set below it; the union is the merge of both
 * tries.
 */
export function unionFields(a: unknown, b: unknown): FieldSet {
  const out: FieldSet = {};
  const left = isFieldSet(a) ? a : {};
  const right = isFieldSet(b) ? b : {};
  for (const key of new Set([...Object.keys(left), ...Object.keys(right)])) {
    const l = left[key];
    const r = right[key];
    out[key] =
      l === undefined ? unionFields(r, {}) : r === undefined ? unionFields(l, {}) : unionFields(l, r);
  }
  return out;
}

/**
 * managedFields with the entries of `from` (on the main resource, any
 * operation) folded into `to`'s `Apply` entry; undefined when no entry of
 * `from` is there (nothing to take over). `apiVersion` is the version the
 * agent applies; an existing entry of `to` keeps its own.
 */
export function handOverManagedFields(
  entries: readonly ManagedFieldsEntry[],
  from: readonly string[],
  to: string,
  apiVersion: string,
  now: string,
): ManagedFieldsEntry[] | undefined {
  const taken = entries.filter((e) => !e.subresource && e.manager !== undefined && from.includes(e.manager));
  if (!taken.length) return undefined;
  const own = entries.find((e) => e.manager === to && e.operation === "Apply" && !e.subresource);
  let fields: FieldSet = isFieldSet(own?.fieldsV1) ? unionFields(own.fieldsV1, {}) : {};
  for (const e of taken) fields = unionFields(fields, e.fieldsV1);
  const merged: ManagedFieldsEntry = {
    manager: to,
    operation: "Apply",
    apiVersion: own?.apiVersion ?? apiVersion,
    time: now,
    fieldsType: "FieldsV1",
    fieldsV1: fields,
  };
  const rest = entries.filter((e) => e !== own && !taken.includes(e));
  return [...rest, merged];
}

/** Which of `from` own fields of the main resource of an object (for messages and plans). */
export function fluxOwners(
  meta: ObjectMeta | undefined,
  from: readonly string[] = FLUX_FIELD_MANAGERS,
): string[] {
  const found = new Set<string>();
  for (const e of meta?.managedFields ?? [])
    if (!e.subresource && e.manager && from.includes(e.manager)) found.add(e.manager);
  return [...found];
}
