/**
 * Source objects other than the agent's own fleet repository — any kind in
 * ./sources/index.ts (GitRepository, OCIRepository, Bucket, ExternalArtifact…):
 * each is fetched by its kind's handler into a directory of its own, on its
 * own interval or when `reconcile.fluxcd.io/requestedAt` asks, and its
 * status (artifact revision and digest, Ready) is written where `flux get
 * sources` and `shipmate get sources` read it. Kustomizations whose
 * sourceRef names such an object render from its artifact; the fleet
 * repository itself stays the agent's `--repo`.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { describeError } from "../errors.ts";
import { apiError, type KubeClient } from "../kube/client.ts";
import { sourceRefOf } from "../kube/control.ts";
import { canonicalJson, REQUESTED_AT_ANNOTATION } from "../kube/objects.ts";
import {
  type Condition,
  GitRepositorySpec,
  KubeList,
  type KustomizationObject,
  type ObjectMeta,
  SecretObject,
} from "../kube/schema.ts";
import type { EventRecorder } from "./events.ts";
import { refusedFields, unsupportedMessage } from "./fields/support.ts";
import type { Artifact } from "./git-source.ts";
import { parseDuration, removeCondition, setCondition } from "./kustomization.ts";
import type { AgentMetrics } from "./metrics.ts";
import { checkoutFor, ROOT_GIT_REPOSITORY_FIELDS } from "./sources/git.ts";
import {
  type FetchContext,
  type Resolution,
  SourceError,
  type SourceFetcher,
  type SourceHandler,
  type SourceRef,
  type StatusCondition,
} from "./sources/handler.ts";
import { SOURCE_HANDLERS } from "./sources/index.ts";
import { failedConditions } from "./status.ts";

export { gitRefOf, urlWithSecret } from "./sources/git.ts";
export type { Resolution } from "./sources/handler.ts";

export function sourcePath(
  handler: Pick<SourceHandler, "apiVersion" | "plural">,
  namespace?: string,
  name?: string,
  status = false,
): string {
  const base = namespace
    ? `/apis/${handler.apiVersion}/namespaces/${encodeURIComponent(namespace)}/${handler.plural}`
    : `/apis/${handler.apiVersion}/${handler.plural}`;
  return name ? `${base}/${encodeURIComponent(name)}${status ? "/status" : ""}` : base;
}

export function gitRepositoryPath(namespace?: string, name?: string, status = false): string {
  return sourcePath(
    { apiVersion: "source.toolkit.fluxcd.io/v1", plural: "gitrepositories" },
    namespace,
    name,
    status,
  );
}

/** Where a source's files live: its handler's fetcher (and an ExternalArtifact's producer) work there. */
export function sourceWorkdir(workdir: string, kind: string, namespace: string, name: string): string {
  return join(workdir, "sources", kind.toLowerCase(), namespace, name);
}

/** `<Kind>/<namespace>/<name>`: sources of different kinds may share a name. */
export const sourceKey = (kind: string, namespace: string, name: string): string =>
  `${kind}/${namespace}/${name}`;

/** Why a source should be fetched now, or undefined when its last artifact still stands. */
export function sourceDue(i: {
  now: number;
  lastFetch: number | undefined;
  failed: boolean;
  intervalMs: number;
  retryMs: number;
  generation: number | undefined;
  observedGeneration: number | undefined;
  requestedAt: string | undefined;
  handledAt: string | undefined;
  suspended: boolean;
  force: boolean;
}): string | undefined {
  // A suspended source is still fetched once, so what depends on it has something to render.
  if (i.lastFetch === undefined) return "first fetch since start";
  if (i.suspended) return undefined;
  if (i.force) return "forced";
  if (i.generation !== undefined && i.generation !== i.observedGeneration) return "spec changed";
  if (i.requestedAt && i.requestedAt !== i.handledAt) return "reconcile requested";
  const wait = i.failed ? Math.min(i.retryMs, i.intervalMs) : i.intervalMs;
  if (i.now - i.lastFetch >= wait) return i.failed ? "retry after failure" : "interval elapsed";
  return undefined;
}

/** A source object as listed: the spec is checked by its handler when used. */
export interface SourceObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: SourceStatus;
}

/** The status fields every source-controller kind shares (source.toolkit.fluxcd.io/v1 `Artifact`). */
export interface SourceStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  artifact?: {
    revision: string;
    digest?: string;
    path?: string;
    url?: string;
    lastUpdateTime?: string;
    metadata?: Record<string, string>;
  } | null;
  lastHandledReconcileAt?: string;
  [k: string]: unknown;
}

interface Entry {
  fetcher: SourceFetcher<unknown>;
  /** What the fetcher was opened for (URL, ref, credentials' name); a change opens a new one. */
  signature: string;
  workdir: string;
  lastFetch: number | undefined;
  artifact: Artifact | undefined;
  error:
    | { reason: string; message: string; stalled: boolean; conditions?: readonly StatusCondition[] }
    | undefined;
  /** The revisions and digests of the sources this one is built from, when last fetched. */
  inputs: string | undefined;
}

export interface SourceManagerOptions {
  client: KubeClient;
  /** Each source's files live under `<workdir>/sources/<kind>/<namespace>/<name>`. */
  workdir: string;
  log: Logger;
  events: EventRecorder;
  metrics: AgentMetrics;
  /** The fleet repository's GitRepository object (the agent's --name/--namespace). */
  root: { name: string; namespace: string };
  /** How soon a failed fetch is retried (capped by the source's interval). */
  retryMs?: number;
  /** The kinds fetched; default every kind in ./sources/index.ts. */
  handlers?: ReadonlyMap<string, SourceHandler<unknown>>;
}

type Outcome =
  | { artifact: Artifact }
  | { reason: string; error: string; stalled?: boolean; conditions?: readonly StatusCondition[] };

export class SourceManager {
  readonly rootKey: string;
  private readonly opts: SourceManagerOptions;
  private readonly handlers: ReadonlyMap<string, SourceHandler<unknown>>;
  private objects = new Map<string, SourceObject>();
  private readonly entries = new Map<string, Entry>();
  /** Sources already looked at in this pass: each is fetched at most once per pass. */
  private pass = new Map<string, Promise<Resolution>>();
  private force = false;

  constructor(opts: SourceManagerOptions) {
    this.opts = opts;
    this.handlers = opts.handlers ?? SOURCE_HANDLERS;
    this.rootKey = sourceKey("GitRepository", opts.root.namespace, opts.root.name);
  }

  /** Starts a pass: source objects are listed afresh. */
  async beginPass(force: boolean): Promise<void> {
    this.pass = new Map();
    this.force = force;
    await this.refresh();
  }

  /** The collections of every source kind (what the agent watches for reconcile requests). */
  collectionPaths(): string[] {
    return [...this.handlers.values()].map((h) => sourcePath(h));
  }

  /** Lists source objects again (a Kustomization just applied may have added some). */
  async refresh(): Promise<void> {
    const objects = new Map<string, SourceObject>();
    for (const handler of this.handlers.values()) {
      const res = await this.opts.client.raw({ method: "GET", path: sourcePath(handler) });
      // Not served (CRD missing): no object of that kind can exist.
      if (res.code === 404) continue;
      if (res.code < 200 || res.code > 299) throw apiError(`list ${handler.plural}`, res.code, res.body);
      for (const item of KubeList.parse(res.body).items ?? []) {
        const obj = { ...item, apiVersion: handler.apiVersion, kind: handler.kind } as SourceObject;
        objects.set(sourceKey(handler.kind, obj.metadata.namespace ?? "", obj.metadata.name ?? ""), obj);
      }
    }
    this.objects = objects;
    for (const [key, entry] of this.entries) {
      if (objects.has(key)) continue;
      this.entries.delete(key);
      rmSync(entry.workdir, { recursive: true, force: true });
    }
  }

  /**
   * One source object as the API server just returned it (created or
   * updated by the agent itself): known at once, without listing every
   * source kind again as `refresh` does.
   */
  remember(kind: string, obj: SourceObject): boolean {
    const handler = [...this.handlers.values()].find((h) => h.kind === kind);
    if (!handler) return false;
    const item = { ...obj, apiVersion: handler.apiVersion, kind } as SourceObject;
    this.objects.set(sourceKey(kind, item.metadata.namespace ?? "", item.metadata.name ?? ""), item);
    return true;
  }

  /** Whether the fleet repository's own GitRepository carries a reconcile request not yet handled. */
  rootRequested(): boolean {
    const root = this.objects.get(this.rootKey);
    const at = root?.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    return Boolean(at && at !== root?.status?.lastHandledReconcileAt);
  }

  /** The `spec.ignore` of the fleet repository's own GitRepository, when the cluster has one. */
  rootIgnore(): string | undefined {
    const ignore = this.objects.get(this.rootKey)?.spec?.ignore;
    return typeof ignore === "string" ? ignore : undefined;
  }

  /**
   * The fleet repository's own GitRepository object is fetched from the
   * agent's flags, but a field on it the agent does not honour (an `ignore`,
   * a pinned commit) would change what Flux applies: the object is marked
   * Stalled and the message returned, so the pass applies nothing.
   */
  async rootRefusal(): Promise<string | undefined> {
    const obj = this.objects.get(this.rootKey);
    const handler = this.handlers.get("GitRepository");
    if (!obj || !handler) return undefined;
    const refused = refusedFields(obj.spec, ROOT_GIT_REPOSITORY_FIELDS);
    if (refused.length === 0) return undefined;
    const error = unsupportedMessage(handler.kind, refused, ROOT_GIT_REPOSITORY_FIELDS);
    await this.writeStatus(handler, obj, { reason: "UnsupportedField", error, stalled: true });
    return `${this.rootKey}: ${error}`;
  }

  /**
   * What the fleet's own GitRepository asks of the checkout (`sparseCheckout`,
   * `recurseSubmodules`, `verify` with its Secret's keys), for the agent's
   * fetch of --repo (submodules get the credentials of --repo's URL, when it
   * carries some); nothing when the cluster has no such object. Throws a
   * SourceError (VerificationError) when the keys cannot be read.
   */
  async rootCheckout(authHeader?: string): Promise<Awaited<ReturnType<typeof checkoutFor>> | undefined> {
    const obj = this.objects.get(this.rootKey);
    if (!obj) return undefined;
    const parsed = GitRepositorySpec.safeParse(obj.spec ?? {});
    if (!parsed.success) {
      // The rest of that spec is the flags' business, but a verification it asks for is never skipped.
      const spec = obj.spec ?? {};
      if (!spec.verify && !spec.sparseCheckout && !spec.recurseSubmodules) return undefined;
      const issue = parsed.error.issues[0];
      throw new SourceError(
        "InvalidSpec",
        `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}`,
        { stalled: true },
      );
    }
    const namespace = obj.metadata.namespace ?? "";
    return checkoutFor(parsed.data, (name) => this.secretData(namespace, name), authHeader);
  }

  /** Records a fetch of the fleet repository on its GitRepository object, when the cluster has one. */
  async recordRoot(
    outcome:
      | { artifact: Artifact }
      | { error: string; reason?: string; conditions?: readonly StatusCondition[] },
  ): Promise<void> {
    const obj = this.objects.get(this.rootKey);
    const handler = this.handlers.get("GitRepository");
    if (!obj || !handler) return;
    await this.writeStatus(
      handler,
      obj,
      "artifact" in outcome ? outcome : { ...outcome, reason: outcome.reason ?? "GitOperationFailed" },
    );
  }

  /**
   * The artifact a Kustomization renders from, or undefined when it reads
   * the fleet repository (no sourceRef, the fleet's own GitRepository, or a
   * source kind the reconciler reports as unsupported).
   */
  resolve(ks: Pick<KustomizationObject, "metadata" | "spec">): Promise<Resolution> | undefined {
    const ref = sourceRefOf(ks);
    if (!ref || this.handlers.get(ref.kind)?.holds !== "manifests") return undefined;
    if (sourceKey(ref.kind, ref.namespace, ref.name) === this.rootKey) return undefined;
    return this.resolveRef(ref);
  }

  /**
   * The artifact of any source object, fetched when due (at most once per pass).
   * `chain`: the sources being built that asked for it (a GitRepository's
   * includes); one that includes itself, however indirectly, is refused
   * rather than waited for.
   */
  resolveRef(ref: SourceRef, chain: readonly string[] = []): Promise<Resolution> {
    const key = sourceKey(ref.kind, ref.namespace, ref.name);
    if (chain.includes(key))
      return Promise.resolve({
        ok: false,
        reason: "ArtifactFailed",
        message: `Source '${key}' includes itself: ${[...chain, key].join(" -> ")}`,
        stalled: true,
      });
    let p = this.pass.get(key);
    if (!p) {
      p = this.reconcileSource(ref, key, chain);
      this.pass.set(key, p);
    }
    return p;
  }

  /** The `<Kind>/<namespace>/<name>` of the source a Kustomization reads, undefined without a sourceRef. */
  keyOf(ks: Pick<KustomizationObject, "metadata" | "spec">): string | undefined {
    const ref = sourceRefOf(ks);
    return ref ? sourceKey(ref.kind, ref.namespace, ref.name) : undefined;
  }

  /** Fetches every other due source, so sources nothing reads yet still report their status. */
  async reconcileRest(): Promise<void> {
    await this.refresh();
    for (const [key, obj] of this.objects) {
      if (key === this.rootKey || this.pass.has(key)) continue;
      await this.resolveRef({
        kind: obj.kind,
        namespace: obj.metadata.namespace ?? "",
        name: obj.metadata.name ?? "",
      });
    }
  }

  /** Restores a source's files (generated kustomization files are removed) before a render. */
  async clean(artifact: Artifact): Promise<void> {
    const entry = artifact.source ? this.entries.get(artifact.source) : undefined;
    await entry?.fetcher.clean();
  }

  private notReady(key: string, what: string, stalled = false): Resolution {
    return { ok: false, reason: "ArtifactFailed", message: `Source '${key}'${what}`, stalled };
  }

  private async reconcileSource(ref: SourceRef, key: string, chain: readonly string[]): Promise<Resolution> {
    const handler = this.handlers.get(ref.kind);
    const obj = this.objects.get(key);
    if (!handler || !obj) return this.notReady(key, " not found");
    const refused = refusedFields(obj.spec, handler.fields);
    if (refused.length > 0) {
      const error = unsupportedMessage(handler.kind, refused, handler.fields);
      await this.writeStatus(handler, obj, { reason: "UnsupportedField", error, stalled: true });
      return this.notReady(key, `: ${error}`, true);
    }
    const parsed = handler.parse(obj.spec ?? {});
    if ("invalid" in parsed) {
      await this.writeStatus(handler, obj, { reason: "InvalidSpec", error: parsed.invalid, stalled: true });
      return this.notReady(key, `: ${parsed.invalid}`, true);
    }
    const spec = parsed.spec;
    const workdir = sourceWorkdir(this.opts.workdir, ref.kind, ref.namespace, ref.name);
    const signature = canonicalJson(handler.signature(spec));
    let entry = this.entries.get(key);
    if (!entry || entry.signature !== signature) {
      entry = {
        fetcher: handler.open(workdir),
        signature,
        workdir,
        lastFetch: undefined,
        artifact: undefined,
        error: undefined,
        inputs: undefined,
      };
      this.entries.set(key, entry);
    }
    // Sources this one is built from come first; a change in any of them makes it due.
    const deps = handler.dependencies?.(spec, ref.namespace) ?? [];
    let inputs: string | undefined;
    if (deps.length) {
      const got = [];
      for (const d of deps) {
        const r = await this.resolveRef(d, [...chain, key]);
        got.push(r.ok ? [r.artifact.revision, r.artifact.digest ?? ""] : null);
      }
      inputs = canonicalJson(got);
    }
    const interval = handler.interval(spec);
    const why = sourceDue({
      now: Date.now(),
      lastFetch: entry.lastFetch,
      failed: entry.error !== undefined,
      intervalMs: interval ? parseDuration(interval) : 0,
      retryMs: this.opts.retryMs ?? 30_000,
      generation: obj.metadata.generation,
      observedGeneration: obj.status?.observedGeneration,
      requestedAt: obj.metadata.annotations?.[REQUESTED_AT_ANNOTATION],
      handledAt: obj.status?.lastHandledReconcileAt,
      suspended: handler.suspended(spec),
      force: this.force,
    });
    const inputsChanged =
      inputs !== undefined &&
      entry.lastFetch !== undefined &&
      inputs !== entry.inputs &&
      !handler.suspended(spec);
    const reason = why ?? (inputsChanged ? "included artifacts changed" : undefined);
    if (reason) {
      entry.inputs = inputs;
      await this.fetch(handler, key, obj, spec, entry, reason, [...chain, key]);
    }
    // A failed fetch keeps the last artifact in use, as source-controller keeps serving it.
    if (entry.artifact) return { ok: true, artifact: entry.artifact };
    return this.notReady(
      key,
      ` is not ready: ${entry.error?.message ?? "not fetched yet"}`,
      entry.error?.stalled,
    );
  }

  private context(obj: SourceObject, entry: Entry, chain: readonly string[]): FetchContext {
    const namespace = obj.metadata.namespace ?? "";
    return {
      namespace,
      name: obj.metadata.name ?? "",
      object: obj,
      previous: entry.artifact,
      log: this.opts.log,
      secret: (name) => this.secretData(namespace, name),
      resolve: (ref) => this.resolveRef(ref, chain),
      lookup: (ref) => this.objects.get(sourceKey(ref.kind, ref.namespace, ref.name)),
    };
  }

  private async fetch(
    handler: SourceHandler<unknown>,
    key: string,
    obj: SourceObject,
    spec: unknown,
    entry: Entry,
    why: string,
    chain: readonly string[],
  ): Promise<void> {
    // After a restart the revision last stored is the one in status: NewArtifact is for a new one only.
    const before = entry.artifact?.revision ?? obj.status?.artifact?.revision;
    try {
      this.opts.log.debug({ source: key, why }, "fetching");
      entry.artifact = { ...(await entry.fetcher.fetch(spec, this.context(obj, entry, chain))), source: key };
      entry.error = undefined;
      this.opts.metrics.fetches.inc({ result: "success" });
    } catch (err) {
      entry.error =
        err instanceof SourceError
          ? { reason: err.reason, message: err.message, stalled: err.stalled, conditions: err.conditions }
          : { reason: handler.failureReason, message: describeError(err), stalled: false };
      this.opts.metrics.fetches.inc({ result: "failure" });
      this.opts.log.warn({ source: key }, entry.error.message);
    }
    entry.lastFetch = Date.now();
    if (!handler.writesStatus) return;
    if (entry.artifact?.static && !entry.error) {
      await this.clearStatus(handler, obj);
      return;
    }
    const involved = {
      apiVersion: handler.apiVersion,
      kind: handler.kind,
      name: obj.metadata.name ?? "",
      namespace: obj.metadata.namespace ?? "",
      uid: obj.metadata.uid,
    };
    if (entry.error) {
      await this.writeStatus(handler, obj, {
        reason: entry.error.reason,
        error: entry.error.message,
        stalled: entry.error.stalled,
        ...(entry.error.conditions ? { conditions: entry.error.conditions } : {}),
      });
      await this.opts.events.emit(involved, "Warning", entry.error.reason, entry.error.message);
    } else if (entry.artifact) {
      await this.writeStatus(handler, obj, { artifact: entry.artifact });
      if (entry.artifact.revision !== before)
        await this.opts.events.emit(
          involved,
          "Normal",
          "NewArtifact",
          `stored artifact for revision '${entry.artifact.revision}'`,
        );
    }
  }

  private async secretData(ns: string, name: string): Promise<Record<string, string>> {
    const res = await this.opts.client.raw({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(name)}`,
    });
    if (res.code === 404) throw new Error(`secret ${ns}/${name} not found`);
    if (res.code !== 200) throw apiError(`secret ${ns}/${name}`, res.code, res.body);
    return SecretObject.parse(res.body).data ?? {};
  }

  /**
   * A static source (an OCI HelmRepository) keeps no status, as
   * source-controller empties it: whatever an earlier spec left is removed
   * once, then nothing is written.
   */
  private async clearStatus(handler: SourceHandler<unknown>, obj: SourceObject): Promise<void> {
    const keys = Object.keys(obj.status ?? {});
    if (keys.length === 0) return;
    const res = await this.opts.client.raw({
      method: "PATCH",
      path: sourcePath(handler, obj.metadata.namespace, obj.metadata.name, true),
      body: { status: Object.fromEntries(keys.map((k) => [k, null])) },
      contentType: "application/merge-patch+json",
    });
    if (res.code >= 200 && res.code <= 299) obj.status = {};
    else if (res.code !== 404)
      this.opts.log.warn(
        { source: sourceKey(handler.kind, obj.metadata.namespace ?? "", obj.metadata.name ?? "") },
        apiError(
          `status of ${handler.kind} ${obj.metadata.namespace}/${obj.metadata.name}`,
          res.code,
          res.body,
        ).message,
      );
  }

  /** Writes status only when it changes, so a steady source costs no write. */
  private async writeStatus(
    handler: SourceHandler<unknown>,
    obj: SourceObject,
    outcome: Outcome,
  ): Promise<void> {
    const now = new Date().toISOString();
    const prev: SourceStatus = obj.status ?? {};
    const generation = obj.metadata.generation;
    const g = generation === undefined ? {} : { observedGeneration: generation };
    const requestedAt = obj.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    const next: SourceStatus = {
      ...prev,
      ...g,
      ...(requestedAt ? { lastHandledReconcileAt: requestedAt } : {}),
    };
    let conditions = prev.conditions ?? [];
    // Conditions the handler owns: set as reported, gone when no longer reported (a
    // successful verification outlives a later failure of another kind, as in Flux).
    const owned = handler.conditionTypes ?? [];
    const reported = "artifact" in outcome ? (outcome.artifact.conditions ?? []) : (outcome.conditions ?? []);
    for (const type of owned) {
      if (reported.some((c) => c.type === type)) continue;
      const had = conditions.find((c) => c.type === type);
      if (had && ("artifact" in outcome || !(had.status === "True" && had.reason === "Succeeded")))
        conditions = removeCondition(conditions, type);
    }
    for (const c of reported) conditions = setCondition(conditions, { ...c, ...g }, now);
    if ("artifact" in outcome) {
      next.artifact = statusArtifact(handler.kind, obj, outcome.artifact, prev.artifact, now);
      for (const [k, v] of Object.entries(outcome.artifact.status ?? {})) {
        if (v !== null) next[k] = v;
        else if (k in prev) next[k] = null;
      }
      const message = `stored artifact for revision '${outcome.artifact.revision}'`;
      conditions = removeCondition(removeCondition(conditions, "Reconciling"), "Stalled");
      for (const type of ["Ready", "ArtifactInStorage"])
        conditions = setCondition(
          conditions,
          { type, status: "True", reason: "Succeeded", message, ...g },
          now,
        );
    } else {
      const failure = { reason: outcome.reason, message: outcome.error, stalled: outcome.stalled };
      conditions = failedConditions(conditions, failure, g, now);
    }
    next.conditions = conditions;
    if (canonicalJson(prev) === canonicalJson(next)) return;
    const res = await this.opts.client.raw({
      method: "PATCH",
      path: sourcePath(handler, obj.metadata.namespace, obj.metadata.name, true),
      body: { status: next },
      contentType: "application/merge-patch+json",
    });
    if (res.code === 404) return; // deleted while we fetched
    if (res.code < 200 || res.code > 299) {
      // Status is a report: a refused write is logged, and never stops what depends on the source.
      const err = apiError(
        `status of ${handler.kind} ${obj.metadata.namespace}/${obj.metadata.name}`,
        res.code,
        res.body,
      );
      this.opts.log.warn(
        { source: sourceKey(handler.kind, obj.metadata.namespace ?? "", obj.metadata.name ?? "") },
        err.message,
      );
      return;
    }
    obj.status = next;
  }
}

/**
 * Flux's `status.artifact` for a fetched artifact. `path` and `url` are
 * required by Flux's CRD schemas; the agent keeps a directory, not a
 * tarball, so `url` is that directory. An unchanged revision and digest
 * keep the previous record (and its `lastUpdateTime`), so a steady source
 * writes nothing.
 */
export function statusArtifact(
  kind: string,
  obj: { metadata: { namespace?: string; name?: string } },
  artifact: Artifact,
  prev: SourceStatus["artifact"],
  now: string,
): NonNullable<SourceStatus["artifact"]> {
  if (prev && prev.revision === artifact.revision && prev.digest === artifact.digest) return prev;
  const id = (artifact.digest ?? artifact.commit ?? artifact.revision).replace(/^[a-z0-9]+:/, "");
  return {
    path: `${kind.toLowerCase()}/${obj.metadata.namespace}/${obj.metadata.name}/${id}.tar.gz`,
    url: `file://${artifact.dir}`,
    revision: artifact.revision,
    ...(artifact.digest ? { digest: artifact.digest } : {}),
    lastUpdateTime: now,
    ...(artifact.metadata && Object.keys(artifact.metadata).length ? { metadata: artifact.metadata } : {}),
  };
}
