/**
 * The dashboard's view of a cluster: one list+watch per kind (sources,
 * Kustomizations, HelmReleases, the Deployments they apply, whose images
 * are what the cluster runs, and the Events about Flux objects — the agent's
 * reports — the newest 200 of them), objects trimmed to what the page shows
 * kept in memory, and a callback on every change. A kind the API server does not serve (no CRD) is listed as
 * missing; an API server that goes away marks the snapshot disconnected with
 * the reason, and the watches start again with backoff until it is back.
 */
import { ApiError, type KubeClient } from "../kube/client.ts";
import type { ClusterSnapshot, KubeObject } from "./model.ts";

/** The kinds watched, with their collection paths (all namespaces). */
export const WATCHED: readonly { kind: string; path: string }[] = [
  { kind: "GitRepository", path: "/apis/source.toolkit.fluxcd.io/v1/gitrepositories" },
  { kind: "OCIRepository", path: "/apis/source.toolkit.fluxcd.io/v1/ocirepositories" },
  { kind: "Kustomization", path: "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations" },
  { kind: "HelmRelease", path: "/apis/helm.toolkit.fluxcd.io/v2/helmreleases" },
  { kind: "Deployment", path: "/apis/apps/v1/deployments" },
  { kind: "Event", path: "/api/v1/events" },
];

/** Events kept (the newest by time): the page shows 50, of all objects or of one. */
export const EVENTS_KEPT = 200;

/** Flux's API groups: an Event about an object of one of them is the agent's report on it. */
const FLUX_GROUP = /^[a-z]+\.toolkit\.fluxcd\.io\//;

const keyOf = (o: KubeObject) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

/** Only what the read model needs: a Deployment keeps its pod template's images, nothing of its env or volumes. */
function trim(kind: string, o: KubeObject): KubeObject | undefined {
  const metadata = { namespace: o.metadata?.namespace ?? "", name: o.metadata?.name ?? "" };
  if (kind === "Event") {
    const e = o as KubeObject & Record<string, unknown>;
    const involved = (e.involvedObject ?? {}) as Record<string, unknown>;
    if (typeof involved.apiVersion !== "string" || !FLUX_GROUP.test(involved.apiVersion)) return undefined;
    const str = (v: unknown) => (typeof v === "string" ? v : "");
    return {
      metadata,
      involvedObject: {
        kind: str(involved.kind),
        namespace: str(involved.namespace),
        name: str(involved.name),
      },
      type: str(e.type),
      reason: str(e.reason),
      message: str(e.message).slice(0, 500),
      time:
        str(e.lastTimestamp) ||
        str(e.eventTime) ||
        str((o.metadata as { creationTimestamp?: unknown } | undefined)?.creationTimestamp),
      count: typeof e.count === "number" ? e.count : 1,
    } as KubeObject;
  }
  if (kind === "Deployment") {
    const spec = (o.spec?.template as { spec?: { containers?: unknown; initContainers?: unknown } })?.spec;
    const images = (list: unknown) =>
      Array.isArray(list)
        ? list.map((c: { name?: unknown; image?: unknown }) => ({ name: c.name, image: c.image }))
        : [];
    return {
      metadata,
      spec: {
        template: {
          spec: { containers: images(spec?.containers), initContainers: images(spec?.initContainers) },
        },
      },
    };
  }
  // Specs of sources may name Secrets, never hold them; the page reads path and suspend only.
  const spec = o.spec ?? {};
  return {
    metadata,
    spec: {
      ...(spec.path !== undefined ? { path: spec.path } : {}),
      ...(spec.suspend === true ? { suspend: true } : {}),
    },
    status: o.status ?? {},
  };
}

export class ClusterWatcher {
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly missing = new Set<string>();
  private readonly failures = new Map<string, string>();
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;
  private readonly client: KubeClient;
  private readonly onChange: () => void;

  constructor(client: KubeClient, onChange: () => void) {
    this.client = client;
    this.onChange = onChange;
    for (const w of WATCHED) this.objects.set(w.kind, new Map());
    this.done = Promise.all(WATCHED.map((w) => this.run(w.kind, w.path))).then(() => undefined);
  }

  snapshot(): ClusterSnapshot {
    const objects: Record<string, KubeObject[]> = {};
    for (const [kind, m] of this.objects) objects[kind] = [...m.values()];
    const error = [...this.failures.values()][0];
    return {
      connected: this.failures.size === 0,
      ...(error ? { error } : {}),
      objects,
      missing: [...this.missing].sort(),
    };
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
    this.client.close();
  }

  /** Stores the object trimmed; false when it is not one the page shows (an Event about another kind). */
  private keep(kind: string, store: Map<string, KubeObject>, o: KubeObject): boolean {
    const t = trim(kind, o);
    if (!t) return false;
    store.set(keyOf(o), t);
    if (kind === "Event" && store.size > EVENTS_KEPT) {
      let oldest: [string, string] | undefined;
      for (const [k, e] of store) {
        const at = String((e as { time?: unknown }).time ?? "");
        if (!oldest || at < oldest[1]) oldest = [k, at];
      }
      if (oldest) store.delete(oldest[0]);
    }
    return true;
  }

  private async run(kind: string, path: string): Promise<void> {
    const signal = this.abort.signal;
    let delay = 500;
    const store = this.objects.get(kind)!;
    while (!signal.aborted) {
      try {
        const list = await this.client.listForWatch(path, true);
        store.clear();
        for (const item of list.items) this.keep(kind, store, item as KubeObject);
        this.missing.delete(kind);
        this.failures.delete(kind);
        this.onChange();
        delay = 500;
        await this.client.watch(
          path,
          list.resourceVersion,
          (type, obj) => {
            const o = obj as KubeObject;
            if (type === "DELETED") {
              if (!store.delete(keyOf(o))) return;
            } else if (!this.keep(kind, store, o)) return;
            this.onChange();
          },
          signal,
          true,
        );
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.code === 404) {
          // The CRD is not installed: nothing to show, look again later.
          if (!this.missing.has(kind) || this.failures.has(kind)) {
            this.missing.add(kind);
            this.failures.delete(kind);
            store.clear();
            this.onChange();
          }
          delay = 10_000;
        } else {
          const message = (err as Error).message.split("\n")[0] ?? "";
          if (this.failures.get(kind) !== message) {
            this.failures.set(kind, message);
            this.onChange();
          }
        }
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
        // Short enough that the page recovers within seconds of the API server coming back.
        delay = Math.min(delay * 2, 3_000);
      }
    }
  }
}
