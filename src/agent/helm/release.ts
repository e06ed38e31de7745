/**
 * HelmRelease (helm.toolkit.fluxcd.io/v2), reconciled as helm-controller
 * does, on the real Helm: the HelmChart of `chart.spec` is created (named
 * `<namespace>-<name>` in the source's namespace) and fetched through the
 * SourceManager; values are composed from `valuesFrom` and `values`; the
 * release in Helm's storage is compared with what is asked (./plan.ts) and
 * installed, upgraded, remediated (rollback / uninstall) or left alone.
 * Status carries helm-controller's vocabulary (Ready, Released,
 * Remediated, TestSuccess, history, failure counters). Post-renderers
 * (./postrender.ts) run inside the Helm action; `test` runs Helm's test
 * hooks after an install or upgrade; drift (./drift.ts) is looked for on an
 * in-sync reconcile when `driftDetection` asks. A deleted HelmRelease is
 * uninstalled before its finalizer is released. Helm actions and release
 * storage reads go where and as whom ../targets.ts says (serviceAccountName,
 * --default-service-account, kubeConfig: the Kustomizations' rule); status,
 * events, the HelmChart and valuesFrom use the agent's own rights.
 */
import type { Logger } from "pino";
import { parse } from "yaml";
import { describeError } from "../../errors.ts";
import { apiError, type KubeClient } from "../../kube/client.ts";
import { canonicalJson, REQUESTED_AT_ANNOTATION } from "../../kube/objects.ts";
import { type Condition, KubeList, type ObjectMeta, SOURCE_API_VERSION } from "../../kube/schema.ts";
import type { EventRecorder } from "../events.ts";
import { refusedFields, unsupportedMessage } from "../fields/support.ts";
import type { Artifact } from "../git-source.ts";
import { orderByDependencies, parseDuration, removeCondition, setCondition } from "../kustomization.ts";
import { createLimiter } from "../limit.ts";
import type { AgentMetrics } from "../metrics.ts";
import type { SourceManager, SourceObject } from "../source-objects.ts";
import { failedConditions, ReconcileFailure } from "../status.ts";
import { type Target, TargetError, type TargetResolver, type TargetSpec } from "../targets.ts";
import { ChartRefError, SourceCharts } from "./chartref.ts";
import { type ClusterAccess, type HelmCli, HelmError } from "./cli.ts";
import { applyCrds, type CrdPolicy, parseCrds } from "./crds.ts";
import { detectDrift, driftSummary } from "./drift.ts";
import { movedRelease, planRelease, type ReleaseState, remediates } from "./plan.ts";
import { postRenderersDigest, postRenderSteps } from "./postrender.ts";
import {
  chartObjectName,
  composeValues,
  configDigest,
  releaseNameOf,
  type Values,
  type ValuesSource,
} from "./rules.ts";
import {
  HELM_API_VERSION,
  HELM_FINALIZER,
  HELM_RELEASE_FIELDS,
  HelmReleaseSpec,
  remediationOf,
} from "./spec.ts";
import { listReleases, type Snapshot, type StoredRelease, snapshotOf, testHooksOf } from "./storage.ts";

export interface HelmReleaseStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  helmChart?: string;
  storageNamespace?: string;
  history?: Snapshot[];
  lastAttemptedGeneration?: number;
  lastAttemptedRevision?: string;
  lastAttemptedConfigDigest?: string;
  lastAttemptedReleaseAction?: string;
  observedPostRenderersDigest?: string;
  lastHandledReconcileAt?: string;
  failures?: number;
  installFailures?: number;
  upgradeFailures?: number;
  [k: string]: unknown;
}

export interface HelmReleaseObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { finalizers?: string[] };
  spec?: Record<string, unknown>;
  status?: HelmReleaseStatus;
}

export interface HelmReleaseReport {
  name: string;
  namespace: string;
  ready: boolean;
  reason: string;
  message: string;
  /** The Helm actions this reconcile ran (install, upgrade, test, rollback, uninstall). */
  actions: string[];
}

export interface HelmReconcilerOptions {
  client: KubeClient;
  helm: HelmCli;
  /** Where and as whom each release is installed: `serviceAccountName`, `kubeConfig`, `--default-service-account`. */
  targets: TargetResolver;
  sources: SourceManager;
  events: EventRecorder;
  log: Logger;
  /** How soon a failed reconcile is retried (capped by the interval). */
  retryMs?: number;
  /** Where charts from an OCIRepository or ExternalArtifact chartRef are prepared; default a private temporary directory. */
  chartsDir?: string;
  /** Releases reconciled at once, a release after the ones it depends on (default 8; helm-controller's `--concurrent` is 4). */
  concurrency?: number;
  /** Per-release series (gotk_reconcile_duration_seconds, gotk_reconcile_condition, gotk_suspend_status). */
  metrics?: AgentMetrics;
}

export const helmReleasePath = (namespace?: string, name?: string, status = false): string => {
  const base = namespace
    ? `/apis/${HELM_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/helmreleases`
    : `/apis/${HELM_API_VERSION}/helmreleases`;
  return name ? `${base}/${encodeURIComponent(name)}${status ? "/status" : ""}` : base;
};

const helmChartPath = (namespace: string, name?: string): string =>
  `/apis/${SOURCE_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/helmcharts${name ? `/${encodeURIComponent(name)}` : ""}`;

/** Ready=True for the HelmRelease's current generation: what dependents and health checks wait for. */
export function helmReleaseReady(obj: Pick<HelmReleaseObject, "metadata" | "status">): boolean {
  const ready = obj.status?.conditions?.find((c) => c.type === "Ready");
  return (
    ready?.status === "True" &&
    (obj.metadata.generation === undefined || obj.status?.observedGeneration === obj.metadata.generation)
  );
}

const keyOf = (o: { metadata: { namespace?: string; name?: string } }) =>
  `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;

export class HelmReleaseReconciler {
  private readonly opts: HelmReconcilerOptions;
  private readonly lastRun = new Map<string, { at: number; failed: boolean }>();
  private readonly charts: SourceCharts;

  constructor(opts: HelmReconcilerOptions) {
    this.opts = opts;
    this.charts = new SourceCharts(opts.chartsDir);
  }

  private async list(): Promise<HelmReleaseObject[]> {
    const res = await this.opts.client.raw({ method: "GET", path: helmReleasePath() });
    if (res.code === 404) return []; // the kind is not served: no HelmRelease can exist
    if (res.code !== 200) throw apiError("list HelmReleases", res.code, res.body);
    return (KubeList.parse(res.body).items ?? []).map(
      (i) => ({ ...i, apiVersion: HELM_API_VERSION, kind: "HelmRelease" }) as HelmReleaseObject,
    );
  }

  /** Every due HelmRelease, each after those it depends on. */
  async reconcileAll(signal: AbortSignal, force = false): Promise<HelmReleaseReport[]> {
    const all = await this.list();
    if (!all.length) return [];
    const items = all.map((hr) => {
      const ns = hr.metadata.namespace ?? "";
      const deps = Array.isArray(hr.spec?.dependsOn)
        ? (hr.spec.dependsOn as { name?: unknown; namespace?: unknown }[])
        : [];
      return {
        hr,
        name: hr.metadata.name ?? "",
        namespace: ns,
        dependsOn: deps
          .filter((d) => typeof d.name === "string")
          .map((d) => ({
            name: d.name as string,
            namespace: typeof d.namespace === "string" ? d.namespace : ns,
          })),
      };
    });
    const known = new Set(items.map((i) => `${i.namespace}/${i.name}`));
    // Dependencies that are not HelmReleases here are checked through their status at reconcile time.
    const { order, blocked } = orderByDependencies(
      items.map((i) => ({
        ...i,
        dependsOn: i.dependsOn.filter((d) => known.has(`${d.namespace}/${d.name}`)),
      })),
    );
    const reports: HelmReleaseReport[] = [];
    for (const b of blocked) {
      if (b.item.hr.metadata.deletionTimestamp) continue;
      reports.push(await this.fail(b.item.hr, new ReconcileFailure("DependencyNotReady", b.reason, true)));
    }
    // Up to `concurrency` at once, each after the releases it depends on (`order` is topological).
    const done = new Map<string, Promise<void>>();
    const byKey = new Map<string, HelmReleaseReport>();
    const limit = createLimiter(this.opts.concurrency ?? 8);
    for (const item of order) {
      const key = `${item.namespace}/${item.name}`;
      const deps = item.dependsOn.flatMap((d) => done.get(`${d.namespace}/${d.name}`) ?? []);
      done.set(
        key,
        (async () => {
          await Promise.all(deps);
          if (signal.aborted) return;
          await limit.acquire();
          try {
            if (signal.aborted) return;
            const report = await this.reconcile(item.hr, force);
            if (report) byKey.set(key, report);
          } finally {
            limit.release();
          }
        })(),
      );
    }
    await Promise.all(done.values());
    for (const item of order) {
      const report = byKey.get(`${item.namespace}/${item.name}`);
      if (report) reports.push(report);
    }
    return reports;
  }

  /** One HelmRelease by name, read afresh (a Kustomization waiting on one it just applied). */
  async reconcileNamed(namespace: string, name: string): Promise<HelmReleaseReport | undefined> {
    const res = await this.opts.client.raw({ method: "GET", path: helmReleasePath(namespace, name) });
    if (res.code !== 200) return undefined;
    const hr = {
      ...(res.body as object),
      apiVersion: HELM_API_VERSION,
      kind: "HelmRelease",
    } as HelmReleaseObject;
    return await this.reconcile(hr, false);
  }

  async reconcile(hr: HelmReleaseObject, force: boolean): Promise<HelmReleaseReport | undefined> {
    const key = keyOf(hr);
    const who = { name: hr.metadata.name ?? "", namespace: hr.metadata.namespace ?? "" };
    if (hr.metadata.deletionTimestamp) {
      await this.finalize(hr);
      this.lastRun.delete(key);
      this.opts.metrics?.recordObject("HelmRelease", who, { deleted: true });
      return undefined;
    }
    if (hr.spec?.suspend === true) {
      this.opts.metrics?.recordObject("HelmRelease", who, { suspended: true, ready: readyOf(hr) });
      return this.report(hr, []);
    }
    const actions: string[] = [];
    const started = performance.now();
    const state = { due: false };
    const record = () => {
      // A pass that found the release not due is no reconcile: only its condition is kept current.
      this.opts.metrics?.recordObject("HelmRelease", who, {
        ...(state.due ? { seconds: (performance.now() - started) / 1000 } : {}),
        ready: readyOf(hr),
        suspended: false,
      });
      for (const a of actions) this.opts.metrics?.helmActions.inc({ action: a });
    };
    try {
      await this.run(hr, force, actions, state);
      this.lastRun.set(key, { at: Date.now(), failed: !helmReleaseReady(hr) });
      return this.report(hr, actions);
    } catch (err) {
      const failure =
        err instanceof ReconcileFailure
          ? err
          : new ReconcileFailure("ReconciliationFailed", describeError(err));
      this.lastRun.set(key, { at: Date.now(), failed: true });
      state.due = true;
      return { ...(await this.fail(hr, failure)), actions };
    } finally {
      record();
    }
  }

  private report(hr: HelmReleaseObject, actions: string[]): HelmReleaseReport {
    const ready = hr.status?.conditions?.find((c) => c.type === "Ready");
    return {
      name: hr.metadata.name ?? "",
      namespace: hr.metadata.namespace ?? "",
      ready: helmReleaseReady(hr),
      reason: ready?.reason ?? "",
      message: ready?.message ?? "",
      actions,
    };
  }

  private due(hr: HelmReleaseObject, spec: HelmReleaseSpec, chartRevision: string, force: boolean): boolean {
    const last = this.lastRun.get(keyOf(hr));
    const st = hr.status ?? {};
    if (force || !last) return true;
    if (hr.metadata.generation !== undefined && st.observedGeneration !== hr.metadata.generation) return true;
    const requestedAt = hr.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    if (requestedAt && requestedAt !== st.lastHandledReconcileAt) return true;
    if (st.lastAttemptedRevision !== chartRevision) return true;
    const interval = parseDuration(spec.interval);
    const wait = last.failed ? Math.min(interval, this.opts.retryMs ?? 30_000) : interval;
    return Date.now() - last.at >= wait;
  }

  private async run(
    hr: HelmReleaseObject,
    force: boolean,
    actions: string[],
    state: { due: boolean } = { due: false },
  ): Promise<void> {
    const ns = hr.metadata.namespace ?? "";
    const name = hr.metadata.name ?? "";
    const refused = refusedFields(hr.spec, HELM_RELEASE_FIELDS);
    if (refused.length)
      throw new ReconcileFailure(
        "UnsupportedField",
        unsupportedMessage("HelmRelease", refused, HELM_RELEASE_FIELDS),
        true,
      );
    const parsed = HelmReleaseSpec.safeParse(hr.spec ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ReconcileFailure(
        "InvalidSpec",
        `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}`,
        true,
      );
    }
    const spec = parsed.data;
    const targetNs = spec.targetNamespace ?? ns;
    const storageNs = spec.storageNamespace ?? ns;
    // Objects and .Release.Namespace in targetNs, records in storageNs (Flux's defaults: both the HelmRelease's).

    // The chart, through the HelmChart source (created for chart.spec, as helm-controller does).
    const chartRef = await this.chartRef(hr, spec);
    const resolution = await this.opts.sources.resolveRef(chartRef);
    // helm-controller names a HelmChart here, never another chartRef source.
    const helmChart = chartRef.kind === "HelmChart" ? `${chartRef.namespace}/${chartRef.name}` : undefined;
    if (!resolution.ok) throw new ReconcileFailure("ArtifactFailed", resolution.message, resolution.stalled);
    const artifact = this.chartOf(chartRef, resolution.artifact);
    if (!this.due(hr, spec, artifact.revision, force)) return;
    state.due = true;
    await this.ensureFinalizer(hr);

    for (const dep of spec.dependsOn ?? []) {
      const depNs = dep.namespace ?? ns;
      const res = await this.opts.client.raw({ method: "GET", path: helmReleasePath(depNs, dep.name) });
      const depObj = res.code === 200 ? (res.body as HelmReleaseObject) : undefined;
      if (!depObj || !helmReleaseReady(depObj))
        throw new ReconcileFailure("DependencyNotReady", `dependency '${depNs}/${dep.name}' is not ready`);
    }

    // Where and as whom (Flux's rule, shared with Kustomizations): nothing is installed when it cannot be had.
    let target: Target;
    try {
      target = await this.target(hr, spec);
    } catch (err) {
      if (!(err instanceof TargetError)) throw err;
      throw new ReconcileFailure("RESTClientError", `${err.message}; nothing installed`);
    }
    const cluster = accessOf(target);

    const values = await this.values(ns, spec);
    const desired = {
      chartName: artifact.metadata?.chart ?? "",
      chartVersion: artifact.revision,
      configDigest: configDigest(values),
    };
    const release = releaseNameOf({
      name,
      releaseName: spec.releaseName,
      targetNamespace: spec.targetNamespace,
    });
    // As helm-controller: a release moved (targetNamespace, releaseName or storageNamespace changed)
    // is uninstalled where it was before it is installed where it now belongs.
    const moved = movedRelease(hr.status, { release, targetNs, storageNs });
    if (moved) {
      this.opts.log.info(
        { helmrelease: `${ns}/${name}`, from: `${moved.namespace}/${moved.name}`, storage: moved.storage },
        "release target changed: uninstalling the previous release",
      );
      const old = await listReleases(target.client, moved.storage, moved.name);
      const gone = !old.length || old.at(-1)?.info.status === "uninstalled";
      if (!gone) actions.push("uninstall");
      try {
        if (!gone)
          await this.opts.helm.uninstall({
            release: moved.name,
            namespace: moved.namespace,
            storageNamespace: moved.storage,
            cluster,
            timeout: spec.uninstall?.timeout ?? spec.timeout ?? "5m",
            wait: !spec.uninstall?.disableWait,
            keepHistory: spec.uninstall?.keepHistory,
            disableHooks: spec.uninstall?.disableHooks,
            cascade: spec.uninstall?.deletionPropagation,
          });
      } catch (err) {
        if (!(err instanceof HelmError)) throw err;
        throw new ReconcileFailure(
          "UninstallFailed",
          `release target changed; Helm uninstall of previous release ${moved.namespace}/${moved.name} failed: ${err.message}`,
        );
      }
      // Its history is the old release's: cleared, as helm-controller does.
      await this.writeStatus(hr, { ...hr.status, history: undefined, storageNamespace: undefined });
    }
    const before = await listReleases(target.client, storageNs, release);
    const latest = before.at(-1);
    const prev = hr.status ?? {};
    const attemptChanged =
      prev.lastAttemptedRevision !== desired.chartVersion ||
      prev.lastAttemptedConfigDigest !== desired.configDigest ||
      prev.lastAttemptedGeneration !== hr.metadata.generation;
    // A new desired state earns fresh retries, as helm-controller clears its failure counts.
    let installFailures = attemptChanged ? 0 : (prev.installFailures ?? 0);
    let upgradeFailures = attemptChanged ? 0 : (prev.upgradeFailures ?? 0);
    let failures = attemptChanged ? 0 : (prev.failures ?? 0);
    const latestState: ReleaseState | undefined = latest && stateOf(latest);
    const head = prev.history?.[0];
    const managed = Boolean(latest && head && head.version === latest.version && head.name === latest.name);
    const install = remediationOf(spec.install?.remediation);
    const upgrade = remediationOf(spec.upgrade?.remediation);
    const postRenderers = postRenderSteps(spec);
    const postRenderDigest = postRenderersDigest(postRenderers);
    const plan = planRelease({
      postRenderersChanged: prev.observedPostRenderersDigest !== postRenderDigest,
      latest: latestState,
      managed,
      everDeployed: before.some(
        (r) =>
          r.info.status !== "failed" &&
          r.info.status !== "uninstalled" &&
          !r.info.status.startsWith("pending"),
      ),
      desired,
      installFailures,
      upgradeFailures,
      install,
      upgrade,
    });

    const now = () => new Date().toISOString();
    const g = hr.metadata.generation === undefined ? {} : { observedGeneration: hr.metadata.generation };
    const requestedAt = hr.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    let next: HelmReleaseStatus = {
      ...prev,
      ...g,
      helmChart,
      storageNamespace: storageNs,
      ...(requestedAt ? { lastHandledReconcileAt: requestedAt } : {}),
    };
    let conditions = removeCondition(prev.conditions ?? [], "Reconciling");
    const involved = {
      apiVersion: HELM_API_VERSION,
      kind: "HelmRelease",
      name,
      namespace: ns,
      uid: hr.metadata.uid,
    };
    const chartText = `${desired.chartName}@${desired.chartVersion}`;
    const timeout = spec.timeout ?? "5m";

    if (plan.action === "none") {
      // In sync: nothing to run but the drift check asked for. Ready is restored when an earlier
      // failure (values, dependency) has cleared.
      const mode = spec.driftDetection?.mode ?? "disabled";
      if (mode !== "disabled" && latest?.manifest) {
        const what = `${targetNs}/${release}.v${latest.version}`;
        let report: Awaited<ReturnType<typeof detectDrift>>;
        try {
          report = await detectDrift(target.client, latest.manifest, {
            namespace: targetNs,
            ignore: spec.driftDetection?.ignore ?? [],
            correct: mode === "enabled",
          });
        } catch (err) {
          throw new ReconcileFailure(
            "DriftDetectionFailed",
            `drift detection of release ${what} failed: ${describeError(err)}`,
          );
        }
        if (report.entries.length) {
          const summary = driftSummary(report.entries);
          const [type, reason, message] = report.corrected
            ? ([
                "Normal",
                "DriftCorrected",
                `Cluster state of release ${what} has been corrected: ${summary}`,
              ] as const)
            : ([
                "Warning",
                "DriftDetected",
                `Cluster state of release ${what} has drifted from the desired state: ${summary}`,
              ] as const);
          this.opts.log.info({ helmrelease: `${ns}/${name}`, reason }, message);
          await this.opts.events.emit(involved, type, reason, message);
        }
      }
      const released = conditions.find((c) => c.type === "Released");
      if (conditions.find((c) => c.type === "Ready")?.status !== "True") {
        const message =
          released?.status === "True"
            ? released.message
            : `release ${targetNs}/${release}.v${latest?.version} is in sync`;
        conditions = removeCondition(conditions, "Stalled");
        conditions = setCondition(
          conditions,
          { type: "Ready", status: "True", reason: released?.reason ?? "UpgradeSucceeded", message, ...g },
          now(),
        );
      }
      next = {
        ...next,
        conditions,
        history: historyOf(before, prev.history, latest?.version ?? 0, spec.maxHistory),
      };
      await this.writeStatus(hr, next);
      return;
    }

    next = {
      ...next,
      lastAttemptedGeneration: hr.metadata.generation,
      lastAttemptedRevision: desired.chartVersion,
      lastAttemptedConfigDigest: desired.configDigest,
    };
    if (plan.action === "exhausted") {
      const message = `Failed to ${plan.which} after ${plan.failures} attempt(s)`;
      conditions = setCondition(
        conditions,
        { type: "Ready", status: "False", reason: "RetriesExceeded", message, ...g },
        now(),
      );
      conditions = setCondition(
        conditions,
        { type: "Stalled", status: "True", reason: "RetriesExceeded", message, ...g },
        now(),
      );
      next = { ...next, conditions, ...counters(failures, installFailures, upgradeFailures) };
      await this.writeStatus(hr, next);
      return;
    }

    const isInstall = plan.action === "install";
    const flags = isInstall ? spec.install : spec.upgrade;
    next.lastAttemptedReleaseAction = isInstall ? "install" : "upgrade";
    this.opts.log.info(
      { helmrelease: `${ns}/${name}`, release, why: plan.why },
      `helm ${next.lastAttemptedReleaseAction}`,
    );
    let error: string | undefined;
    try {
      if (plan.action === "install" && plan.reinstall) {
        actions.push("uninstall");
        await this.opts.helm.uninstall({
          release,
          namespace: targetNs,
          storageNamespace: storageNs,
          cluster,
          timeout,
          wait: true,
        });
      }
      // Flux's CRD policies: Helm creates missing CRDs on install (Create); the rest is the agent's.
      const crdPolicy: CrdPolicy = isInstall
        ? spec.install?.skipCRDs
          ? "Skip"
          : (spec.install?.crds ?? "Create")
        : (spec.upgrade?.crds ?? "Skip");
      if (crdPolicy === "CreateReplace" || (!isInstall && crdPolicy === "Create")) {
        try {
          const crds = parseCrds(await this.opts.helm.showCrds(artifact.dir));
          await applyCrds(target.client, crds, crdPolicy, parseDuration(flags?.timeout ?? timeout));
        } catch (err) {
          throw new HelmError(`applying the chart's CRDs (${crdPolicy}) failed: ${describeError(err)}`);
        }
      }
      actions.push(isInstall ? "install" : "upgrade");
      await this.opts.helm.upgrade({
        release,
        namespace: targetNs,
        storageNamespace: storageNs,
        cluster,
        chartDir: artifact.dir,
        values,
        install: isInstall,
        timeout: flags?.timeout ?? timeout,
        wait: !flags?.disableWait,
        waitForJobs: !flags?.disableWaitForJobs,
        maxHistory: spec.maxHistory ?? 5,
        createNamespace: isInstall && spec.install?.createNamespace === true,
        skipCrds: isInstall && crdPolicy !== "Create",
        forceReplace: !isInstall && spec.upgrade?.force === true,
        disableHooks: flags?.disableHooks,
        disableOpenApiValidation: flags?.disableOpenAPIValidation,
        disableSchemaValidation: flags?.disableSchemaValidation,
        cleanupOnFail: !isInstall && spec.upgrade?.cleanupOnFail === true,
        takeOwnership: !flags?.disableTakeOwnership,
        ...(postRenderers.length ? { postRenderers } : {}),
      });
    } catch (err) {
      if (!(err instanceof HelmError)) throw err;
      error = err.message;
    }

    let after = await listReleases(target.client, storageNs, release);
    next.observedPostRenderersDigest = postRenderDigest;
    /** Set when the action succeeded but its tests failed (and failures are not ignored). */
    let testFailure: string | undefined;
    if (error === undefined) {
      let rel = after.at(-1);
      const reason = isInstall ? "InstallSucceeded" : "UpgradeSucceeded";
      const message = `Helm ${isInstall ? "install" : "upgrade"} succeeded for release ${targetNs}/${release}.v${rel?.version} with chart ${chartText}`;
      conditions = removeCondition(removeCondition(conditions, "Stalled"), "Remediated");
      conditions = setCondition(
        conditions,
        { type: "Released", status: "True", reason, message, ...g },
        now(),
      );
      conditions = removeCondition(conditions, "TestSuccess");
      if (spec.test?.enable) {
        const tested = await this.test(release, { targetNs, storageNs, cluster }, spec, actions);
        after = await listReleases(target.client, storageNs, release);
        rel = after.at(-1);
        const hooks = Object.keys((rel && testHooksOf(rel)) ?? {}).length;
        const where = `${targetNs}/${release}.v${rel?.version} with chart ${chartText}`;
        const ignore =
          spec.test.ignoreFailures ||
          (isInstall ? spec.install : spec.upgrade)?.remediation?.ignoreTestFailures === true;
        const testMessage =
          tested === undefined
            ? `Helm test succeeded for release ${where}: ${hooks ? `${hooks} test hook(s) completed successfully` : "no test hooks"}`
            : `Helm test failed for release ${where}: ${tested}`;
        conditions = setCondition(
          conditions,
          {
            type: "TestSuccess",
            status: tested === undefined ? "True" : "False",
            reason: tested === undefined ? "TestSucceeded" : "TestFailed",
            message: testMessage,
            ...g,
          },
          now(),
        );
        await this.opts.events.emit(
          involved,
          tested === undefined ? "Normal" : "Warning",
          tested === undefined ? "TestSucceeded" : "TestFailed",
          testMessage,
        );
        if (tested !== undefined && !ignore) testFailure = testMessage;
      }
    }
    if (error === undefined && testFailure === undefined) {
      // Ready tells the last step that succeeded: the tests when they ran and passed, else the action.
      const tests = conditions.find((c) => c.type === "TestSuccess");
      const last = tests?.status === "True" ? tests : conditions.find((c) => c.type === "Released");
      const reason = last?.reason ?? (isInstall ? "InstallSucceeded" : "UpgradeSucceeded");
      const message = last?.message ?? "";
      conditions = setCondition(conditions, { type: "Ready", status: "True", reason, message, ...g }, now());
      // Success clears the counters (helm-controller keeps them only while failing).
      next = {
        ...next,
        conditions,
        ...counters(0, 0, 0),
        history: historyOf(after, prev.history, latest?.version ?? 0, spec.maxHistory),
      };
      await this.writeStatus(hr, next);
      if (reason !== "TestSucceeded") await this.opts.events.emit(involved, "Normal", reason, message);
      return;
    }

    failures++;
    if (isInstall) installFailures++;
    else upgradeFailures++;
    let reason: string;
    let message: string;
    if (testFailure !== undefined) {
      reason = "TestFailed";
      message = testFailure;
    } else {
      reason = isInstall ? "InstallFailed" : "UpgradeFailed";
      message = `Helm ${isInstall ? "install" : "upgrade"} failed for release ${targetNs}/${release} with chart ${chartText}: ${error}`;
      conditions = setCondition(
        conditions,
        { type: "Released", status: "False", reason, message, ...g },
        now(),
      );
      await this.opts.events.emit(involved, "Warning", reason, message);
    }
    const remediation = isInstall ? install : upgrade;
    if (remediates(isInstall ? installFailures : upgradeFailures, remediation)) {
      const outcome = isInstall
        ? after.length
          ? await this.remediateInstall(release, { targetNs, storageNs, cluster }, spec, actions)
          : undefined
        : spec.upgrade?.remediation?.strategy === "uninstall"
          ? await this.remediateInstall(release, { targetNs, storageNs, cluster }, spec, actions)
          : await this.remediateUpgrade(
              release,
              { targetNs, storageNs, cluster },
              spec,
              after,
              actions,
              testFailure !== undefined,
            );
      if (outcome) {
        after = await listReleases(target.client, storageNs, release);
        conditions = setCondition(
          conditions,
          {
            type: "Remediated",
            status: outcome.ok ? "True" : "False",
            reason: outcome.reason,
            message: outcome.message,
            ...g,
          },
          now(),
        );
        message = `${message}; ${outcome.message}`;
        await this.opts.events.emit(
          involved,
          outcome.ok ? "Normal" : "Warning",
          outcome.reason,
          outcome.message,
        );
      }
    }
    conditions = setCondition(conditions, { type: "Ready", status: "False", reason, message, ...g }, now());
    next = {
      ...next,
      conditions,
      ...counters(failures, installFailures, upgradeFailures),
      history: historyOf(after, prev.history, latest?.version ?? 0, spec.maxHistory),
    };
    await this.writeStatus(hr, next);
    this.opts.log.warn({ helmrelease: `${ns}/${name}` }, message);
  }

  private async remediateUpgrade(
    release: string,
    where: Where,
    spec: HelmReleaseSpec,
    after: StoredRelease[],
    actions: string[],
    testFailed = false,
  ): Promise<{ ok: boolean; reason: string; message: string } | undefined> {
    // An upgrade that failed before Helm recorded it (a render error) left the deployed release as it was.
    // One whose tests failed is deployed: it is rolled back all the same, as helm-controller does.
    if (!testFailed && after.at(-1)?.info.status !== "failed") return undefined;
    // Back to the newest release that was deployed before the failed upgrade.
    const target = after
      .slice(0, -1)
      .reverse()
      .find((r) => r.info.status === "superseded" || r.info.status === "deployed");
    if (!target) return undefined;
    actions.push("rollback");
    try {
      await this.opts.helm.rollback({
        release,
        namespace: where.targetNs,
        storageNamespace: where.storageNs,
        cluster: where.cluster,
        version: target.version,
        timeout: spec.rollback?.timeout ?? spec.timeout ?? "5m",
        wait: !spec.rollback?.disableWait,
        waitForJobs: !spec.rollback?.disableWaitForJobs,
        disableHooks: spec.rollback?.disableHooks,
        cleanupOnFail: spec.rollback?.cleanupOnFail,
        forceReplace: spec.rollback?.force === true,
      });
      const chart = `${target.chart.metadata.name}@${target.chart.metadata.version}`;
      return {
        ok: true,
        reason: "RollbackSucceeded",
        message: `Helm rollback to previous release ${where.targetNs}/${release}.v${target.version} with chart ${chart} succeeded`,
      };
    } catch (err) {
      if (!(err instanceof HelmError)) throw err;
      return {
        ok: false,
        reason: "RollbackFailed",
        message: `Helm rollback of release ${where.targetNs}/${release} failed: ${err.message}`,
      };
    }
  }

  /** Helm's test hooks of the latest revision; the failure line, or undefined when they passed. */
  private async test(
    release: string,
    where: Where,
    spec: HelmReleaseSpec,
    actions: string[],
  ): Promise<string | undefined> {
    actions.push("test");
    const filters: Record<string, string[]> = {};
    for (const f of spec.test?.filters ?? []) {
      const key = f.exclude ? "!name" : "name";
      filters[key] = [...(filters[key] ?? []), f.name];
    }
    try {
      await this.opts.helm.test({
        release,
        namespace: where.targetNs,
        storageNamespace: where.storageNs,
        cluster: where.cluster,
        timeout: spec.test?.timeout ?? spec.timeout ?? "5m",
        wait: true,
        filters,
      });
      return undefined;
    } catch (err) {
      if (!(err instanceof HelmError)) throw err;
      return err.message;
    }
  }

  private async remediateInstall(
    release: string,
    where: Where,
    spec: HelmReleaseSpec,
    actions: string[],
  ): Promise<{ ok: boolean; reason: string; message: string } | undefined> {
    actions.push("uninstall");
    try {
      await this.opts.helm.uninstall({
        release,
        namespace: where.targetNs,
        storageNamespace: where.storageNs,
        cluster: where.cluster,
        timeout: spec.uninstall?.timeout ?? spec.timeout ?? "5m",
        wait: !spec.uninstall?.disableWait,
      });
      return {
        ok: true,
        reason: "UninstallSucceeded",
        message: `Helm uninstall of failed release ${where.targetNs}/${release} succeeded`,
      };
    } catch (err) {
      if (!(err instanceof HelmError)) throw err;
      return {
        ok: false,
        reason: "UninstallFailed",
        message: `Helm uninstall of failed release ${where.targetNs}/${release} failed: ${err.message}`,
      };
    }
  }

  /**
   * Moved from `chart` to `chartRef`: the HelmChart made for the template
   * (named in status.helmChart) is deleted, as helm-controller collects it.
   */
  private async dropTemplateChart(hr: HelmReleaseObject): Promise<void> {
    const [chartNs, chartName] = (hr.status?.helmChart ?? "").split("/");
    const ns = hr.metadata.namespace ?? "";
    if (!chartNs || chartName !== chartObjectName({ namespace: ns, name: hr.metadata.name ?? "" })) return;
    const del = await this.opts.client.raw({ method: "DELETE", path: helmChartPath(chartNs, chartName) });
    if (del.code !== 200 && del.code !== 202 && del.code !== 404)
      throw apiError(`delete HelmChart ${chartNs}/${chartName}`, del.code, del.body);
  }

  /** The chart to install: a HelmChart's artifact as is, another source's made into a chart (./chartref.ts). */
  private chartOf(ref: { kind: string; namespace: string; name: string }, artifact: Artifact): Artifact {
    if (ref.kind === "HelmChart") return artifact;
    try {
      return this.charts.prepare(ref, artifact);
    } catch (err) {
      if (err instanceof ChartRefError) throw new ReconcileFailure(err.reason, err.message, true);
      throw err;
    }
  }

  /**
   * Where and as whom this release's Helm actions and storage reads run:
   * the rule Kustomizations follow (../targets.ts), never the root's
   * exemption. A missing account or kubeconfig Secret is a TargetError.
   */
  private async target(hr: HelmReleaseObject, spec: HelmReleaseSpec): Promise<Target> {
    return await this.opts.targets.resolveSpec(hr.metadata.namespace ?? "", spec as TargetSpec, {
      root: false,
    });
  }

  /** The HelmChart this HelmRelease installs from; for chart.spec, created or updated to match it. */
  private async chartRef(
    hr: HelmReleaseObject,
    spec: HelmReleaseSpec,
  ): Promise<{ kind: string; namespace: string; name: string }> {
    const ns = hr.metadata.namespace ?? "";
    if (spec.chartRef) {
      const ref = {
        kind: spec.chartRef.kind,
        namespace: spec.chartRef.namespace ?? ns,
        name: spec.chartRef.name,
      };
      if (ref.kind !== "HelmChart" || hr.status?.helmChart !== `${ref.namespace}/${ref.name}`)
        await this.dropTemplateChart(hr);
      return ref;
    }
    const tpl = spec.chart;
    if (!tpl) throw new ReconcileFailure("InvalidSpec", "either chart or chartRef must be set", true);
    const chartNs = tpl.spec.sourceRef.namespace ?? ns;
    const name = chartObjectName({ namespace: ns, name: hr.metadata.name ?? "" });
    const desiredSpec: Record<string, unknown> = {
      chart: tpl.spec.chart,
      version: tpl.spec.version || "*",
      sourceRef: {
        kind: tpl.spec.sourceRef.kind,
        name: tpl.spec.sourceRef.name,
        ...(tpl.spec.sourceRef.apiVersion ? { apiVersion: tpl.spec.sourceRef.apiVersion } : {}),
      },
      interval: tpl.spec.interval ?? spec.interval,
      reconcileStrategy: tpl.spec.reconcileStrategy ?? "ChartVersion",
      ...(tpl.spec.valuesFiles?.length ? { valuesFiles: tpl.spec.valuesFiles } : {}),
      ...(tpl.spec.ignoreMissingValuesFiles ? { ignoreMissingValuesFiles: true } : {}),
    };
    const labels = {
      ...(tpl.metadata?.labels ?? {}),
      "helm.toolkit.fluxcd.io/name": hr.metadata.name ?? "",
      "helm.toolkit.fluxcd.io/namespace": ns,
    };
    const annotations = tpl.metadata?.annotations ?? {};
    const path = helmChartPath(chartNs, name);
    const res = await this.opts.client.raw({ method: "GET", path });
    if (res.code === 404) {
      const created = await this.opts.client.raw({
        method: "POST",
        path: helmChartPath(chartNs),
        body: {
          apiVersion: SOURCE_API_VERSION,
          kind: "HelmChart",
          metadata: { name, namespace: chartNs, labels, annotations },
          spec: desiredSpec,
        },
        query: { fieldManager: "shipmate-agent" },
      });
      if (created.code === 404)
        throw new ReconcileFailure(
          "ArtifactFailed",
          "the HelmChart kind is not served: apply deploy/agent/crds.yaml",
        );
      if (created.code !== 201 && created.code !== 409)
        throw apiError(`create HelmChart ${chartNs}/${name}`, created.code, created.body);
      // The object the API server returned is the source's state: no need to list every source kind again.
      if (created.code !== 201 || !this.opts.sources.remember("HelmChart", created.body as SourceObject))
        await this.opts.sources.refresh();
    } else if (res.code === 200) {
      const live = res.body as {
        metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
        spec?: Record<string, unknown>;
      };
      const liveLabels = live.metadata?.labels ?? {};
      const labelsOk = Object.entries(labels).every(([k, v]) => liveLabels[k] === v);
      const annotationsOk = Object.entries(annotations).every(
        ([k, v]) => live.metadata?.annotations?.[k] === v,
      );
      if (canonicalJson(live.spec ?? {}) !== canonicalJson(desiredSpec) || !labelsOk || !annotationsOk) {
        const spec: Record<string, unknown> = { ...desiredSpec };
        for (const k of Object.keys(live.spec ?? {})) if (!(k in spec)) spec[k] = null;
        const patched = await this.opts.client.raw({
          method: "PATCH",
          path,
          body: { metadata: { labels, annotations }, spec },
          contentType: "application/merge-patch+json",
          query: { fieldManager: "shipmate-agent" },
        });
        if (patched.code !== 200)
          throw apiError(`update HelmChart ${chartNs}/${name}`, patched.code, patched.body);
        if (!this.opts.sources.remember("HelmChart", patched.body as SourceObject))
          await this.opts.sources.refresh();
      }
    } else throw apiError(`HelmChart ${chartNs}/${name}`, res.code, res.body);
    return { kind: "HelmChart", namespace: chartNs, name };
  }

  /** valuesFrom in order, then values: missing objects or keys fail unless optional. */
  private async values(ns: string, spec: HelmReleaseSpec): Promise<Values> {
    const sources: ValuesSource[] = [];
    for (const ref of spec.valuesFrom ?? []) {
      const what = `${ref.kind} '${ns}/${ref.name}'`;
      const plural = ref.kind === "Secret" ? "secrets" : "configmaps";
      const res = await this.opts.client.raw({
        method: "GET",
        path: `/api/v1/namespaces/${encodeURIComponent(ns)}/${plural}/${encodeURIComponent(ref.name)}`,
      });
      if (res.code === 404) {
        if (ref.optional) continue;
        throw new ReconcileFailure("ValuesError", `could not find ${what}`);
      }
      if (res.code !== 200) throw apiError(`read ${what}`, res.code, res.body);
      const body = res.body as { data?: Record<string, string> };
      const key = ref.valuesKey || "values.yaml";
      const raw = body.data?.[key];
      if (raw === undefined) {
        if (ref.optional) continue;
        throw new ReconcileFailure("ValuesError", `missing key '${key}' in ${what}`);
      }
      const text = ref.kind === "Secret" ? Buffer.from(raw, "base64").toString("utf8") : raw;
      if (ref.targetPath) {
        sources.push({ targetPath: ref.targetPath, literal: ref.literal, text, what });
        continue;
      }
      let parsed: unknown;
      try {
        parsed = parse(text);
      } catch (err) {
        // The parser's message may quote the document: a Secret's content stays out of status.
        throw new ReconcileFailure(
          "ValuesError",
          `key '${key}' in ${what} is not valid YAML${ref.kind === "Secret" ? "" : `: ${(err as Error).message.split("\n")[0]}`}`,
        );
      }
      sources.push({ text, parsed, what: `key '${key}' in ${what}` });
    }
    try {
      return composeValues(sources, (spec.values ?? undefined) as Values | undefined);
    } catch (err) {
      throw new ReconcileFailure("ValuesError", (err as Error).message);
    }
  }

  private async ensureFinalizer(hr: HelmReleaseObject): Promise<void> {
    const finalizers = hr.metadata.finalizers ?? [];
    if (finalizers.includes(HELM_FINALIZER)) return;
    const res = await this.opts.client.raw({
      method: "PATCH",
      path: helmReleasePath(hr.metadata.namespace, hr.metadata.name),
      body: {
        metadata: {
          finalizers: [...finalizers, HELM_FINALIZER],
          resourceVersion: hr.metadata.resourceVersion,
        },
      },
      contentType: "application/merge-patch+json",
    });
    if (res.code !== 200) throw apiError(`add finalizer to HelmRelease ${keyOf(hr)}`, res.code, res.body);
    const body = res.body as HelmReleaseObject;
    hr.metadata.finalizers = body.metadata.finalizers;
    hr.metadata.resourceVersion = body.metadata.resourceVersion;
  }

  /** A deleted HelmRelease: its release uninstalled (unless suspended), its HelmChart deleted, then let go. */
  private async finalize(hr: HelmReleaseObject): Promise<void> {
    const finalizers = hr.metadata.finalizers ?? [];
    if (!finalizers.includes(HELM_FINALIZER)) return;
    const ns = hr.metadata.namespace ?? "";
    const name = hr.metadata.name ?? "";
    const parsed = HelmReleaseSpec.safeParse(hr.spec ?? {});
    if (parsed.success && !parsed.data.suspend) {
      const spec = parsed.data;
      // Where the release was recorded (Flux reads status.storageNamespace too), else where it would be.
      const storageNs = hr.status?.storageNamespace || spec.storageNamespace || ns;
      // The release it last recorded (a spec edited since names another), else the spec's.
      const head = hr.status?.history?.[0];
      const release =
        head?.name ??
        releaseNameOf({ name, releaseName: spec.releaseName, targetNamespace: spec.targetNamespace });
      const targetNs = head?.namespace ?? spec.targetNamespace ?? ns;
      let target: Target | undefined;
      try {
        // As helm-controller: a release never reached (no storage namespace in status) has nothing to uninstall.
        if (hr.status?.storageNamespace) target = await this.target(hr, spec);
      } catch (err) {
        // As helm-controller's finalizer: without the account, or without the kubeconfig Secret, nothing
        // may be uninstalled in its name and the release stays. Any other reason (an unreachable
        // cluster) keeps the finalizer: the uninstall is retried.
        if (!(err instanceof TargetError && (err.missingServiceAccount || err.missingKubeConfigSecret))) {
          this.opts.log.warn({ helmrelease: `${ns}/${name}` }, `uninstall failed: ${describeError(err)}`);
          return;
        }
        this.opts.log.error(
          { helmrelease: `${ns}/${name}` },
          `uninstall skipped, release ${storageNs}/${release} left in place: ${err.message}`,
        );
      }
      const stored = target ? await listReleases(target.client, storageNs, release) : [];
      if (target && stored.length && stored.at(-1)?.info.status !== "uninstalled") {
        try {
          await this.opts.helm.uninstall({
            release,
            namespace: targetNs,
            storageNamespace: storageNs,
            cluster: accessOf(target),
            timeout: spec.uninstall?.timeout ?? spec.timeout ?? "5m",
            wait: !spec.uninstall?.disableWait,
            keepHistory: spec.uninstall?.keepHistory,
            disableHooks: spec.uninstall?.disableHooks,
            cascade: spec.uninstall?.deletionPropagation,
          });
          this.opts.log.info({ helmrelease: `${ns}/${name}` }, `uninstalled release ${storageNs}/${release}`);
        } catch (err) {
          // The finalizer stays: the uninstall is retried on the next pass.
          this.opts.log.warn({ helmrelease: `${ns}/${name}` }, `uninstall failed: ${describeError(err)}`);
          return;
        }
      }
      if (spec.chart) {
        const chartNs = spec.chart.spec.sourceRef.namespace ?? ns;
        const del = await this.opts.client.raw({
          method: "DELETE",
          path: helmChartPath(chartNs, chartObjectName({ namespace: ns, name })),
        });
        if (del.code !== 200 && del.code !== 202 && del.code !== 404)
          throw apiError("delete HelmChart", del.code, del.body);
      }
    }
    const res = await this.opts.client.raw({
      method: "PATCH",
      path: helmReleasePath(ns, name),
      body: {
        metadata: {
          finalizers: finalizers.filter((f) => f !== HELM_FINALIZER),
          resourceVersion: hr.metadata.resourceVersion,
        },
      },
      contentType: "application/merge-patch+json",
    });
    if (res.code !== 200 && res.code !== 404)
      throw apiError(`remove finalizer of HelmRelease ${ns}/${name}`, res.code, res.body);
  }

  private async fail(hr: HelmReleaseObject, failure: ReconcileFailure): Promise<HelmReleaseReport> {
    const now = new Date().toISOString();
    const g = hr.metadata.generation === undefined ? {} : { observedGeneration: hr.metadata.generation };
    const requestedAt = hr.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    const conditions = failedConditions(hr.status?.conditions ?? [], failure, g, now);
    const changed = hr.status?.conditions?.find((x) => x.type === "Ready")?.message !== failure.message;
    await this.writeStatus(hr, {
      ...hr.status,
      ...g,
      ...(requestedAt ? { lastHandledReconcileAt: requestedAt } : {}),
      conditions,
    });
    if (changed) {
      this.opts.log.warn({ helmrelease: keyOf(hr), reason: failure.reason }, failure.message);
      await this.opts.events.emit(
        {
          apiVersion: HELM_API_VERSION,
          kind: "HelmRelease",
          name: hr.metadata.name ?? "",
          namespace: hr.metadata.namespace ?? "",
          uid: hr.metadata.uid,
        },
        "Warning",
        failure.reason,
        failure.message,
      );
    }
    return this.report(hr, []);
  }

  /** Writes status only when it differs, so a steady release costs no write. */
  private async writeStatus(hr: HelmReleaseObject, next: HelmReleaseStatus): Promise<void> {
    const prev = hr.status ?? {};
    if (canonicalJson(prev) === canonicalJson(next)) return;
    const body: Record<string, unknown> = { ...next };
    for (const k of Object.keys(prev)) if (!(k in next) || next[k] === undefined) body[k] = null;
    const res = await this.opts.client.raw({
      method: "PATCH",
      path: helmReleasePath(hr.metadata.namespace, hr.metadata.name, true),
      body: { status: body },
      contentType: "application/merge-patch+json",
    });
    if (res.code === 404) return;
    if (res.code !== 200) throw apiError(`status of HelmRelease ${keyOf(hr)}`, res.code, res.body);
    hr.status = Object.fromEntries(
      Object.entries(next).filter(([, v]) => v !== undefined),
    ) as HelmReleaseStatus;
  }
}

/** The Ready condition's status, for gotk_reconcile_condition (Unknown before the first reconcile). */
function readyOf(hr: HelmReleaseObject): "True" | "False" | "Unknown" {
  const s = hr.status?.conditions?.find((c) => c.type === "Ready")?.status;
  return s === "True" || s === "False" ? s : "Unknown";
}

/** Where a remediation runs: the release's namespaces and its cluster access. */
interface Where {
  targetNs: string;
  storageNs: string;
  cluster: ClusterAccess;
}

/** What helm needs of a Target: its cluster's kubeconfig and the identity it impersonates. */
function accessOf(target: Target): ClusterAccess {
  const user = target.client.identity?.user;
  return { kc: target.client.kc, ...(user ? { asUser: user } : {}) };
}

function stateOf(r: StoredRelease): ReleaseState {
  const s = snapshotOf(r);
  return {
    version: s.version,
    status: s.status,
    chartName: s.chartName,
    chartVersion: s.chartVersion,
    configDigest: s.configDigest,
  };
}

/** helm-controller omits zero counters. */
function counters(
  failures: number,
  installFailures: number,
  upgradeFailures: number,
): Partial<HelmReleaseStatus> {
  return {
    failures: failures || undefined,
    installFailures: installFailures || undefined,
    upgradeFailures: upgradeFailures || undefined,
  };
}

/**
 * `status.history`, newest first: the revisions this HelmRelease recorded
 * before and those created since `since` (its own actions), refreshed from
 * storage (a superseded release shows as such), at most `maxHistory` (5 by
 * default, 0 unlimited) and only what Helm still stores.
 */
export function historyOf(
  stored: readonly StoredRelease[],
  previous: readonly Snapshot[] | undefined,
  since: number,
  maxHistory: number | undefined,
): Snapshot[] {
  const known = new Set((previous ?? []).map((s) => s.version));
  const picked = stored
    .filter((r) => known.has(r.version) || r.version > since)
    .map(snapshotOf)
    .sort((a, b) => b.version - a.version);
  const max = maxHistory ?? 5;
  return max > 0 ? picked.slice(0, max) : picked;
}
