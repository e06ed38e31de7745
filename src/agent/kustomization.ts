/**
 * Pure rules over Flux Kustomizations: durations, the dependsOn graph,
 * status conditions in Flux's vocabulary (Ready / Reconciling / Stalled /
 * Healthy), and when a Kustomization is due for another reconcile.
 */
import type { Condition, KustomizationSpec, KustomizationStatus } from "../kube/schema.ts";

/**
 * Whether a Kustomization CRD stores the agent's inventory state hashes
 * (`status.inventory.entries[].h`). The agent's own CRD keeps unknown fields;
 * Flux's CRD has a structural schema listing `id` and `v` only, so the API
 * server prunes `h` (and the agent then validates every object each pass,
 * with dry runs, instead of trusting a hash).
 */
export function inventoryKeepsHashes(crd: unknown): boolean {
  type Schema = {
    properties?: Record<string, Schema>;
    items?: Schema;
    "x-kubernetes-preserve-unknown-fields"?: boolean;
  };
  const versions =
    (
      crd as {
        spec?: { versions?: { name: string; storage?: boolean; schema?: { openAPIV3Schema?: Schema } }[] };
      }
    ).spec?.versions ?? [];
  const v1 = versions.find((v) => v.name === "v1") ?? versions.find((v) => v.storage);
  let node: Schema | undefined = v1?.schema?.openAPIV3Schema;
  if (!node) return true;
  for (const step of ["status", "inventory", "entries", "[]"]) {
    if (node?.["x-kubernetes-preserve-unknown-fields"]) return true;
    node = step === "[]" ? node?.items : node?.properties?.[step];
    if (!node) return true; // not described below here: nothing is pruned
  }
  return Boolean(node?.["x-kubernetes-preserve-unknown-fields"] || node?.properties?.h || !node?.properties);
}

/** The status as a CRD that prunes `h` stores it. */
export function withoutHashes(status: KustomizationStatus): KustomizationStatus {
  const entries = status.inventory?.entries;
  if (!entries) return status;
  return { ...status, inventory: { ...status.inventory, entries: entries.map(({ h: _h, ...e }) => e) } };
}

/** Parses Go duration strings as Flux writes them ("1m30s", "500ms", "2h"). */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === "ms" ? n : unit === "s" ? n * 1000 : unit === "m" ? n * 60_000 : n * 3_600_000;
    consumed += m[0].length;
  }
  if (consumed !== text.length || consumed === 0) throw new Error(`invalid duration "${text}"`);
  return total;
}

export interface KsKey {
  name: string;
  namespace: string;
}
export const keyOf = (k: KsKey): string => `${k.namespace}/${k.name}`;

/**
 * Orders Kustomizations so every one comes after those it depends on.
 * Members of a cycle, and those depending on a missing Kustomization, are
 * returned apart with the reason; the rest keep their input order otherwise.
 */
export function orderByDependencies<T extends KsKey & { dependsOn: KsKey[] }>(
  items: T[],
): { order: T[]; blocked: { item: T; reason: string }[] } {
  const byKey = new Map(items.map((i) => [keyOf(i), i]));
  const state = new Map<string, "visiting" | "done" | "bad">();
  const reasons = new Map<string, string>();
  const order: T[] = [];
  const visit = (item: T, path: string[]): boolean => {
    const k = keyOf(item);
    const s = state.get(k);
    if (s === "done") return true;
    if (s === "bad") return false;
    if (s === "visiting") {
      const cycle = [...path.slice(path.indexOf(k)), k].join(" -> ");
      for (const member of path.slice(path.indexOf(k))) {
        state.set(member, "bad");
        reasons.set(member, `dependency cycle: ${cycle}`);
      }
      return false;
    }
    state.set(k, "visiting");
    for (const dep of item.dependsOn) {
      const dk = keyOf(dep);
      const target = byKey.get(dk);
      if (!target) {
        state.set(k, "bad");
        reasons.set(k, `depends on ${dk}, which is not defined`);
        return false;
      }
      if (!visit(target, [...path, k])) {
        if (!reasons.has(k)) reasons.set(k, `depends on ${dk}, which cannot be reconciled`);
        state.set(k, "bad");
        return false;
      }
    }
    if (state.get(k) === "bad") return false;
    state.set(k, "done");
    order.push(item);
    return true;
  };
  for (const item of items) visit(item, []);
  const blocked = items
    .filter((i) => state.get(keyOf(i)) === "bad")
    .map((item) => ({ item, reason: reasons.get(keyOf(item)) ?? "blocked" }));
  return { order, blocked };
}

/** The dependencies of a spec with Flux's defaulting: a missing namespace means the dependent's own. */
export function dependenciesOf(spec: Pick<KustomizationSpec, "dependsOn">, namespace: string): KsKey[] {
  return (spec.dependsOn ?? []).map((d) => ({ name: d.name, namespace: d.namespace ?? namespace }));
}

export interface ConditionInput {
  type: string;
  status: Condition["status"];
  reason: string;
  message: string;
  observedGeneration?: number;
}

/**
 * Sets (or replaces) a condition; the transition time moves only when the
 * status flips, as the Kubernetes API conventions require.
 */
export function setCondition(conditions: Condition[], next: ConditionInput, now: string): Condition[] {
  const prev = conditions.find((c) => c.type === next.type);
  const lastTransitionTime = prev && prev.status === next.status ? prev.lastTransitionTime : now;
  const merged: Condition = { ...next, lastTransitionTime };
  return prev ? conditions.map((c) => (c.type === next.type ? merged : c)) : [...conditions, merged];
}

export function removeCondition(conditions: Condition[], type: string): Condition[] {
  return conditions.filter((c) => c.type !== type);
}

export function getCondition(status: KustomizationStatus | undefined, type: string): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** Ready=True at `revision`: what dependents and the promotion gate wait for. */
export function readyAt(status: KustomizationStatus | undefined, revision?: string): boolean {
  if (getCondition(status, "Ready")?.status !== "True") return false;
  return revision === undefined || status?.lastAppliedRevision === revision;
}

/** The outcome of one reconcile, turned into conditions by `conditionsFor`. */
export type Outcome =
  | { kind: "progressing"; message: string }
  | { kind: "succeeded"; message: string; healthy?: boolean }
  | { kind: "failed"; reason: string; message: string; stalled?: boolean; health?: "failed" | "unknown" };

/**
 * Flux's condition shape for an outcome: Ready with the reason, Reconciling
 * while work is under way, Stalled when retrying will not help until
 * something changes, Healthy when health is assessed (wait/healthChecks).
 */
export function conditionsFor(
  previous: Condition[],
  outcome: Outcome,
  generation: number | undefined,
  now: string,
  assessesHealth: boolean,
): Condition[] {
  const g = generation === undefined ? {} : { observedGeneration: generation };
  let c = previous;
  switch (outcome.kind) {
    case "progressing":
      c = setCondition(
        c,
        { type: "Reconciling", status: "True", reason: "Progressing", message: outcome.message, ...g },
        now,
      );
      c = setCondition(
        c,
        { type: "Ready", status: "Unknown", reason: "Progressing", message: outcome.message, ...g },
        now,
      );
      return c;
    case "succeeded":
      c = removeCondition(c, "Reconciling");
      c = removeCondition(c, "Stalled");
      c = setCondition(
        c,
        { type: "Ready", status: "True", reason: "ReconciliationSucceeded", message: outcome.message, ...g },
        now,
      );
      if (assessesHealth) {
        c = setCondition(
          c,
          { type: "Healthy", status: "True", reason: "Succeeded", message: "Health check passed", ...g },
          now,
        );
      } else c = removeCondition(c, "Healthy");
      return c;
    case "failed":
      c = removeCondition(c, "Reconciling");
      c = setCondition(
        c,
        { type: "Ready", status: "False", reason: outcome.reason, message: outcome.message, ...g },
        now,
      );
      c = outcome.stalled
        ? setCondition(
            c,
            { type: "Stalled", status: "True", reason: outcome.reason, message: outcome.message, ...g },
            now,
          )
        : removeCondition(c, "Stalled");
      if (outcome.health === "failed") {
        c = setCondition(
          c,
          { type: "Healthy", status: "False", reason: outcome.reason, message: outcome.message, ...g },
          now,
        );
      }
      return c;
  }
}

/** Why a Kustomization should be reconciled now, or undefined when it is not due. */
export function dueReason(input: {
  now: number;
  lastRun: number | undefined;
  lastFailed: boolean;
  intervalMs: number;
  retryIntervalMs: number;
  revision: string;
  status: KustomizationStatus | undefined;
  generation: number | undefined;
  requestedAt: string | undefined;
}): string | undefined {
  const { status } = input;
  if (input.lastRun === undefined) return "first reconcile since start";
  if (status?.lastAttemptedRevision !== input.revision) return `new revision ${input.revision}`;
  if (input.generation !== undefined && status?.observedGeneration !== input.generation)
    return "spec changed";
  if (input.requestedAt && input.requestedAt !== status?.lastHandledReconcileAt) return "reconcile requested";
  const wait = input.lastFailed ? input.retryIntervalMs : input.intervalMs;
  if (input.now - input.lastRun >= wait) return input.lastFailed ? "retry after failure" : "interval elapsed";
  return undefined;
}
