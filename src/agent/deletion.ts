/**
 * Kustomization `spec.deletionPolicy`: what happens to a Kustomization's
 * objects when the Kustomization itself is deleted, as kustomize-controller's
 * finalizer decides it:
 *
 * | policy               | objects                                             |
 * | -------------------- | --------------------------------------------------- |
 * | MirrorPrune (default)| deleted when `prune` is true, left otherwise        |
 * | Delete               | deleted                                             |
 * | WaitForTermination   | deleted, then waited for until gone (`timeout`)     |
 * | Orphan               | left                                                |
 *
 * A suspended Kustomization, or one with an empty inventory, deletes nothing
 * whatever its policy. A WaitForTermination that times out is logged and the
 * deletion goes on, as in Flux.
 */
import type { KubeClient } from "../kube/client.ts";
import { type Discovery, resourcePath } from "../kube/discovery.ts";
import { describeRef, type ObjectRef } from "../kube/objects.ts";
import { sleep } from "./leader.ts";

export const DELETION_POLICIES = ["MirrorPrune", "Delete", "WaitForTermination", "Orphan"] as const;
export type DeletionPolicy = (typeof DELETION_POLICIES)[number];

export interface DeletionPlan {
  /** Delete the inventory's objects. */
  delete: boolean;
  /** And wait until the API server no longer has them. */
  wait: boolean;
}

export function deletionPlan(
  spec: { prune?: boolean; suspend?: boolean; deletionPolicy?: string },
  inventorySize: number,
): DeletionPlan {
  const none = { delete: false, wait: false };
  if (spec.suspend || inventorySize === 0) return none;
  switch (spec.deletionPolicy ?? "MirrorPrune") {
    case "MirrorPrune":
      return { delete: Boolean(spec.prune), wait: false };
    case "Delete":
      return { delete: true, wait: false };
    case "WaitForTermination":
      return { delete: true, wait: true };
    default:
      return none;
  }
}

/**
 * Polls until every object is gone (404) or the timeout passes; returns the
 * objects still there, so the caller can log them.
 */
export async function waitForTermination(
  client: KubeClient,
  discovery: Discovery,
  refs: readonly ObjectRef[],
  timeoutMs: number,
  opts: { pollMs?: number; signal?: AbortSignal } = {},
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let left = [...refs];
  for (;;) {
    const still: ObjectRef[] = [];
    for (const ref of left) {
      const apiVersion = ref.group ? `${ref.group}/${ref.version}` : ref.version;
      const info = await discovery.find(apiVersion, ref.kind).catch(() => undefined);
      if (!info) continue; // the kind is gone, and its objects with it
      const res = await client.raw({ method: "GET", path: resourcePath(info, ref.namespace, ref.name) });
      if (res.code !== 404) still.push(ref);
    }
    left = still;
    if (!left.length || Date.now() >= deadline || opts.signal?.aborted) return left.map(describeRef);
    await sleep(Math.min(opts.pollMs ?? 2000, Math.max(0, deadline - Date.now())), opts.signal);
  }
}
