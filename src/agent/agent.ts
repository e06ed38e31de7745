/**
 * The sync agent: fetches the fleet repository on an interval, reconciles
 * the root Kustomization (everything under --path, including Kustomization
 * objects) and then every Kustomization it finds, in dependsOn order, each on
 * its own interval. Kustomizations naming another GitRepository render from
 * that repository's checkout (./source-objects.ts). With leader election only the
 * lease holder acts. Flagger Canaries the Kustomizations applied are reported as
 * events on them when they fail or succeed (./canaries.ts).
 */
import { mkdirSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, normalize } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { ClusterError, ConfigError, describeError, redact } from "../errors.ts";
import { Applier } from "../kube/apply.ts";
import { apiError, KubeClient } from "../kube/client.ts";
import { Discovery } from "../kube/discovery.ts";
import { CANARY_API_VERSION } from "../kube/flagger.ts";
import { NAME_LABEL, parseInventoryId, REQUESTED_AT_ANNOTATION } from "../kube/objects.ts";
import {
  KUSTOMIZATION_API_VERSION,
  KUSTOMIZATION_GROUP,
  KubeList,
  type KubeObject,
  KustomizationObject,
  KustomizationSpec,
} from "../kube/schema.ts";
import { type CanaryItem, CanaryList, canariesByNamespace, canaryTransition } from "./canaries.ts";
import { EventRecorder } from "./events.ts";
import { refuseBesideFlux } from "./fluxguard.ts";
import { ARTIFACT_GENERATOR_API_VERSION, GeneratorManager } from "./generators.ts";
import { type Artifact, GitSource } from "./git-source.ts";
import { HelmCli } from "./helm/cli.ts";
import { HelmReleaseReconciler, type HelmReleaseReport } from "./helm/release.ts";
import { HELM_API_VERSION, HELM_GROUP } from "./helm/spec.ts";
import { ImageAutomation } from "./images/automation.ts";
import { ImageReflector } from "./images/reflector.ts";
import { signingRoot } from "./images/signing.ts";
import { IMAGE_API_VERSION } from "./images/spec.ts";
import {
  dependenciesOf,
  dueReason,
  inventoryKeepsHashes,
  type KsKey,
  keyOf,
  orderByDependencies,
  parseDuration,
} from "./kustomization.ts";
import { LeaderElector, sleep } from "./leader.ts";
import { createLimiter } from "./limit.ts";
import { AgentMetrics } from "./metrics.ts";
import { AgentNotifications } from "./notifications.ts";
import { crdNeed } from "./own-crds.ts";
import { ReceiverServer } from "./receiver/receiver.ts";
import { ksPath, type ReconcileResult, Reconciler } from "./reconciler.ts";
import { findKustomize, parseManifests, Renderer } from "./render.ts";
import { SourceManager } from "./source-objects.ts";
import type { BucketLimits } from "./sources/bucket.ts";
import { treeDigest, urlAuthHeader } from "./sources/git.ts";
import { SourceError } from "./sources/handler.ts";
import { sourceHandlers } from "./sources/index.ts";
import type { OciLimits } from "./sources/oci.ts";
import { TargetResolver } from "./targets.ts";
import { crossNamespaceRef } from "./tenancy.ts";
import { watchForWork } from "./watch.ts";

export interface AgentOptions {
  repo: string;
  branch: string;
  /** Path of the cluster folder in the repository (the root Kustomization's path). */
  path: string;
  /** Git poll interval and the root Kustomization's interval. */
  intervalMs: number;
  /** Name and namespace of the root Kustomization (and of the leader lease). */
  name: string;
  namespace: string;
  workdir: string;
  forceConflicts?: boolean;
  /** How often the agent wakes up to look for due Kustomizations and requests. */
  pollMs?: number;
  concurrency?: number;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  healthPollMs?: number;
  /** Install the Kustomization/GitRepository CRDs when missing (needs CRD create rights). */
  installCrds?: boolean;
  /** How long an unreachable API server is retried before a request fails. */
  apiRetryMs?: number;
  /** Bounds on an OCIRepository's layer: compressed bytes, bytes once extracted. */
  artifactLimits?: Partial<OciLimits>;
  /** Bounds on a Bucket: objects in a listing, bytes in all. */
  bucketLimits?: Partial<BucketLimits>;
  /** How long an unreachable remote cluster (`spec.kubeConfig`) is retried before a request fails. */
  remoteApiRetryMs?: number;
  /** Flux's `--default-service-account`: Kustomizations and HelmReleases without `serviceAccountName` impersonate this one. */
  defaultServiceAccount?: string;
  /**
   * Serve Flux's ImageRepository and ImagePolicy objects in the cluster
   * (`--image-automation`, ./images/reflector.ts).
   */
  imageAutomation?: boolean;
  /** Serve Flux's Receiver objects on the HTTP server's `/hook/…` paths (default: with `imageAutomation`). */
  receivers?: boolean;
  /** The fleet repository's forge for an automation's push-branch pull requests (`--forge`; default: from the URL's host). */
  forge?: string;
  /** HelmReleases reconciled at once (`--helm-concurrency`; their Helm actions share one shipmate-helm process). */
  helmConcurrency?: number;
  /** Flux's `--no-cross-namespace-refs`: a sourceRef or dependsOn into another namespace is refused. */
  noCrossNamespaceRefs?: boolean;
  /** Flux's `--no-remote-bases`: a kustomization that would fetch from the network is refused. */
  noRemoteBases?: boolean;
}

export interface KustomizationReport {
  name: string;
  namespace: string;
  ready: boolean;
  suspended: boolean;
  reason: string;
  message: string;
  revision: string;
  inventory: number;
}

export interface PassSummary {
  revision: string | undefined;
  sourceError: string | undefined;
  reconciled: KustomizationReport[];
  /** HelmReleases looked at in this pass (suspended and not-due ones report their current state). */
  helmReleases: HelmReleaseReport[];
  writes: number;
}

const CRD_FILE = new URL("../../deploy/agent/crds.yaml", import.meta.url);
const KUSTOMIZATION_CRD = `kustomizations.${KUSTOMIZATION_GROUP}`;

export class Agent {
  readonly client: KubeClient;
  readonly metrics: AgentMetrics;
  readonly identity: string;
  /** The in-cluster image reflector, with `imageAutomation`. */
  readonly images: ImageReflector | undefined;
  /** The in-cluster ImageUpdateAutomation runner, with `imageAutomation`. */
  readonly automation: ImageAutomation | undefined;
  /** Flux's Receivers, with `receivers`. */
  readonly receivers: ReceiverServer | undefined;
  private readonly opts: Required<Omit<AgentOptions, "identity" | "forge">> & Pick<AgentOptions, "forge">;
  private readonly log: Logger;
  private readonly source: GitSource;
  /** What the last fetch of the fleet repository adds to its GitRepository's status (`SourceVerified`…). */
  private rootExtras: Pick<Artifact, "conditions" | "status"> = {};
  private readonly sources: SourceManager;
  private readonly generators: GeneratorManager;
  private readonly discovery: Discovery;
  private readonly applier: Applier;
  private readonly renderer: Renderer;
  private readonly targets: TargetResolver;
  private readonly events: EventRecorder;
  /** Alerts and Providers: the agent's events sent on (./notifications.ts). */
  readonly notifications: AgentNotifications;
  readonly helm: HelmCli;
  private readonly helmReleases: HelmReleaseReconciler;
  private readonly lastRun = new Map<string, { at: number; failed: boolean }>();
  private lastFetch = 0;
  private sourceFailed = false;
  private current = new Map<string, KustomizationObject>();
  private lastPassEnd = 0;
  private loopAlive = 0;
  private syncRequested = false;
  private nudged = false;
  /** Whether the Kustomization CRD stores inventory state hashes (Flux's prunes them). */
  private inventoryHashes = true;
  /** Each Kustomization's state hashes of its last apply (./reconciler.ts: rememberedHashes). */
  private readonly rememberedHashes = new Map<string, Map<string, string>>();
  private wake: AbortController | undefined;
  readonly elector: LeaderElector;
  private readonly startedAt = Date.now();
  /** The phase last seen of each Canary a Kustomization applied (`ns/name`; "" before Flagger writes one). */
  private canaryPhases = new Map<string, string>();
  /** Why Canaries could not be read, said once in the log until a read works again. */
  private canaryProblem: string | undefined;

  constructor(kc: KubeConfig, options: AgentOptions, log: Logger) {
    this.identity = options.identity ?? `${hostname()}-${process.pid}`;
    this.opts = {
      forceConflicts: false,
      pollMs: 5000,
      concurrency: 4,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      healthPollMs: 2_000,
      installCrds: true,
      apiRetryMs: 60_000,
      artifactLimits: {},
      bucketLimits: {},
      remoteApiRetryMs: 10_000,
      defaultServiceAccount: "",
      noCrossNamespaceRefs: false,
      noRemoteBases: false,
      imageAutomation: false,
      helmConcurrency: 8,
      ...options,
      receivers: options.receivers ?? options.imageAutomation ?? false,
    };
    this.log = log;
    this.client = new KubeClient(kc, { retryForMs: this.opts.apiRetryMs });
    this.metrics = new AgentMetrics(this.client);
    mkdirSync(this.opts.workdir, { recursive: true });
    this.source = new GitSource({ url: options.repo, branch: options.branch, workdir: this.opts.workdir });
    this.discovery = new Discovery(this.client);
    this.applier = new Applier(this.client, this.discovery, { forceConflicts: this.opts.forceConflicts });
    this.renderer = new Renderer(findKustomize(), { noRemoteBases: this.opts.noRemoteBases });
    this.targets = new TargetResolver({
      client: this.client,
      discovery: this.discovery,
      applier: this.applier,
      applyOptions: { forceConflicts: this.opts.forceConflicts },
      defaultServiceAccount: this.opts.defaultServiceAccount,
      root: { name: this.opts.name, namespace: this.opts.namespace },
      remoteRetryMs: this.opts.remoteApiRetryMs,
    });
    this.events = new EventRecorder(this.client, this.identity);
    this.notifications = new AgentNotifications({
      client: this.client,
      log,
      instance: this.identity,
      warn: (obj, reason, message) => this.events.emit(obj, "Warning", reason, message),
    });
    this.events.sink = (...e) => this.notifications.record(...e);
    this.sources = new SourceManager({
      client: this.client,
      workdir: this.opts.workdir,
      log,
      events: this.events,
      metrics: this.metrics,
      root: { name: this.opts.name, namespace: this.opts.namespace },
      handlers: sourceHandlers({ oci: this.opts.artifactLimits, bucket: this.opts.bucketLimits }),
    });
    this.generators = new GeneratorManager({
      client: this.client,
      workdir: this.opts.workdir,
      log,
      events: this.events,
      // The fleet repository is the agent's own checkout; any other source comes from the SourceManager.
      resolve: (ref) =>
        ref.kind === "GitRepository" &&
        ref.namespace === this.opts.namespace &&
        ref.name === this.opts.name &&
        this.source.artifact
          ? Promise.resolve({ ok: true, artifact: { ...this.source.artifact, source: this.sources.rootKey } })
          : this.sources.resolveRef(ref),
      clean: (a) =>
        a.source && a.source !== this.sources.rootKey ? this.sources.clean(a) : this.source.clean(),
    });
    this.helm = new HelmCli(kc, { workdir: this.opts.workdir });
    this.helmReleases = new HelmReleaseReconciler({
      concurrency: this.opts.helmConcurrency,
      client: this.client,
      helm: this.helm,
      targets: this.targets,
      sources: this.sources,
      events: this.events,
      log,
      chartsDir: join(this.opts.workdir, "charts"),
      metrics: this.metrics,
    });
    this.images = this.opts.imageAutomation
      ? new ImageReflector({ client: this.client, events: this.events, log })
      : undefined;
    this.automation = this.opts.imageAutomation
      ? new ImageAutomation({
          client: this.client,
          events: this.events,
          log,
          noCrossNamespaceRefs: this.opts.noCrossNamespaceRefs,
          ...(this.opts.forge ? { forge: this.opts.forge } : {}),
          signingDir: signingRoot(join(this.opts.workdir, "signing")),
        })
      : undefined;
    this.receivers = this.opts.receivers
      ? new ReceiverServer({
          client: this.client,
          events: this.events,
          log,
          crossNamespace: !this.opts.noCrossNamespaceRefs,
        })
      : undefined;
    this.elector = new LeaderElector(this.client, {
      namespace: this.opts.namespace,
      name: `${this.opts.name}-agent-leader`,
      identity: this.identity,
      leaseDurationMs: this.opts.leaseDurationMs,
      renewDeadlineMs: this.opts.renewDeadlineMs,
      retryPeriodMs: this.opts.retryPeriodMs,
    });
  }

  /** For /healthz and /readyz. */
  probes() {
    return {
      trigger: () => this.requestSync(),
      ...(this.receivers
        ? {
            hook: (path: string, req: Parameters<ReceiverServer["handle"]>[1]) =>
              this.receivers!.handle(path, req),
          }
        : {}),
      healthy: () => {
        const stuck =
          this.loopAlive && Date.now() - this.loopAlive > Math.max(10 * this.opts.pollMs, 10 * 60_000);
        return { ok: !stuck, why: stuck ? "reconcile loop stuck" : "loop alive" };
      },
      ready: () => {
        const contact = Date.now() - this.client.lastContact < Math.max(3 * this.opts.pollMs, 60_000);
        return {
          ok: contact,
          why: contact ? (this.elector.isLeader ? "leader" : "standby") : "API server not reached recently",
        };
      },
    };
  }

  /**
   * Namespace, CRDs and the root Kustomization object, created when missing;
   * first of all, the agent refuses to start beside live Flux controllers
   * (./fluxguard.ts).
   */
  async setup(): Promise<void> {
    await refuseBesideFlux(this.client);
    const nsPath = `/api/v1/namespaces/${encodeURIComponent(this.opts.namespace)}`;
    const ns = await this.client.raw({ method: "GET", path: nsPath });
    if (ns.code === 404) {
      await this.createIfAbsent(
        "/api/v1/namespaces",
        { apiVersion: "v1", kind: "Namespace", metadata: { name: this.opts.namespace } },
        `create namespace ${this.opts.namespace}`,
      );
    } else if (ns.code !== 200) throw apiError(`namespace ${this.opts.namespace}`, ns.code, ns.body);

    const features = { imageAutomation: this.opts.imageAutomation, receivers: this.opts.receivers };
    const installed: KubeObject[] = [];
    for (const crd of parseManifests(readFileSync(CRD_FILE, "utf8"), "deploy/agent/crds.yaml")) {
      // Only the kinds this agent serves (./own-crds.ts).
      const need = crdNeed(crd.metadata.name ?? "", features);
      if (need === "skip") continue;
      const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`;
      const res = await this.client.raw({ method: "GET", path });
      if (res.code === 200) {
        // Flux's own (fuller) CRDs, or ours: either serves the agent.
        if (crd.metadata.name === KUSTOMIZATION_CRD) this.inventoryHashes = inventoryKeepsHashes(res.body);
        continue;
      }
      if (res.code !== 404) throw apiError(`CRD ${crd.metadata.name}`, res.code, res.body);
      if (!this.opts.installCrds) {
        if (need === "optional") continue;
        throw new ClusterError(`CRD ${crd.metadata.name} is not installed: apply deploy/agent/crds.yaml`);
      }
      await this.createIfAbsent(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        crd,
        `install CRD ${crd.metadata.name}`,
      );
      installed.push(crd);
    }
    // The Kustomization kind always (Flux's CRD may have been applied just before), and every kind installed here.
    await this.waitForKind(KUSTOMIZATION_API_VERSION, "Kustomization");
    for (const crd of installed) {
      const spec = crd.spec as {
        group: string;
        names: { kind: string };
        versions: { name: string; storage?: boolean }[];
      };
      const version = spec.versions.find((v) => v.storage) ?? spec.versions[0]!;
      await this.waitForKind(`${spec.group}/${version.name}`, spec.names.kind);
    }
    await this.ensureRoot();
  }

  private async waitForKind(apiVersion: string, kind: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!(await this.discovery.find(apiVersion, kind))) {
      if (Date.now() > deadline) throw new ClusterError(`the ${kind} CRD did not become established`);
      await sleep(250);
    }
  }

  private async ensureRoot(): Promise<KustomizationObject> {
    const { name, namespace } = this.opts;
    const res = await this.client.raw({ method: "GET", path: ksPath(namespace, name) });
    if (res.code === 200) return KustomizationObject.parse(res.body);
    if (res.code !== 404) throw apiError(`Kustomization ${namespace}/${name}`, res.code, res.body);
    // Created with a plain create (an imperative write), so a definition of the
    // same object in git takes it over on the first apply without a conflict.
    await this.createIfAbsent(
      ksPath(namespace, name).replace(/\/[^/]+$/, ""),
      {
        apiVersion: KUSTOMIZATION_API_VERSION,
        kind: "Kustomization",
        metadata: { name, namespace, labels: { "app.kubernetes.io/managed-by": "shipmate" } },
        spec: {
          interval: `${Math.max(1, Math.round(this.opts.intervalMs / 1000))}s`,
          path: this.opts.path,
          prune: true,
          sourceRef: { kind: "GitRepository", name },
        },
      },
      `create Kustomization ${namespace}/${name}`,
    );
    return await this.client.call(
      { method: "GET", path: ksPath(namespace, name) },
      KustomizationObject,
      `Kustomization ${namespace}/${name}`,
    );
  }

  /** Creates an object that another replica may be creating at the same moment: AlreadyExists is success. */
  private async createIfAbsent(path: string, body: unknown, what: string): Promise<void> {
    const res = await this.client.raw({
      method: "POST",
      path,
      body,
      query: { fieldManager: "shipmate-agent" },
    });
    if (res.code === 409 || (res.code >= 200 && res.code < 300)) return;
    throw apiError(what, res.code, res.body);
  }

  private async listKustomizations(): Promise<Map<string, KustomizationObject>> {
    const list = await this.client.call(
      { method: "GET", path: `/apis/${KUSTOMIZATION_API_VERSION}/kustomizations` },
      KubeList,
      "list Kustomizations",
    );
    const out = new Map<string, KustomizationObject>();
    for (const item of list.items ?? []) {
      const parsed = KustomizationObject.safeParse({
        apiVersion: KUSTOMIZATION_API_VERSION,
        kind: "Kustomization",
        ...item,
      });
      if (parsed.success)
        out.set(`${parsed.data.metadata.namespace}/${parsed.data.metadata.name}`, parsed.data);
    }
    return out;
  }

  private rootKey(): string {
    return `${this.opts.namespace}/${this.opts.name}`;
  }

  /** A reconciler for one pass; `artifact` says which source's working copy renders restore. */
  private reconcilerFor(signal: AbortSignal, artifact?: Artifact): Reconciler {
    return new Reconciler({
      client: this.client,
      targets: this.targets,
      renderer: this.renderer,
      events: this.events,
      metrics: this.metrics,
      log: this.log,
      scratch: join(this.opts.workdir, "scratch"),
      cleanSource: () =>
        artifact?.source && artifact.source !== this.sources.rootKey
          ? this.sources.clean(artifact)
          : this.source.clean(),
      statusOf: async (namespace, name) => this.current.get(`${namespace}/${name}`)?.status,
      objectOf: (namespace, name) => this.current.get(`${namespace}/${name}`),
      sourceOf: (namespace, name) => {
        const ks = this.current.get(`${namespace}/${name}`);
        return ks && (this.sources.keyOf(ks) ?? this.sources.rootKey);
      },
      signal,
      healthPollMs: this.opts.healthPollMs,
      inventoryHashes: this.inventoryHashes,
      rememberedHashes: this.rememberedHashes,
      settle: async (targets) => {
        const releases = targets.filter((t) => t.kind === "HelmRelease" && t.group === HELM_GROUP);
        if (!releases.length) return;
        await this.sources.refresh();
        for (const r of releases) {
          if (signal.aborted) return;
          await this.helmReleases.reconcileNamed(r.namespace, r.name);
        }
      },
    });
  }

  private report(ks: KustomizationObject): KustomizationReport {
    const ready = ks.status?.conditions?.find((c) => c.type === "Ready");
    return {
      name: ks.metadata.name ?? "",
      namespace: ks.metadata.namespace ?? "",
      ready: ready?.status === "True",
      suspended: (ks.spec as { suspend?: boolean } | undefined)?.suspend === true,
      reason: ready?.reason ?? "",
      message: ready?.message ?? "",
      revision: ks.status?.lastAppliedRevision ?? "",
      inventory: ks.status?.inventory?.entries?.length ?? 0,
    };
  }

  /**
   * One pass: fetch when due, then reconcile every due Kustomization
   * (all of them with `force`). Returns what was reconciled.
   */
  async pass(signal: AbortSignal, force = false): Promise<PassSummary> {
    this.loopAlive = Date.now();
    const writesBefore = this.client.counts.writes;
    const reconciled: KustomizationReport[] = [];
    const now = Date.now();
    let forceRoot = force;
    this.current = await this.listKustomizations();
    for (const key of this.rememberedHashes.keys())
      if (!this.current.has(key)) this.rememberedHashes.delete(key);
    await this.sources.beginPass(force);
    // While the source is failing it is retried on every pass, so recovery is prompt; a
    // reconcile request on any Kustomization asks for the newest git as well.
    const hooked = this.syncRequested;
    this.syncRequested = false;
    if (
      force ||
      hooked ||
      this.sourceFailed ||
      !this.source.artifact ||
      now - this.lastFetch >= this.opts.intervalMs ||
      this.reconcileRequested() ||
      this.sources.rootRequested()
    ) {
      try {
        const refusal = await this.sources.rootRefusal();
        if (refusal) throw new ConfigError(refusal);
        const before = this.source.artifact?.revision;
        const checkout = await this.sources.rootCheckout(urlAuthHeader(this.opts.repo));
        const artifact = await this.source.fetch(this.sources.rootIgnore(), checkout?.options);
        this.rootExtras = checkout ? { conditions: checkout.conditions(), status: checkout.status } : {};
        this.lastFetch = Date.now();
        this.metrics.fetches.inc({ result: "success" });
        this.metrics.setRevision(artifact.revision);
        if (this.sourceFailed || before !== artifact.revision) forceRoot = true;
        this.sourceFailed = false;
      } catch (err) {
        this.lastFetch = Date.now();
        this.sourceFailed = true;
        this.metrics.fetches.inc({ result: "failure" });
        const message = describeError(err);
        this.log.warn({ repo: redact(this.opts.repo) }, message);
        if (!(err instanceof ConfigError))
          await this.sources.recordRoot(
            err instanceof SourceError
              ? { error: message, reason: err.reason, conditions: err.conditions }
              : { error: message },
          );
        // A failing source does not hide a failing Canary.
        await this.reportCanaries();
        const root = this.current.get(this.rootKey()) ?? (await this.ensureRoot());
        await this.reconcilerFor(signal).markFailed(
          root,
          "ArtifactFailed",
          `${message}; the cluster is left as last applied`,
          false,
        );
        return {
          revision: this.source.artifact?.revision,
          sourceError: message,
          reconciled: root ? [this.report(root)] : [],
          helmReleases: [],
          writes: this.client.counts.writes - writesBefore,
        };
      }
      await this.sources.recordRoot({ artifact: this.rootStatusArtifact() });
    }
    const artifact: Artifact = { ...(this.source.artifact as Artifact), source: this.sources.rootKey };
    // ExternalArtifacts are (re)built before anything renders from them.
    if (await this.generators.reconcileAll(signal)) await this.sources.refresh();
    const reconciler = this.reconcilerFor(signal, artifact);
    if (!this.current.has(this.rootKey())) this.current.set(this.rootKey(), await this.ensureRoot());

    const done = new Set<string>();
    let frontier = [this.rootKey()];
    let adopted = false;
    while (!signal.aborted) {
      if (!frontier.length) {
        // Kustomizations created outside git (`shipmate create kustomization`, `flux create`)
        // belong to no tree: they, and what they apply, are reconciled once the tree is done.
        if (adopted) break;
        adopted = true;
        frontier = [...this.current.values()].filter((ks) => standalone(ks, done)).map(keyOfObject);
        if (!frontier.length) break;
      }
      const batch = frontier
        .map((k) => this.current.get(k))
        .filter((k): k is KustomizationObject => k !== undefined);
      for (const k of frontier) done.add(k);
      const results = await this.runBatch(
        batch,
        artifact,
        reconciler,
        signal,
        force || (forceRoot && frontier[0] === this.rootKey()),
      );
      reconciled.push(...results);
      // Kustomization objects applied by this batch are the next level down.
      const next = new Set<string>();
      for (const ks of batch) {
        // What a Kustomization applied to a remote cluster is that cluster's business, not this agent's.
        if (ks.spec?.kubeConfig) continue;
        for (const e of ks.status?.inventory?.entries ?? []) {
          const ref = parseInventoryId(e.id, e.v);
          if (ref?.kind === "Kustomization" && ref.group === KUSTOMIZATION_GROUP) {
            const key = `${ref.namespace}/${ref.name}`;
            if (!done.has(key)) next.add(key);
          }
        }
      }
      if (next.size) {
        const fresh = await this.listKustomizations();
        for (const [k, v] of fresh) if (!done.has(k)) this.current.set(k, v);
        // The level just applied may have declared the sources (and ArtifactGenerators) the next one reads.
        await this.sources.refresh();
        if (await this.generators.reconcileAll(signal)) await this.sources.refresh();
      }
      frontier = [...next];
    }
    if (!signal.aborted) await this.reportCanaries();
    // HelmReleases after the Kustomizations that apply them: one applied in this pass is installed in it.
    let helmReleases: HelmReleaseReport[] = [];
    if (!signal.aborted) {
      await this.sources.refresh();
      try {
        helmReleases = await this.helmReleases.reconcileAll(signal, force);
      } catch (err) {
        this.log.error({}, `HelmReleases: ${describeError(err)}`);
      }
    }
    if (this.images && !signal.aborted) {
      try {
        await this.images.reconcileAll(force, async () => {
          await this.automation?.reconcileAll();
        });
      } catch (err) {
        this.log.error({}, `image reflection: ${describeError(err)}`);
      }
      try {
        await this.automation?.reconcileAll(force);
      } catch (err) {
        this.log.error({}, `image update automation: ${describeError(err)}`);
      }
    }
    if (this.receivers && !signal.aborted) {
      try {
        await this.receivers.reconcileAll();
      } catch (err) {
        this.log.error({}, `receivers: ${describeError(err)}`);
      }
    }
    if (!signal.aborted) {
      await this.sources.reconcileRest();
      // The fleet's GitRepository may have been declared by this very pass: record its artifact now,
      // not one pass later (which would make the next, unchanged pass write).
      if (this.source.artifact) await this.sources.recordRoot({ artifact: this.rootStatusArtifact() });
    }
    this.lastPassEnd = Date.now();
    return {
      revision: artifact.revision,
      sourceError: undefined,
      reconciled,
      helmReleases,
      writes: this.client.counts.writes - writesBefore,
    };
  }

  /**
   * Flagger Canaries the Kustomizations applied (./canaries.ts): one list per
   * namespace holding any, none when no inventory holds a Canary; a move to
   * Failed or Succeeded is one event on the Kustomization, with the revision
   * it applied (so commit-status Providers mark that commit). Never fails
   * the pass: an unreadable Canary kind is one log line.
   */
  private async reportCanaries(): Promise<void> {
    const owners = canariesByNamespace(
      [...this.current.values()]
        // What a Kustomization applied to a remote cluster is that cluster's business.
        .filter((ks) => !ks.spec?.kubeConfig)
        .map((ks) => ({ owner: ks, entries: ks.status?.inventory?.entries ?? [] })),
    );
    const seen = new Map<string, string>();
    let failed = false;
    for (const [namespace, names] of owners) {
      const path = `/apis/${CANARY_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/canaries`;
      let items: CanaryItem[] | undefined;
      let problem: string;
      try {
        const res = await this.client.raw({ method: "GET", path });
        const list = res.code === 200 ? CanaryList.safeParse(res.body) : undefined;
        items = list?.success ? list.data.items : undefined;
        problem =
          res.code === 404
            ? "the flagger.app Canary kind is not served (Flagger's CRDs are not installed)"
            : res.code === 403
              ? "the agent may not list canaries.flagger.app (deploy/agent/rbac.yaml)"
              : `GET ${path}: ${res.code === 200 ? "not a list of Canaries" : `HTTP ${res.code}`}`;
      } catch (err) {
        problem = describeError(err);
      }
      if (!items) {
        const why = `Canaries not reported: ${problem}`;
        if (why !== this.canaryProblem) this.log.warn({ namespace }, why);
        this.canaryProblem = why;
        failed = true;
        // What was known there stays known: a read that works again reports only what changed since.
        for (const name of names.keys()) {
          const before = this.canaryPhases.get(`${namespace}/${name}`);
          if (before !== undefined) seen.set(`${namespace}/${name}`, before);
        }
        continue;
      }
      for (const c of items) {
        const ks = names.get(c.metadata.name);
        if (!ks) continue;
        const key = `${namespace}/${c.metadata.name}`;
        const event = canaryTransition(
          { namespace, name: c.metadata.name },
          this.canaryPhases.get(key),
          c.status,
          this.startedAt,
        );
        seen.set(key, c.status?.phase ?? "");
        if (!event) continue;
        const revision = ks.status?.lastAppliedRevision;
        await this.events.emit(
          {
            apiVersion: ks.apiVersion,
            kind: "Kustomization",
            name: ks.metadata.name ?? "",
            namespace: ks.metadata.namespace ?? "",
            uid: ks.metadata.uid,
          },
          event.type,
          event.reason,
          event.message,
          revision ? { revision } : undefined,
        );
      }
    }
    this.canaryPhases = seen;
    if (!failed) this.canaryProblem = undefined;
  }

  /** The fleet checkout's artifact as its GitRepository's status records it. */
  private rootStatusArtifact(): Artifact {
    const root = this.source.artifact as Artifact;
    // Flux's own GitRepository CRD requires artifact.digest: a status without it is rejected.
    return {
      ...root,
      ...this.rootExtras,
      digest: root.digest ?? treeDigest(root.dir, root.commit ?? "HEAD"),
    };
  }

  /** Whether any Kustomization carries a `reconcile.fluxcd.io/requestedAt` not yet handled. */
  private reconcileRequested(): boolean {
    for (const ks of this.current.values()) {
      const at = ks.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
      if (at && at !== ks.status?.lastHandledReconcileAt) return true;
    }
    return false;
  }

  /** Reconciles the due members of one level, each after the members it depends on. */
  private async runBatch(
    batch: KustomizationObject[],
    artifact: Artifact,
    reconciler: Reconciler,
    signal: AbortSignal,
    force: boolean,
  ): Promise<KustomizationReport[]> {
    const items = batch.map((ks) => {
      const spec = KustomizationSpec.safeParse(ks.spec ?? {});
      const key: KsKey = { name: ks.metadata.name ?? "", namespace: ks.metadata.namespace ?? "" };
      return {
        ...key,
        ks,
        dependsOn: spec.success ? dependenciesOf(spec.data, key.namespace) : [],
        spec: spec.success ? spec.data : undefined,
      };
    });
    const inBatch = new Set(items.map((i) => keyOf(i)));
    // Only dependencies reconciled in this batch order the work; others are checked through their status.
    const { order, blocked } = orderByDependencies(
      items.map((i) => ({ ...i, dependsOn: i.dependsOn.filter((d) => inBatch.has(keyOf(d))) })),
    );
    const reports: KustomizationReport[] = [];
    for (const b of blocked) {
      await reconciler.markFailed(b.item.ks, "DependencyNotReady", b.reason, true);
      this.log.warn({ kustomization: keyOf(b.item) }, b.reason);
      reports.push(this.report(b.item.ks));
    }
    const running = new Map<string, Promise<void>>();
    const { acquire, release } = createLimiter(this.opts.concurrency);
    for (const item of order) {
      const key = keyOf(item);
      const deps = item.dependsOn
        .map((d) => running.get(keyOf(d)))
        .filter((p): p is Promise<void> => p !== undefined);
      running.set(
        key,
        (async () => {
          await Promise.all(deps);
          if (signal.aborted) return;
          const ks = item.ks;
          const suspended = item.spec?.suspend === true;
          this.metrics.suspended.set({ name: item.name, namespace: item.namespace }, suspended ? 1 : 0);
          if (suspended) return;
          const isRoot = key === this.rootKey();
          if (!isRoot && samePath(item.spec?.path, this.opts.path)) {
            // Two owners of the same objects would take them from each other on every pass.
            await reconciler.markFailed(
              ks,
              "InvalidPath",
              `path ${item.spec?.path} is the agent's root path; run the agent with --name ${item.name} --namespace ${item.namespace} to make this Kustomization the root`,
              true,
            );
            reports.push(this.report(ks));
            return;
          }
          const denied = this.opts.noCrossNamespaceRefs
            ? crossNamespaceRef(ks.spec, item.namespace)
            : undefined;
          if (denied) {
            // As Flux: the reference is refused before the source is looked at, and retrying will not help.
            await reconciler.markFailed(ks, "AccessDenied", denied, true);
            this.lastRun.set(key, { at: Date.now(), failed: true });
            reports.push(this.report(ks));
            return;
          }
          let source = artifact;
          let rec = reconciler;
          const resolving = isRoot ? undefined : this.sources.resolve(ks);
          if (resolving) {
            const resolved = await resolving;
            if (!resolved.ok) {
              await reconciler.markFailed(ks, resolved.reason, resolved.message, resolved.stalled);
              this.lastRun.set(key, { at: Date.now(), failed: true });
              reports.push(this.report(ks));
              return;
            }
            source = resolved.artifact;
            rec = this.reconcilerFor(signal, source);
          }
          const interval = isRoot
            ? this.opts.intervalMs
            : safeDuration(item.spec?.interval, this.opts.intervalMs);
          const last = this.lastRun.get(key);
          const why = force
            ? "forced"
            : dueReason({
                now: Date.now(),
                lastRun: last?.at,
                lastFailed: last?.failed ?? false,
                intervalMs: interval,
                retryIntervalMs: safeDuration(item.spec?.retryInterval, interval),
                revision: source.revision,
                status: ks.status,
                generation: ks.metadata.generation,
                requestedAt: ks.metadata.annotations?.[REQUESTED_AT_ANNOTATION],
              });
          if (!why) return;
          await acquire();
          let result: ReconcileResult | undefined;
          try {
            this.log.debug({ kustomization: key, why }, "reconciling");
            result = await rec.reconcile(ks, source, isRoot ? this.opts.path : undefined);
          } catch (err) {
            this.log.error({ kustomization: key }, describeError(err));
          } finally {
            release();
          }
          this.lastRun.set(key, { at: Date.now(), failed: !result?.ready });
          reports.push(this.report(ks));
        })(),
      );
    }
    await Promise.all(running.values());
    return reports;
  }

  /** Runs passes until `signal` aborts (continuous mode, leader only). */
  private async loop(signal: AbortSignal): Promise<void> {
    // A change or a reconcile request ends the wait at once (./watch.ts); the poll still finds everything.
    const watching = watchForWork(
      {
        client: this.client,
        paths: [
          `/apis/${KUSTOMIZATION_API_VERSION}/kustomizations`,
          `/apis/${HELM_API_VERSION}/helmreleases`,
          `/apis/${ARTIFACT_GENERATOR_API_VERSION}/artifactgenerators`,
          ...this.sources.collectionPaths(),
          ...(this.images
            ? [
                `/apis/${IMAGE_API_VERSION}/imagerepositories`,
                `/apis/${IMAGE_API_VERSION}/imagepolicies`,
                `/apis/${IMAGE_API_VERSION}/imageupdateautomations`,
              ]
            : []),
        ],
        wake: () => this.nudge(),
        onError: (path, message) => this.log.debug({ path }, `watch stopped: ${message}`),
      },
      signal,
    );
    while (!signal.aborted) {
      try {
        await this.pass(signal);
      } catch (err) {
        this.log.error({}, `reconcile pass failed: ${describeError(err)}`);
      }
      this.loopAlive = Date.now();
      if (this.syncRequested || this.nudged) {
        this.nudged = false;
        continue;
      }
      this.wake = new AbortController();
      await sleep(this.opts.pollMs, AbortSignal.any([signal, this.wake.signal]));
    }
    await watching;
  }

  /** Asks for a pass now, without a fetch (an object changed); one during a pass makes one more. */
  private nudge(): void {
    this.nudged = true;
    this.wake?.abort();
  }

  /**
   * Asks for a fetch and pass now (a push webhook): requests arriving while a
   * pass runs are coalesced into one more pass.
   */
  requestSync(): void {
    this.syncRequested = true;
    this.wake?.abort();
  }

  /**
   * Continuous mode. With leader election, waits for the lease and returns
   * when it is lost (the caller exits, as client-go controllers do).
   */
  async run(signal: AbortSignal, leaderElect: boolean): Promise<"stopped" | "lost-leadership"> {
    this.loopAlive = Date.now();
    await this.setup();
    if (!leaderElect) {
      await this.loop(signal);
      return "stopped";
    }
    const idle = setInterval(() => {
      this.loopAlive = Date.now();
    }, this.opts.pollMs);
    try {
      await this.elector.run(
        signal,
        async (leading) => {
          this.log.info({ identity: this.identity }, "acquired leader lease; reconciling");
          await this.loop(leading);
        },
        (leading) => this.metrics.leader.set(leading ? 1 : 0),
      );
    } finally {
      clearInterval(idle);
    }
    if (signal.aborted) {
      await this.elector.release();
      return "stopped";
    }
    return "lost-leadership";
  }

  /** One forced pass (`--once`): setup, fetch, reconcile everything, wait for health. */
  async once(): Promise<PassSummary> {
    await this.setup();
    const summary = await this.pass(new AbortController().signal, true);
    // The run's notifications leave before the process does (bounded: a dead provider cannot hold it).
    await this.notifications.settle(15_000);
    return summary;
  }

  close(): void {
    this.notifications.close();
    this.helm.close();
    this.targets.close();
    this.client.close();
    void this.images?.close();
  }

  get lastPassAt(): number {
    return this.lastPassEnd;
  }
}

const keyOfObject = (ks: KustomizationObject): string => `${ks.metadata.namespace}/${ks.metadata.name}`;

/**
 * A Kustomization no other Kustomization applied (no ownership label) and
 * that is no agent's root (roots the agent creates are labelled
 * managed-by shipmate; a root declared in git owns itself).
 */
function standalone(ks: KustomizationObject, done: Set<string>): boolean {
  const labels = ks.metadata.labels ?? {};
  return (
    !done.has(keyOfObject(ks)) &&
    !ks.metadata.deletionTimestamp &&
    labels[NAME_LABEL] === undefined &&
    labels["app.kubernetes.io/managed-by"] !== "shipmate"
  );
}

function samePath(a: string | undefined, b: string): boolean {
  const norm = (p: string) =>
    normalize(p)
      .replace(/^(\.\/)+/, "")
      .replace(/\/+$/, "") || ".";
  return a !== undefined && norm(a) === norm(b);
}

function safeDuration(text: string | undefined, fallback: number): number {
  if (!text) return fallback;
  try {
    return parseDuration(text);
  } catch {
    return fallback;
  }
}
