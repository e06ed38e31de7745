/**
 * Kubernetes Events about the objects the agent reconciles (core/v1, so
 * `kubectl describe` and `kubectl get events` show them), in Flux's reasons.
 *
 * Flux's recorder (fluxcd/pkg runtime/events) hands each event to
 * client-go's EventCorrelator: an identical event (same source, involved
 * object, type, reason and message) seen again by the same process is a
 * PATCH bumping `count` and `lastTimestamp`; a restarted controller has an
 * empty cache and creates a new Event. The agent is quieter: an event
 * identical to the last one it recorded for the object is not written at
 * all, and "the last one" is read from the cluster the first time this
 * process records for an object, so a restart (every `--once` run is one)
 * does not post it again either. A steady cluster, failing or not, costs
 * no event write.
 *
 * Each event that is new by that rule is also handed to the sink (the
 * agent's notifications, ./notifications.ts), with its metadata (the
 * revision acted on): the sink only queues, so recording stays as fast.
 */
import type { KubeClient } from "../kube/client.ts";
import { KubeObject } from "../kube/schema.ts";

export interface Involved {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

const MAX_MESSAGE = 4000;
const COMPONENT = "shipmate-agent";

/** The fields of a listed core/v1 Event the recorder compares. */
interface EventLike {
  metadata?: { resourceVersion?: string; creationTimestamp?: string };
  type?: string;
  reason?: string;
  message?: string;
  source?: { component?: string };
  reportingComponent?: string;
  lastTimestamp?: string | null;
  eventTime?: string | null;
}

/** The newest of the agent's own events in a list, by time and then by resourceVersion (etcd order). */
export function latestOwnEvent(items: readonly EventLike[]): EventLike | undefined {
  const time = (e: EventLike) =>
    Date.parse(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? "") || 0;
  const rv = (e: EventLike) => Number(e.metadata?.resourceVersion ?? 0) || 0;
  let best: EventLike | undefined;
  for (const e of items) {
    if (e.source?.component !== COMPONENT && e.reportingComponent !== COMPONENT) continue;
    if (!best || time(e) > time(best) || (time(e) === time(best) && rv(e) > rv(best))) best = e;
  }
  return best;
}

const signature = (type: string | undefined, reason: string | undefined, message: string | undefined) =>
  `${type}/${reason}/${message}`;

export type EventSink = (
  obj: Involved,
  type: "Normal" | "Warning",
  reason: string,
  message: string,
  metadata?: Record<string, string>,
) => void;

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly instance: string;
  private readonly last = new Map<string, string>();
  /** Where new events go besides the cluster (notifications); set once by the agent. */
  sink: EventSink | undefined;

  constructor(client: KubeClient, instance: string) {
    this.client = client;
    this.instance = instance;
  }

  /** The last event this agent recorded for the object, as the cluster holds it (a read, never a write). */
  private async lastInCluster(obj: Involved): Promise<string | undefined> {
    const selector = [
      `involvedObject.kind=${obj.kind}`,
      `involvedObject.name=${obj.name}`,
      ...(obj.uid ? [`involvedObject.uid=${obj.uid}`] : []),
    ].join(",");
    const res = await this.client.raw({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(obj.namespace)}/events`,
      query: { fieldSelector: selector },
    });
    if (res.code !== 200) return undefined;
    const items = ((res.body as { items?: EventLike[] } | undefined)?.items ?? []) as EventLike[];
    const e = latestOwnEvent(items);
    return e ? signature(e.type, e.reason, e.message) : undefined;
  }

  /** Posts an event; failures are returned, never thrown (events are best effort). */
  async emit(
    obj: Involved,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
    metadata?: Record<string, string>,
  ): Promise<Error | undefined> {
    const key = `${obj.namespace}/${obj.kind}/${obj.name}`;
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    const sig = signature(type, reason, text);
    if (!this.last.has(key)) {
      const seen = await this.lastInCluster(obj).catch(() => undefined);
      if (seen !== undefined) this.last.set(key, seen);
    }
    if (this.last.get(key) === sig) return undefined;
    try {
      this.sink?.(obj, type, reason, text, metadata);
    } catch {
      // notifications are best effort and never fail a reconcile
    }
    const now = new Date().toISOString();
    try {
      await this.client.call(
        {
          method: "POST",
          path: `/api/v1/namespaces/${encodeURIComponent(obj.namespace)}/events`,
          body: {
            apiVersion: "v1",
            kind: "Event",
            metadata: { generateName: `${obj.name}.`, namespace: obj.namespace },
            involvedObject: obj,
            type,
            reason,
            message: text,
            source: { component: COMPONENT },
            reportingComponent: COMPONENT,
            reportingInstance: this.instance,
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        },
        KubeObject,
        `event on ${key}`,
      );
      this.last.set(key, sig);
      return undefined;
    } catch (err) {
      return err as Error;
    }
  }
}
