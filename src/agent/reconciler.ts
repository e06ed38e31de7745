/**
 * One Kustomization, reconciled: render its path at the fetched revision,
 * apply (validated first), prune what left git, wait for health when asked,
 * and record the outcome in its status, as Events and as metrics.
 */

import type { Logger } from "pino";
import { ConfigError, describeError } from "../errors.ts";
import { type Applier, ApplyError, type Change } from "../kube/apply.ts";
import { apiError, type KubeClient } from "../kube/client.ts";
import { type Discovery, resourcePath } from "../kube/discovery.ts";
import {
  canonicalJson,
  describeRef,
  inventoryId,
  type ObjectRef,
  parseInventoryId,
  REQUESTED_AT_ANNOTATION,
  withOwnerLabels,
} from "../kube/objects.ts";
import {
  type InventoryEntry,
  KUSTOMIZATION_API_VERSION,
  KubeObject,
  type KustomizationObject,
  KustomizationSpec,
  type KustomizationStatus,
} from "../kube/schema.ts";
import { CelHealth, dependencyReadyByExpr } from "./celhealth.ts";
import { deletionPlan, waitForTermination } from "./deletion.ts";
import type { EventRecorder } from "./events.ts";
import { KUSTOMIZATION_FIELDS } from "./fields/kustomization.ts";
import { refusedFields, unsupportedMessage } from "./fields/support.ts";
import type { Artifact } from "./git-source.ts";
import { assessHealth } from "./health.ts";
import { isFluxGroup, reconciledKindNames, unsupportedFluxKind } from "./kinds.ts";
import {
  conditionsFor,
  dependenciesOf,
  getCondition,
  keyOf,
  type Outcome,
  parseDuration,
  readyAt,
  withoutHashes,
} from "./kustomization.ts";
import { sleep } from "./leader.ts";
import type { AgentMetrics } from "./metrics.ts";
import { postRender } from "./postrender.ts";
import type { Renderer } from "./render.ts";
import { isSourceKind, manifestSourceKinds } from "./sources/index.ts";
import { type Target, TargetError } from "./targets.ts";

/** Kinds that have no status to wait for; `wait` does not poll them. */
const STATUSLESS = new Set([
  "ConfigMap",
  "Secret",
  "Service",
  "ServiceAccount",
  "Role",
  "RoleBinding",
  "ClusterRole",
  "ClusterRoleBinding",
  "NetworkPolicy",
  "LimitRange",
  "ResourceQuota",
  "PodDisruptionBudget",
  "Ingress",
  "IngressClass",
  "PriorityClass",
  "StorageClass",
  "HorizontalPodAutoscaler",
  "Endpoints",
  "EndpointSlice",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
]);

export interface ReconcileContext {
  /** The agent's own client: status of Kustomizations. Objects go through `targets`. */
  client: KubeClient;
  /**
   * Where and as whom each Kustomization's objects are applied, pruned and
   * health-checked (./targets.ts: impersonation, remote clusters).
   */
  targets: { resolve(ks: KustomizationObject): Promise<Target> };
  renderer: Renderer;
  events: EventRecorder;
  metrics: AgentMetrics;
  log: Logger;
  /** Scratch directory for generated overlays. */
  scratch: string;
  /** Restores the working copy before each render. */
  cleanSource(): Promise<void>;
  /** Live status of other Kustomizations, for dependsOn. */
  statusOf(namespace: string, name: string): Promise<KustomizationStatus | undefined>;
  /** The whole object of another Kustomization, for dependsOn[].readyExpr's `dep`. */
  objectOf?(namespace: string, name: string): KustomizationObject | undefined;
  /**
   * The source (`<namespace>/<name>` of its GitRepository) another
   * Kustomization reads; a dependency's revision is compared only when it
   * reads the same source, as Flux does.
   */
  sourceOf?(namespace: string, name: string): string | undefined;
  /** Whether this replica may still write (leadership held, not shutting down). */
  signal: AbortSignal;
  /** How often health is polled while waiting. */
  healthPollMs?: number;
  /** false when the Kustomization CRD prunes `status.inventory.entries[].h` (Flux's own CRD). */
  inventoryHashes?: boolean;
  /**
   * The state hashes of each Kustomization's last apply (`namespace/name` →
   * inventory id → hash), kept by the agent for as long as it runs: under a
   * CRD that prunes them from status they would otherwise be lost, and every
   * steady pass would dry-run every object again.
   */
  rememberedHashes?: Map<string, Map<string, string>>;
  /**
   * Lets the agent's other reconcilers act on objects this Kustomization
   * just applied (a HelmRelease is installed) before their health is waited for.
   */
  settle?(targets: ObjectRef[]): Promise<void>;
}

export interface ReconcileResult {
  ready: boolean;
  /** Failed in a way that waits for a change (spec, revision), not for time. */
  stalled: boolean;
  changes: Change[];
  writes: number;
  inventory: InventoryEntry[];
  message: string;
}

export function ksPath(namespace: string, name: string, status = false): string {
  return `/apis/${KUSTOMIZATION_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/kustomizations/${encodeURIComponent(name)}${status ? "/status" : ""}`;
}

function changeSummary(changes: Change[]): string {
  return changes
    .filter((c) => c.action !== "unchanged" && c.action !== "skipped")
    .map((c) => `${describeRef(c.ref)} ${c.action}`)
    .join("\n");
}

export class Reconciler {
  private readonly ctx: ReconcileContext;

  constructor(ctx: ReconcileContext) {
    this.ctx = ctx;
  }

  /** Writes status only when it differs from what the cluster holds, so a steady state costs no write. */
  private async writeStatus(ks: KustomizationObject, wanted: KustomizationStatus): Promise<void> {
    // Under a CRD that prunes the state hashes, the status it would store is the one compared.
    const next = this.ctx.inventoryHashes === false ? withoutHashes(wanted) : wanted;
    if (canonicalJson(ks.status ?? {}) === canonicalJson(next)) return;
    const ns = ks.metadata.namespace ?? "";
    const name = ks.metadata.name ?? "";
    const res = await this.ctx.client.raw({
      method: "PATCH",
      path: ksPath(ns, name, true),
      // JSON merge patch replaces the lists (conditions, inventory entries) whole.
      body: { status: { ...nullify(ks.status ?? {}, next), ...next } },
      contentType: "application/merge-patch+json",
    });
    if (res.code === 404) return; // deleted while we worked
    if (res.code < 200 || res.code > 299)
      throw apiError(`status of Kustomization ${ns}/${name}`, res.code, res.body);
    ks.status = next;
  }

  /** Records a failure found outside a reconcile (source unreachable, dependency cycle) without touching anything else. */
  async markFailed(
    ks: KustomizationObject,
    reason: string,
    message: string,
    stalled: boolean,
  ): Promise<void> {
    const status: KustomizationStatus = {
      ...ks.status,
      conditions: conditionsFor(
        ks.status?.conditions ?? [],
        { kind: "failed", reason, message, stalled },
        ks.metadata.generation,
        new Date().toISOString(),
        false,
      ),
    };
    await this.writeStatus(ks, status);
    const name = ks.metadata.name ?? "";
    const namespace = ks.metadata.namespace ?? "";
    this.ctx.metrics.ready.set({ name, namespace }, 0);
    await this.ctx.events.emit(
      { apiVersion: ks.apiVersion, kind: "Kustomization", name, namespace, uid: ks.metadata.uid },
      "Warning",
      reason,
      message,
    );
  }

  async reconcile(
    ks: KustomizationObject,
    artifact: Artifact,
    pathOverride?: string,
  ): Promise<ReconcileResult> {
    const ns = ks.metadata.namespace ?? "";
    const name = ks.metadata.name ?? "";
    const started = Date.now();
    const end = this.ctx.metrics.reconcileDuration.startTimer({ name, namespace: ns });
    const involved = {
      apiVersion: ks.apiVersion,
      kind: "Kustomization",
      name,
      namespace: ns,
      uid: ks.metadata.uid,
    };
    const remembered = this.ctx.rememberedHashes?.get(`${ns}/${name}`);
    const previous = (ks.status?.inventory?.entries ?? []).map((e) => {
      const h = e.h ? undefined : remembered?.get(e.id);
      return h ? { ...e, h } : e;
    });
    const now = () => new Date().toISOString();
    const requestedAt = ks.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    const base: KustomizationStatus = {
      ...ks.status,
      observedGeneration: ks.metadata.generation,
      lastAttemptedRevision: artifact.revision,
      ...(requestedAt ? { lastHandledReconcileAt: requestedAt } : {}),
    };
    let status: KustomizationStatus = base;
    const finish = async (outcome: Outcome, extra: Partial<KustomizationStatus>, assessesHealth: boolean) => {
      status = {
        ...status,
        ...extra,
        conditions: conditionsFor(
          status.conditions ?? [],
          outcome,
          ks.metadata.generation,
          now(),
          assessesHealth,
        ),
      };
      // Metrics first: whoever sees the new status can already scrape the matching figures.
      const ready = outcome.kind === "succeeded";
      this.ctx.metrics.ready.set({ name, namespace: ns }, ready ? 1 : 0);
      this.ctx.metrics.inventory.set({ name, namespace: ns }, status.inventory?.entries?.length ?? 0);
      this.ctx.metrics.reconcileTotal.inc({ name, namespace: ns, result: ready ? "success" : "failure" });
      end();
      await this.writeStatus(ks, status);
    };

    const parsed = KustomizationSpec.safeParse(ks.spec ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const message = `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}`;
      await finish({ kind: "failed", reason: "InvalidSpec", message, stalled: true }, {}, false);
      await this.ctx.events.emit(involved, "Warning", "InvalidSpec", message);
      return { ready: false, stalled: true, changes: [], writes: 0, inventory: previous, message };
    }
    const spec = parsed.data;
    const fail = async (
      reason: string,
      message: string,
      opts: { stalled?: boolean; health?: "failed" } = {},
    ) => {
      await finish(
        { kind: "failed", reason, message, ...opts },
        {},
        Boolean(spec.wait || spec.healthChecks?.length),
      );
      await this.ctx.events.emit(involved, "Warning", reason, message, { revision: artifact.revision });
      this.ctx.log.warn({ kustomization: `${ns}/${name}`, reason }, message);
      return {
        ready: false,
        stalled: Boolean(opts.stalled),
        changes: [],
        writes: 0,
        inventory: status.inventory?.entries ?? previous,
        message,
      };
    };

    if (spec.sourceRef && !isSourceKind(spec.sourceRef.kind)) {
      return await fail(
        "UnsupportedSource",
        `source kind ${spec.sourceRef.kind} is not supported by the shipmate agent (supported: ${manifestSourceKinds().join(", ")})`,
        { stalled: true },
      );
    }
    const refused = refusedFields(ks.spec, KUSTOMIZATION_FIELDS);
    if (refused.length > 0) {
      return await fail(
        "UnsupportedField",
        unsupportedMessage("Kustomization", refused, KUSTOMIZATION_FIELDS),
        {
          stalled: true,
        },
      );
    }

    // Compiled before anything is applied: an expression that cannot run is a configuration error.
    let cel: CelHealth;
    try {
      cel = new CelHealth(Array.isArray(ks.spec?.healthCheckExprs) ? ks.spec.healthCheckExprs : []);
    } catch (err) {
      return await fail("InvalidCELExpression", describeError(err), { stalled: true });
    }

    for (const [i, dep] of dependenciesOf(spec, ns).entries()) {
      // dependsOn[].readyExpr replaces the built-in readiness check (./celhealth.ts).
      const readyExpr = spec.dependsOn?.[i]?.readyExpr;
      if (typeof readyExpr === "string" && readyExpr) {
        const depObject = this.ctx.objectOf?.(dep.namespace, dep.name);
        if (!depObject) return await fail("DependencyNotReady", `dependency '${keyOf(dep)}' not found`);
        let verdict: ReturnType<typeof dependencyReadyByExpr>;
        try {
          verdict = dependencyReadyByExpr(readyExpr, ks, depObject, keyOf(dep));
        } catch (err) {
          return await fail("InvalidCELExpression", describeError(err), { stalled: true });
        }
        if (!verdict.ready) return await fail("DependencyNotReady", verdict.message);
        continue;
      }
      const depStatus = await this.ctx.statusOf(dep.namespace, dep.name);
      const sameSource =
        !artifact.source ||
        !this.ctx.sourceOf ||
        this.ctx.sourceOf(dep.namespace, dep.name) === artifact.source;
      if (!readyAt(depStatus, sameSource ? artifact.revision : undefined)) {
        const why = getCondition(depStatus, "Ready")?.message;
        return await fail(
          "DependencyNotReady",
          `dependency '${keyOf(dep)}' is not ready${why ? `: ${why}` : ""}`,
        );
      }
    }

    let target: Target;
    try {
      target = await this.ctx.targets.resolve(ks);
    } catch (err) {
      return await fail("ReconciliationFailed", `${describeError(err)}; nothing applied`);
    }

    // Where a pass spends its time, logged at debug level when it ends.
    const phases: Record<string, number> = {};
    let mark = performance.now();
    const lap = (phase: string) => {
      const t = performance.now();
      phases[phase] = Math.round(t - mark);
      mark = t;
    };
    let objects: KubeObject[];
    try {
      objects = await this.ctx.renderer.render(
        {
          root: artifact.dir,
          scratch: this.ctx.scratch,
          name,
          namespace: ns,
          spec: { ...spec, path: pathOverride ?? spec.path },
        },
        () => this.ctx.cleanSource(),
      );
      // spec.decryption, then spec.postBuild, on the built objects (./postrender.ts).
      objects = await postRender(this.ctx.client, ns, ks.spec, objects);
    } catch (err) {
      return await fail("BuildFailed", describeError(err), { stalled: err instanceof ConfigError });
    }
    objects = objects.map((o) => withOwnerLabels(o, name, ns));
    lap("renderMs");
    const unsupported = await this.unsupportedKinds(objects, target.discovery);
    if (unsupported) return await fail("UnsupportedKind", unsupported, { stalled: true });
    if (this.ctx.signal.aborted)
      return await fail("Interrupted", "leadership lost before apply; nothing applied");

    let result: Awaited<ReturnType<Applier["apply"]>>;
    try {
      result = await target.applier.apply({
        objects,
        previous,
        owner: { name, namespace: ns },
        signal: this.ctx.signal,
        recreate: spec.force === true,
        writeAhead: async (entries) => {
          status = { ...status, inventory: { entries } };
          await this.writeStatus(ks, status);
        },
      });
    } catch (err) {
      const prefix = err instanceof ApplyError && !err.written ? "validation failed, nothing applied: " : "";
      return await fail("ReconciliationFailed", `${prefix}${describeError(err)}`);
    }

    lap("applyMs");
    // A root that declares itself in git has just changed its own spec: the spec git holds is the
    // one applied, so its generation is observed now rather than on the next, otherwise idle, pass.
    const self = result.changes.find(
      (c) =>
        c.ref.kind === "Kustomization" &&
        c.ref.group === "kustomize.toolkit.fluxcd.io" &&
        c.ref.name === name &&
        c.ref.namespace === ns &&
        c.action !== "unchanged" &&
        c.action !== "skipped",
    );
    if (self) {
      const fresh = await this.ctx.client.raw({ method: "GET", path: ksPath(ns, name) });
      const generation = (fresh.body as { metadata?: { generation?: number } } | undefined)?.metadata
        ?.generation;
      if (fresh.code === 200 && typeof generation === "number") {
        ks.metadata.generation = generation;
        status = { ...status, observedGeneration: generation };
      }
    }

    // Prune: what the last successful inventory held and git no longer does.
    const desiredIds = new Set(result.inventory.map((e) => e.id));
    const stale: ObjectRef[] = [];
    for (const e of status.inventory?.entries ?? previous) {
      // A Kustomization never prunes itself (the root lists its own object when git declares it).
      if (
        desiredIds.has(e.id) ||
        e.id ===
          inventoryId({ namespace: ns, name, group: "kustomize.toolkit.fluxcd.io", kind: "Kustomization" })
      )
        continue;
      const ref = parseInventoryId(e.id, e.v);
      if (ref) stale.push(ref);
    }
    let changes = result.changes;
    let inventory = result.inventory;
    if (spec.prune && stale.length) {
      const pruned = await target.applier.prune(
        stale,
        { name, namespace: ns },
        (ref, live) => this.finalizeChild(ref, live, artifact),
        this.ctx.signal,
      );
      changes = [...changes, ...pruned.changes];
      // Objects that could not be deleted stay recorded, so a later run retries them.
      inventory = [...inventory, ...pruned.kept.map((r) => ({ id: inventoryId(r), v: r.version }))];
      if (pruned.errors.length) {
        status = { ...status, inventory: { entries: inventory } };
        return await fail("PruneFailed", `prune failed: ${pruned.errors.slice(0, 5).join("; ")}`);
      }
    }
    for (const c of changes)
      if (c.action !== "unchanged" && c.action !== "skipped")
        this.ctx.metrics.changes.inc({ action: c.action });
    status = { ...status, inventory: { entries: inventory } };
    const summary = changeSummary(changes);
    if (summary)
      this.ctx.log.info(
        { kustomization: `${ns}/${name}`, revision: artifact.revision },
        summary.replaceAll("\n", ", "),
      );

    lap("pruneMs");
    const checks = this.healthTargets(spec, objects);
    if (checks.length) {
      const timeoutMs = parseDuration(spec.timeout ?? spec.interval);
      const waiting = `waiting for ${checks.length} object(s) to become ready (timeout ${spec.timeout ?? spec.interval})`;
      // Already Ready at this revision and nothing changed: health is checked without announcing
      // progress, so a steady pass writes nothing (a failing check still records its failure).
      const steady =
        !summary &&
        getCondition(ks.status, "Ready")?.status === "True" &&
        ks.status?.lastAppliedRevision === artifact.revision &&
        ks.status?.observedGeneration === ks.metadata.generation;
      if (!steady) {
        status = {
          ...status,
          conditions: conditionsFor(
            status.conditions ?? [],
            { kind: "progressing", message: waiting },
            ks.metadata.generation,
            now(),
            true,
          ),
        };
        await this.writeStatus(ks, status);
      }
      // HelmReleases a remote Kustomization applied live on that cluster: this agent does not reconcile them.
      if (!target.remote) await this.ctx.settle?.(checks);
      const unhealthy = await this.waitHealthy(target, checks, timeoutMs, cel);
      if (unhealthy) {
        if (summary)
          await this.ctx.events.emit(involved, "Normal", "Progressing", summary, {
            revision: artifact.revision,
          });
        return {
          ...(await fail("HealthCheckFailed", unhealthy, { health: "failed" })),
          changes,
          writes: result.writes,
          inventory,
        };
      }
    }

    lap("healthMs");
    const message = `Applied revision: ${artifact.revision}`;
    await finish(
      { kind: "succeeded", message },
      { lastAppliedRevision: artifact.revision },
      checks.length > 0,
    );
    if (summary) {
      await this.ctx.events.emit(
        involved,
        "Normal",
        "ReconciliationSucceeded",
        `${summary}\nReconciliation finished in ${((Date.now() - started) / 1000).toFixed(1)}s, revision ${artifact.revision}`,
        { revision: artifact.revision },
      );
    }
    lap("statusMs");
    this.ctx.rememberedHashes?.set(
      `${ns}/${name}`,
      new Map(inventory.flatMap((e) => (e.h ? [[e.id, e.h] as const] : []))),
    );
    this.ctx.log.debug({ kustomization: `${ns}/${name}`, objects: objects.length, ...phases }, "reconciled");
    return { ready: true, stalled: false, changes, writes: result.writes, inventory, message };
  }

  /**
   * Why the rendered objects cannot be applied as Flux would: a Flux kind
   * nothing in shipmate reconciles, or a Flux kind at a version the cluster
   * does not serve. Retrying cannot help until git changes, so the caller
   * stalls; nothing is applied.
   */
  private async unsupportedKinds(objects: KubeObject[], discovery: Discovery): Promise<string | undefined> {
    const byKind = new Map<string, KubeObject[]>();
    for (const o of objects) {
      const group = o.apiVersion.includes("/") ? (o.apiVersion.split("/")[0] ?? "") : "";
      if (!isFluxGroup(group)) continue;
      const key = `${o.apiVersion} ${o.kind}`;
      byKind.set(key, [...(byKind.get(key) ?? []), o]);
    }
    const kinds: string[] = [];
    const versions: string[] = [];
    for (const list of byKind.values()) {
      const first = list[0] as KubeObject;
      const group = first.apiVersion.split("/")[0] ?? "";
      if (unsupportedFluxKind(group, first.kind)) {
        const names = list.map(
          (o) => `${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`,
        );
        kinds.push(
          `${first.kind} (${first.apiVersion}) ${names.slice(0, 3).join(", ")}${names.length > 3 ? ` and ${names.length - 3} more` : ""}`,
        );
        continue;
      }
      if (await discovery.find(first.apiVersion, first.kind)) continue;
      // No version served at all: the CRD may come with this very apply, which says so if not.
      const served = await discovery.servedVersions(first.apiVersion, first.kind);
      if (served.length)
        versions.push(`${first.kind} is not served as ${first.apiVersion} (served: ${served.join(", ")})`);
    }
    const parts: string[] = [];
    if (kinds.length)
      parts.push(
        `Flux kind${kinds.length === 1 ? "" : "s"} no reconciler of the shipmate agent serves, refused rather than applied with nothing acting on ${kinds.length === 1 ? "it" : "them"}: ${kinds.join("; ")} (the agent reconciles ${reconciledKindNames()})`,
      );
    parts.push(...versions);
    return parts.length ? parts.join("; ") : undefined;
  }

  private healthTargets(spec: KustomizationSpec, objects: KubeObject[]): ObjectRef[] {
    const refs = new Map<string, ObjectRef>();
    if (spec.wait) {
      for (const o of objects) {
        if (STATUSLESS.has(o.kind)) continue;
        const [group = "", version = ""] = o.apiVersion.includes("/")
          ? o.apiVersion.split("/")
          : ["", o.apiVersion];
        const ref = {
          group,
          version,
          kind: o.kind,
          namespace: o.metadata.namespace ?? "",
          name: o.metadata.name ?? "",
        };
        refs.set(inventoryId(ref), ref);
      }
    }
    for (const h of spec.healthChecks ?? []) {
      const apiVersion = h.apiVersion ?? "v1";
      const [group = "", version = ""] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
      const ref = { group, version, kind: h.kind, namespace: h.namespace ?? "", name: h.name };
      refs.set(inventoryId(ref), ref);
    }
    return [...refs.values()];
  }

  /** Polls until every target is Current; returns why not when one Failed or the timeout passed. */
  private async waitHealthy(
    target: Target,
    targets: ObjectRef[],
    timeoutMs: number,
    cel?: CelHealth,
  ): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    const poll = this.ctx.healthPollMs ?? 2000;
    for (;;) {
      const pending: string[] = [];
      for (const ref of targets) {
        const apiVersion = ref.group ? `${ref.group}/${ref.version}` : ref.version;
        const info = await target.discovery.find(apiVersion, ref.kind);
        if (!info) {
          pending.push(`${describeRef(ref)}: kind not served`);
          continue;
        }
        const res = await target.client.raw({
          method: "GET",
          path: resourcePath(info, ref.namespace, ref.name),
        });
        if (res.code === 404) {
          pending.push(`${describeRef(ref)}: not found`);
          continue;
        }
        const obj = KubeObject.safeParse(res.body);
        // A refusal (a tenant's health check on what it may not read) is a Status object, not the object.
        if (res.code !== 200 || !obj.success) {
          pending.push(
            `${describeRef(ref)}: unreadable (${apiError("get", res.code, res.body).status?.reason || `HTTP ${res.code}`})`,
          );
          continue;
        }
        // spec.healthCheckExprs first, kstatus for the kinds they do not cover (./celhealth.ts).
        const h = cel?.assess(obj.data) ?? assessHealth(obj.data);
        if (h.status === "Failed") return `${describeRef(ref)} failed: ${h.message}`;
        if (h.status === "InProgress") pending.push(`${describeRef(ref)}: ${h.message}`);
      }
      if (!pending.length) return undefined;
      if (Date.now() + poll > deadline || this.ctx.signal.aborted) {
        return `timeout waiting for: ${pending.slice(0, 5).join("; ")}${pending.length > 5 ? ` and ${pending.length - 5} more` : ""}`;
      }
      await sleep(poll, this.ctx.signal);
    }
  }

  /**
   * A Kustomization pruned from git takes its objects with it (when it
   * prunes), as Flux's finalizer does.
   */
  private async finalizeChild(ref: ObjectRef, live: KubeObject, artifact: Artifact): Promise<void> {
    if (ref.kind !== "Kustomization" || !ref.group.startsWith("kustomize.toolkit.fluxcd.io")) return;
    const child = live as KustomizationObject;
    const spec = KustomizationSpec.safeParse(child.spec ?? {});
    const entries = child.status?.inventory?.entries ?? [];
    // spec.deletionPolicy, with Flux's table (./deletion.ts).
    const plan = spec.success ? deletionPlan(spec.data, entries.length) : { delete: false, wait: false };
    if (!plan.delete) return;
    const refs = entries
      .map((e) => parseInventoryId(e.id, e.v))
      .filter((r): r is ObjectRef => r !== undefined);
    const owner = { name: ref.name, namespace: ref.namespace };
    // Its objects are deleted where, and as whom, it applied them.
    let target: Target;
    try {
      target = await this.ctx.targets.resolve(child);
    } catch (err) {
      if (!(err instanceof TargetError && err.missingServiceAccount)) throw err;
      // As Flux's finalizer: without the account nothing may be deleted in its name; the objects stay.
      this.ctx.log.error(
        { kustomization: `${ref.namespace}/${ref.name}` },
        `garbage collection skipped, ${entries.length} object(s) left in place: ${err.message}`,
      );
      return;
    }
    const res = await target.applier.prune(
      refs,
      owner,
      (r, l) => this.finalizeChild(r, l, artifact),
      this.ctx.signal,
    );
    if (res.errors.length)
      throw new Error(`garbage collection of Kustomization ${ref.namespace}/${ref.name}: ${res.errors[0]}`);
    if (plan.wait && spec.success) {
      const deleted = res.changes.filter((c) => c.action === "deleted").map((c) => c.ref);
      const timeout = spec.data.timeout ?? spec.data.interval;
      const left = await waitForTermination(
        target.client,
        target.discovery,
        deleted,
        parseDuration(timeout),
        {
          pollMs: this.ctx.healthPollMs,
          signal: this.ctx.signal,
        },
      );
      // As Flux: a timeout is logged and the deletion goes on.
      if (left.length)
        this.ctx.log.error(
          { kustomization: `${ref.namespace}/${ref.name}` },
          `failed to wait for resources termination (timeout ${timeout}): ${left.slice(0, 5).join(", ")}`,
        );
    }
    this.ctx.log.info(
      { kustomization: `${ref.namespace}/${ref.name}`, revision: artifact.revision },
      `deleted with its ${res.changes.length} object(s)`,
    );
  }
}

/** Keys present before and absent now, set to null so a merge patch removes them. */
function nullify(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, null> {
  const out: Record<string, null> = {};
  for (const k of Object.keys(before)) if (!(k in after)) out[k] = null;
  return out;
}
