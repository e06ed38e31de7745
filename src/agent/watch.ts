/**
 * Wake-ups from the API server: the agent's passes are driven by its poll
 * loop, and this module only shortens the wait. It watches the kinds the agent
 * reconciles (`?watch=1`, as Flux's controllers' informers do) and wakes the
 * loop when a spec changes (generation), a reconcile is requested
 * (`reconcile.fluxcd.io/requestedAt`), or an object appears or goes. Status
 * writes — the agent's own included — change neither, so they wake nothing.
 *
 * A watch that fails or is not served is retried with backoff; while it is
 * down the poll interval still finds everything, so correctness never
 * depends on it. Pure fingerprinting first (tested with tables), then I/O.
 */
import type { KubeClient } from "../kube/client.ts";

/** What a watch event carries that can make a pass due. */
export interface WatchedObject {
  metadata?: {
    namespace?: string;
    name?: string;
    generation?: number;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
  };
}

/** The part of an object that makes work due; equal fingerprints mean nothing to do. */
export function fingerprint(obj: WatchedObject): string {
  const m = obj.metadata ?? {};
  return JSON.stringify([
    m.generation ?? 0,
    m.annotations?.["reconcile.fluxcd.io/requestedAt"] ?? "",
    m.annotations?.["reconcile.fluxcd.io/forceAt"] ?? "",
    m.deletionTimestamp ?? "",
  ]);
}

/**
 * Folds one watch event into the known fingerprints; true when it makes a
 * pass due. ADDED events replayed when a watch (re)starts are due only when
 * the object is new or changed since it was last seen.
 */
export function eventDue(known: Map<string, string>, type: string, obj: WatchedObject): boolean {
  const key = `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
  if (type === "DELETED") return known.delete(key);
  if (type !== "ADDED" && type !== "MODIFIED") return false;
  const print = fingerprint(obj);
  const before = known.get(key);
  known.set(key, print);
  return before !== print;
}

export interface WatcherOptions {
  client: KubeClient;
  /** Collection paths, e.g. /apis/kustomize.toolkit.fluxcd.io/v1/kustomizations. */
  paths: string[];
  wake: () => void;
  /** Called with a path and the reason a watch on it stopped (debug logging). */
  onError?: (path: string, message: string) => void;
}

/** Watches every path until `signal` aborts; never throws. */
export async function watchForWork(opts: WatcherOptions, signal: AbortSignal): Promise<void> {
  await Promise.all(opts.paths.map((path) => watchOne(opts, path, signal)));
}

async function watchOne(opts: WatcherOptions, path: string, signal: AbortSignal): Promise<void> {
  const known = new Map<string, string>();
  let primed = false;
  let delay = 1000;
  while (!signal.aborted) {
    try {
      // List, then watch from the list's version: every event after it is news.
      const { resourceVersion, items } = await opts.client.listForWatch(path);
      const seen = new Map<string, string>();
      let changed = false;
      for (const item of items) {
        if (eventDue(known, "ADDED", item as WatchedObject)) changed = true;
        const m = (item as WatchedObject).metadata;
        seen.set(`${m?.namespace ?? ""}/${m?.name ?? ""}`, "");
      }
      for (const key of [...known.keys()]) if (!seen.has(key) && known.delete(key)) changed = true;
      // After a gap (a watch that expired or failed) what changed meanwhile is due too.
      if (primed && changed) opts.wake();
      primed = true;
      await opts.client.watch(
        path,
        resourceVersion,
        (type, obj) => {
          if (eventDue(known, type, obj as WatchedObject)) opts.wake();
        },
        signal,
      );
      delay = 1000;
    } catch (err) {
      if (signal.aborted) return;
      opts.onError?.(path, (err as Error).message);
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        signal.addEventListener(
          "abort",
          () => {
            clearTimeout(t);
            r();
          },
          { once: true },
        );
      });
      delay = Math.min(delay * 2, 60_000);
    }
  }
}
