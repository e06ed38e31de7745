/**
 * Status as Flux's controllers write it, for the kinds the agent serves
 * beside its Kustomizations (image objects, ImageUpdateAutomation,
 * Receiver): `Ready` (and `Stalled` when retrying cannot help) from one
 * outcome, `observedGeneration`, the handled reconcile request, plus the
 * kind's own fields; written as a merge patch of the status subresource,
 * and only when something differs.
 */
import type { KubeClient } from "../kube/client.ts";
import { apiError } from "../kube/client.ts";
import { canonicalJson, REQUESTED_AT_ANNOTATION } from "../kube/objects.ts";
import type { Condition } from "../kube/schema.ts";
import { removeCondition, setCondition } from "./kustomization.ts";

/** What one reconcile came to: a reason means Ready=False (and Stalled when `stalled`). */
export interface Outcome {
  message: string;
  reason?: string;
  stalled?: boolean;
}

export interface StatusObject {
  metadata: { namespace: string; name: string; generation?: number; annotations?: Record<string, string> };
  status?: { conditions?: Condition[]; [field: string]: unknown };
}

/** A served object as the API server lists it (image objects, ImageUpdateAutomation). */
export interface ServedObject {
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    generation?: number;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown> & { conditions?: Condition[]; observedGeneration?: number };
}

/** Thrown inside a reconcile: becomes Ready=False with Flux's reason (and Stalled when `stalled`). */
export class ReconcileFailure extends Error {
  readonly reason: string;
  readonly stalled: boolean;
  constructor(reason: string, message: string, stalled = false) {
    super(message);
    this.reason = reason;
    this.stalled = stalled;
  }
}

/** Flux's status time: seconds, no fraction. */
export const statusTime = (): string => new Date().toISOString().replace(/\.\d+Z$/, "Z");

/**
 * A failed reconcile's conditions, as every Flux controller writes them:
 * Ready=False with the reason, Stalled=True beside it when retrying cannot
 * help (removed otherwise), Reconciling gone. `g` carries observedGeneration.
 */
export function failedConditions(
  conditions: Condition[],
  failure: { reason: string; message: string; stalled?: boolean | undefined },
  g: { observedGeneration?: number },
  time: string,
): Condition[] {
  const failed = { status: "False" as const, reason: failure.reason, message: failure.message, ...g };
  const next = setCondition(removeCondition(conditions, "Reconciling"), { type: "Ready", ...failed }, time);
  return failure.stalled
    ? setCondition(next, { type: "Stalled", ...failed, status: "True" }, time)
    : removeCondition(next, "Stalled");
}

/** The status `outcome` gives `obj` (pure), or undefined when it is the status it has. */
export function nextStatus(
  obj: StatusObject,
  outcome: Outcome,
  extra: Record<string, unknown>,
  time: string,
  opts: { handlesRequests: boolean },
): Record<string, unknown> | undefined {
  const prev = obj.status ?? {};
  const g = obj.metadata.generation === undefined ? {} : { observedGeneration: obj.metadata.generation };
  const requestedAt = opts.handlesRequests ? obj.metadata.annotations?.[REQUESTED_AT_ANNOTATION] : undefined;
  let conditions = prev.conditions ?? [];
  if (outcome.reason) {
    conditions = failedConditions(conditions, { ...outcome, reason: outcome.reason }, g, time);
  } else {
    conditions = removeCondition(removeCondition(conditions, "Reconciling"), "Stalled");
    conditions = setCondition(
      conditions,
      { type: "Ready", status: "True", reason: "Succeeded", message: outcome.message, ...g },
      time,
    );
  }
  const next = {
    ...prev,
    ...extra,
    ...g,
    ...(requestedAt ? { lastHandledReconcileAt: requestedAt } : {}),
    conditions,
  };
  return canonicalJson(prev) === canonicalJson(next) ? undefined : next;
}

/**
 * Writes `outcome` into the status of `obj` at `path` (its object path,
 * without `/status`) when it changes anything; an object deleted meanwhile
 * is left alone. `what` names it in a refusal ("Kind namespace/name").
 */
export async function writeOutcome(
  client: KubeClient,
  path: string,
  what: string,
  obj: StatusObject,
  outcome: Outcome,
  extra: Record<string, unknown>,
  opts: { handlesRequests: boolean },
): Promise<void> {
  const next = nextStatus(obj, outcome, extra, statusTime(), opts);
  if (!next) return;
  const res = await client.raw({
    method: "PATCH",
    path: `${path}/status`,
    body: { status: next },
    contentType: "application/merge-patch+json",
  });
  if (res.code === 404) return;
  if (res.code < 200 || res.code > 299) throw apiError(`status of ${what}`, res.code, res.body);
  obj.status = next;
}
