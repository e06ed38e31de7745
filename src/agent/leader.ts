/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules:
 * a lease is taken over only after its holder has not renewed it for a whole
 * lease duration *as observed locally* (no reliance on synchronized clocks),
 * updates carry the resourceVersion read (optimistic concurrency), and a
 * leader that cannot renew within the renew deadline — shorter than the lease
 * duration — stops acting before anyone else may start.
 */
import { timerMs } from "../config/duration.ts";
import type { KubeClient } from "../kube/client.ts";
import { Lease } from "../kube/schema.ts";

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly opts: Required<LeaderOptions>;
  private observed: { key: string; at: number } | undefined;
  private leading = false;

  constructor(client: KubeClient, opts: LeaderOptions) {
    this.client = client;
    this.opts = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts };
    if (this.opts.renewDeadlineMs >= this.opts.leaseDurationMs) {
      throw new Error("leader election: the renew deadline must be shorter than the lease duration");
    }
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    const { namespace, name } = this.opts;
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases/${encodeURIComponent(name)}`;
  }

  /** One attempt to acquire or renew; true when this identity holds the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const seconds = Math.ceil(this.opts.leaseDurationMs / 1000);
    const res = await this.client.raw({ method: "GET", path: this.path });
    if (res.code === 404) {
      const created = await this.client.raw({
        method: "POST",
        path: this.path.slice(0, this.path.lastIndexOf("/")),
        body: {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name: this.opts.name, namespace: this.opts.namespace },
          spec: {
            holderIdentity: this.opts.identity,
            leaseDurationSeconds: seconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        },
      });
      return created.code === 201;
    }
    if (res.code !== 200) return false;
    const lease = Lease.parse(res.body);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    // Expiry is judged by when *we* saw the record change, not by the holder's clock.
    const key = `${holder}|${spec.renewTime ?? ""}|${lease.metadata.resourceVersion ?? ""}`;
    if (this.observed?.key !== key) this.observed = { key, at: Date.now() };
    const duration = (spec.leaseDurationSeconds ?? seconds) * 1000;
    if (holder && holder !== this.opts.identity && this.observed.at + duration > Date.now()) return false;
    const mine = holder === this.opts.identity;
    const updated = await this.client.raw({
      method: "PUT",
      path: this.path,
      body: {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { ...lease.metadata, managedFields: undefined },
        spec: {
          holderIdentity: this.opts.identity,
          leaseDurationSeconds: seconds,
          acquireTime: mine && spec.acquireTime ? spec.acquireTime : microTime(now),
          renewTime: microTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      },
    });
    if (updated.code !== 200) return false;
    const after = Lease.parse(updated.body);
    this.observed = {
      key: `${this.opts.identity}|${after.spec?.renewTime ?? ""}|${after.metadata.resourceVersion ?? ""}`,
      at: Date.now(),
    };
    return true;
  }

  /**
   * Waits for the lease, then runs `lead` with a signal that aborts when
   * leadership is lost (or `stop` aborts). Resolves when leadership ends.
   */
  async run(
    stop: AbortSignal,
    lead: (signal: AbortSignal) => Promise<void>,
    onChange?: (leading: boolean) => void,
  ) {
    while (!stop.aborted) {
      const ok = await this.tryAcquireOrRenew().catch(() => false);
      if (ok) break;
      await sleep(this.opts.retryPeriodMs, stop);
    }
    if (stop.aborted) return;
    this.leading = true;
    onChange?.(true);
    const lost = new AbortController();
    const onStop = () => lost.abort(new Error("stopping"));
    stop.addEventListener("abort", onStop, { once: true });
    const renewer = (async () => {
      let lastRenew = Date.now();
      while (!lost.signal.aborted) {
        await sleep(this.opts.retryPeriodMs, lost.signal);
        if (lost.signal.aborted) break;
        const ok = await this.tryAcquireOrRenew().catch(() => false);
        if (ok) lastRenew = Date.now();
        else if (Date.now() - lastRenew >= this.opts.renewDeadlineMs) {
          lost.abort(new Error("leader lease lost"));
        }
      }
    })();
    try {
      await lead(lost.signal);
    } finally {
      if (!lost.signal.aborted) lost.abort(new Error("done"));
      await renewer;
      stop.removeEventListener("abort", onStop);
      this.leading = false;
      onChange?.(false);
    }
  }

  /** Gives the lease up (on a clean shutdown) so a standby takes over without waiting for expiry. */
  async release(): Promise<void> {
    const res = await this.client.raw({ method: "GET", path: this.path }).catch(() => undefined);
    if (res?.code !== 200) return;
    const lease = Lease.parse(res.body);
    if (lease.spec?.holderIdentity !== this.opts.identity) return;
    await this.client
      .raw({
        method: "PUT",
        path: this.path,
        body: {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { ...lease.metadata, managedFields: undefined },
          spec: {
            ...lease.spec,
            holderIdentity: "",
            leaseDurationSeconds: 1,
            renewTime: microTime(new Date()),
          },
        },
      })
      .catch(() => undefined);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, timerMs(ms));
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
