/**
 * Prometheus metrics for one agent, on a registry of its own (two agents in
 * one process never mix figures). Per-object series of the kinds the Flux
 * controllers expose (`gotk_reconcile_duration_seconds`,
 * `gotk_reconcile_condition`, `gotk_suspend_status`, labelled by kind) are
 * written for HelmReleases, so dashboards made for helm-controller read them.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { KubeClient } from "../kube/client.ts";

export class AgentMetrics {
  readonly registry = new Registry();
  readonly reconcileDuration: Histogram<"name" | "namespace">;
  readonly reconcileTotal: Counter<"name" | "namespace" | "result">;
  readonly ready: Gauge<"name" | "namespace">;
  readonly suspended: Gauge<"name" | "namespace">;
  readonly inventory: Gauge<"name" | "namespace">;
  readonly changes: Counter<"action">;
  readonly fetches: Counter<"result">;
  readonly leader: Gauge;
  readonly revision: Gauge<"revision">;
  readonly gotkDuration: Histogram<"kind" | "name" | "namespace">;
  readonly gotkCondition: Gauge<"kind" | "name" | "namespace" | "type" | "status">;
  readonly gotkSuspend: Gauge<"kind" | "name" | "namespace">;
  readonly helmActions: Counter<"action">;

  constructor(client: KubeClient) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "shipmate_agent_" });
    this.reconcileDuration = new Histogram({
      name: "shipmate_agent_reconcile_duration_seconds",
      help: "Time one Kustomization reconcile took (render, apply, prune, health).",
      labelNames: ["name", "namespace"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.reconcileTotal = new Counter({
      name: "shipmate_agent_reconcile_total",
      help: "Kustomization reconciles by result (success, failure).",
      labelNames: ["name", "namespace", "result"],
      registers,
    });
    this.ready = new Gauge({
      name: "shipmate_agent_kustomization_ready",
      help: "1 when the Kustomization is Ready, 0 otherwise.",
      labelNames: ["name", "namespace"],
      registers,
    });
    this.suspended = new Gauge({
      name: "shipmate_agent_kustomization_suspended",
      help: "1 when the Kustomization is suspended.",
      labelNames: ["name", "namespace"],
      registers,
    });
    this.inventory = new Gauge({
      name: "shipmate_agent_inventory_objects",
      help: "Objects in the Kustomization's inventory.",
      labelNames: ["name", "namespace"],
      registers,
    });
    this.changes = new Counter({
      name: "shipmate_agent_object_changes_total",
      help: "Objects created, configured or deleted by the agent.",
      labelNames: ["action"],
      registers,
    });
    this.fetches = new Counter({
      name: "shipmate_agent_source_fetch_total",
      help: "Git fetches of the fleet repository by result.",
      labelNames: ["result"],
      registers,
    });
    this.leader = new Gauge({
      name: "shipmate_agent_leader",
      help: "1 while this replica holds the leader lease.",
      registers,
    });
    this.revision = new Gauge({
      name: "shipmate_agent_source_revision_info",
      help: "The fleet repository revision last fetched (value 1).",
      labelNames: ["revision"],
      registers,
    });
    this.gotkDuration = new Histogram({
      name: "gotk_reconcile_duration_seconds",
      help: "The duration in seconds of a Flux object's reconcile (HelmRelease), as the Flux controllers expose it.",
      labelNames: ["kind", "name", "namespace"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.gotkCondition = new Gauge({
      name: "gotk_reconcile_condition",
      help: "The current condition status of a Flux object (HelmRelease): 1 on the status it has, 0 on the others.",
      labelNames: ["kind", "name", "namespace", "type", "status"],
      registers,
    });
    this.gotkSuspend = new Gauge({
      name: "gotk_suspend_status",
      help: "1 when the Flux object (HelmRelease) is suspended.",
      labelNames: ["kind", "name", "namespace"],
      registers,
    });
    this.helmActions = new Counter({
      name: "shipmate_agent_helm_actions_total",
      help: "Helm actions run by the agent (install, upgrade, test, rollback, uninstall).",
      labelNames: ["action"],
      registers,
    });
    const counts = client.counts;
    new Gauge({
      name: "shipmate_agent_api_requests",
      help: "Requests sent to the Kubernetes API server by verb (APPLY, APPLY(dry-run), GET, DELETE…) since start.",
      labelNames: ["verb"],
      registers,
      collect() {
        for (const [verb, n] of Object.entries(counts.byVerb)) this.set({ verb }, n);
      },
    });
  }

  /**
   * One reconciled Flux object: its duration, its Ready condition as
   * `gotk_reconcile_condition` (True/False/Unknown, or Deleted once it is
   * gone: all series removed), and its suspension.
   */
  recordObject(
    kind: string,
    obj: { name: string; namespace: string },
    r: { seconds?: number; ready?: "True" | "False" | "Unknown"; suspended?: boolean; deleted?: boolean },
  ): void {
    const labels = { kind, name: obj.name, namespace: obj.namespace };
    if (r.deleted) {
      for (const status of ["True", "False", "Unknown"])
        this.gotkCondition.remove({ ...labels, type: "Ready", status });
      this.gotkSuspend.remove(labels);
      this.gotkDuration.remove(labels);
      return;
    }
    if (r.seconds !== undefined) this.gotkDuration.observe(labels, r.seconds);
    if (r.ready)
      for (const status of ["True", "False", "Unknown"])
        this.gotkCondition.set({ ...labels, type: "Ready", status }, status === r.ready ? 1 : 0);
    if (r.suspended !== undefined) this.gotkSuspend.set(labels, r.suspended ? 1 : 0);
  }

  setRevision(revision: string): void {
    this.revision.reset();
    this.revision.set({ revision }, 1);
  }
}
