/**
 * Kubernetes Events about Kustomizations (core/v1, so `kubectl describe` and
 * `kubectl get events` show them), in Flux's reasons. A repeat of the last
 * event for the same object is not posted again, so a steady cluster makes
 * no event writes.
 */
import type { KubeClient } from "./client.ts";
import { KubeObject } from "./schema.ts";

export interface Involved {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

const MAX_MESSAGE = 4000;

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly instance: string;
  private readonly last = new Map<string, string>();

  constructor(client: KubeClient, instance: string) {
    this.client = client;
    this.instance = instance;
  }

  /** Posts an event; failures are returned, never thrown (events are best effort). */
  async emit(
    obj: Involved,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<Error | undefined> {
    const key = `${obj.namespace}/${obj.kind}/${obj.name}`;
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    if (this.last.get(key) === `${type}/${reason}/${text}`) return undefined;
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
            source: { component: "shipmate-agent" },
            reportingComponent: "shipmate-agent",
            reportingInstance: this.instance,
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        },
        KubeObject,
        `event on ${key}`,
      );
      this.last.set(key, `${type}/${reason}/${text}`);
      return undefined;
    } catch (err) {
      return err as Error;
    }
  }
}
