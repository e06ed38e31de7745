/**
 * Flagger Canaries the agent's Kustomizations applied, as the agent reports
 * them (pure; the reads and the events are in ./agent.ts): which Canaries
 * each inventory holds, grouped by namespace (one list per namespace), and
 * the event a Canary's phase change makes on the Kustomization that applied
 * it — a Warning `CanaryFailed` on the move to `Failed`, a Normal
 * `CanarySucceeded` on the move to `Succeeded`, nothing otherwise. Flux's
 * Alerts cannot name a Canary in `eventSources`, so the Kustomization
 * carries the news to them.
 */
import { z } from "zod";
import type { CanaryStatus } from "../kube/flagger.ts";
import { CanaryStatusSchema, FLAGGER_GROUP } from "../kube/flagger.ts";
import { parseInventoryId } from "../kube/objects.ts";

export type { CanaryStatus };

const CanaryItem = z.looseObject({
  metadata: z.looseObject({ name: z.string(), namespace: z.string().optional() }),
  status: CanaryStatusSchema.optional(),
});
export const CanaryList = z.looseObject({ items: z.array(CanaryItem) });
export type CanaryItem = z.infer<typeof CanaryItem>;

/**
 * The Canaries the owners' inventories hold, by namespace then name, each
 * with its owner (the first to list it). Empty when no inventory holds one:
 * then nothing is read.
 */
export function canariesByNamespace<T>(
  owners: readonly { owner: T; entries: readonly { id: string; v: string }[] }[],
): Map<string, Map<string, T>> {
  const out = new Map<string, Map<string, T>>();
  for (const { owner, entries } of owners)
    for (const e of entries) {
      const ref = parseInventoryId(e.id, e.v);
      if (ref?.group !== FLAGGER_GROUP || ref.kind !== "Canary" || !ref.namespace) continue;
      const names = out.get(ref.namespace) ?? new Map<string, T>();
      out.set(ref.namespace, names);
      if (!names.has(ref.name)) names.set(ref.name, owner);
    }
  return out;
}

export interface CanaryEvent {
  type: "Normal" | "Warning";
  reason: "CanaryFailed" | "CanarySucceeded";
  message: string;
}

const oneLine = (s: string) => s.replace(/\s+/g, " ").trim();

/** Flagger's word on the phase: its `Promoted` condition's message, else the last condition's. */
function conditionMessage(status: CanaryStatus): string | undefined {
  const conditions = status.conditions ?? [];
  const said = (conditions.find((c) => c.type === "Promoted") ?? conditions.at(-1))?.message;
  return said ? oneLine(said) : undefined;
}

/**
 * The event a Canary's current status makes, given the phase this process
 * saw last (`""` when it had none yet; `undefined` when the Canary was never
 * seen). Only a change of phase is news; a Canary first seen already
 * finished is news only when it finished after `startedAt` (the agent's
 * start), so a restart does not report old outcomes again.
 */
export function canaryTransition(
  canary: { namespace: string; name: string },
  previous: string | undefined,
  status: CanaryStatus | undefined,
  startedAt: number,
): CanaryEvent | undefined {
  const phase = status?.phase ?? "";
  if (!status || phase === previous || (phase !== "Failed" && phase !== "Succeeded")) return undefined;
  if (previous === undefined && !(Date.parse(status.lastTransitionTime ?? "") > startedAt)) return undefined;
  const id = `${canary.namespace}/${canary.name}`;
  if (phase === "Succeeded")
    return {
      type: "Normal",
      reason: "CanarySucceeded",
      message: `Canary ${id} succeeded: ${conditionMessage(status) ?? "promotion finished."}`,
    };
  const checks = status.failedChecks ?? 0;
  return {
    type: "Warning",
    reason: "CanaryFailed",
    message: `Canary ${id} failed: ${conditionMessage(status) ?? "analysis failed."} (${checks} failed check${checks === 1 ? "" : "s"})`,
  };
}
