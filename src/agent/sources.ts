/**
 * GitRepository objects other than the agent's own fleet repository (an
 * application's repository with its `kustomize/` folder, a team's
 * repository): each is fetched into a working copy of its own (a branch, a
 * tag, or the newest tag in a semver range), on its own interval or when
 * `reconcile.fluxcd.io/requestedAt` asks, and its status (artifact revision,
 * Ready) is written where `flux get sources git` and `shipmate get sources
 * git` read it. Kustomizations whose sourceRef names such an object render
 * from its checkout; the fleet repository itself stays the agent's `--repo`.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { describeError, registerSecret } from "../errors.ts";
import { apiError, type KubeClient } from "./client.ts";
import type { EventRecorder } from "./events.ts";
import { parseDuration, removeCondition, setCondition } from "./kustomization.ts";
import type { AgentMetrics } from "./metrics.ts";
import { canonicalJson, REQUESTED_AT_ANNOTATION } from "./objects.ts";
import {
  GitRepositoryObject,
  GitRepositorySpec,
  type GitRepositoryStatus,
  KubeList,
  type KustomizationObject,
  SecretObject,
  SOURCE_API_VERSION,
} from "./schema.ts";
import { type Artifact, type GitRef, GitSource } from "./source.ts";

export function gitRepositoryPath(namespace?: string, name?: string, status = false): string {
  const base = namespace
    ? `/apis/${SOURCE_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/gitrepositories`
    : `/apis/${SOURCE_API_VERSION}/gitrepositories`;
  return name ? `${base}/${encodeURIComponent(name)}${status ? "/status" : ""}` : base;
}

export const sourceKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/** The source a Kustomization names, with Flux's defaulting (no namespace: the Kustomization's own). */
export function sourceRefOf(
  ks: Pick<KustomizationObject, "metadata" | "spec">,
): { kind: string; namespace: string; name: string } | undefined {
  const ref = (ks.spec as { sourceRef?: { kind?: unknown; name?: unknown; namespace?: unknown } } | undefined)
    ?.sourceRef;
  if (!ref || typeof ref.name !== "string" || typeof ref.kind !== "string") return undefined;
  const namespace =
    typeof ref.namespace === "string" && ref.namespace ? ref.namespace : ks.metadata.namespace;
  return { kind: ref.kind, name: ref.name, namespace: namespace ?? "" };
}

/**
 * The ref to check out, with source-controller's precedence (semver over
 * tag over branch) and its default (`master` when no ref is given).
 */
export function gitRefOf(spec: GitRepositorySpec): GitRef | { unsupported: string } {
  const ref = spec.ref;
  if (ref?.commit) return { unsupported: "spec.ref.commit is not supported by the shipmate agent" };
  if (ref?.name) return { unsupported: "spec.ref.name is not supported by the shipmate agent" };
  if (ref?.semver) return { semver: ref.semver };
  if (ref?.tag) return { tag: ref.tag };
  return { branch: ref?.branch ?? "master" };
}

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

/**
 * An https URL carrying the basic-auth pair of a Flux git Secret
 * (`username`/`password`); other Secret kinds are refused with the reason.
 */
export function urlWithSecret(url: string, data: Record<string, string>, secret: string): string {
  const decode = (k: string) =>
    data[k] === undefined ? undefined : Buffer.from(data[k], "base64").toString();
  const password = decode("password");
  if (password === undefined) {
    const has = Object.keys(data).sort().join(", ") || "no keys";
    throw new Error(
      `secret ${secret} has ${has}; the shipmate agent reads "username" and "password" (basic auth over https)`,
    );
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`secret ${secret}: basic auth needs an http(s) URL, got ${url}`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:")
    throw new Error(`secret ${secret}: basic auth needs an http(s) URL, got ${u.protocol}//`);
  registerSecret(password);
  u.username = decode("username") || "git";
  u.password = password;
  return u.toString();
}

export type Resolution =
  | { ok: true; artifact: Artifact }
  | { ok: false; reason: string; message: string; stalled: boolean };

interface Entry {
  source: GitSource;
  /** URL, ref and credentials the working copy was fetched with; a change starts a new GitSource. */
  signature: string;
  workdir: string;
  lastFetch: number | undefined;
  artifact: Artifact | undefined;
  error: string | undefined;
}

export interface SourceManagerOptions {
  client: KubeClient;
  /** Each source's working copy lives under `<workdir>/sources/<namespace>/<name>`. */
  workdir: string;
  log: Logger;
  events: EventRecorder;
  metrics: AgentMetrics;
  /** The fleet repository's GitRepository object (the agent's --name/--namespace). */
  root: { name: string; namespace: string };
  /** How soon a failed fetch is retried (capped by the source's interval). */
  retryMs?: number;
}

type Outcome = { artifact: Artifact } | { reason: string; error: string };

export class SourceManager {
  readonly rootKey: string;
  private readonly opts: SourceManagerOptions;
  private objects = new Map<string, GitRepositoryObject>();
  private readonly entries = new Map<string, Entry>();
  /** Sources already looked at in this pass: each is fetched at most once per pass. */
  private pass = new Map<string, Promise<Resolution>>();
  private force = false;

  constructor(opts: SourceManagerOptions) {
    this.opts = opts;
    this.rootKey = sourceKey(opts.root.namespace, opts.root.name);
  }

  /** Starts a pass: GitRepository objects are listed afresh. */
  async beginPass(force: boolean): Promise<void> {
    this.pass = new Map();
    this.force = force;
    await this.refresh();
  }

  /** Lists GitRepository objects again (a Kustomization just applied may have added some). */
  async refresh(): Promise<void> {
    const res = await this.opts.client.raw({ method: "GET", path: gitRepositoryPath() });
    // Not served (CRD missing): no GitRepository can exist.
    if (res.code === 404) {
      this.objects = new Map();
      return;
    }
    if (res.code < 200 || res.code > 299) throw apiError("list GitRepositories", res.code, res.body);
    const list = KubeList.parse(res.body);
    const objects = new Map<string, GitRepositoryObject>();
    for (const item of list.items ?? []) {
      const parsed = GitRepositoryObject.safeParse({
        apiVersion: SOURCE_API_VERSION,
        kind: "GitRepository",
        ...item,
      });
      if (parsed.success)
        objects.set(
          sourceKey(parsed.data.metadata.namespace ?? "", parsed.data.metadata.name ?? ""),
          parsed.data,
        );
    }
    this.objects = objects;
    for (const [key, entry] of this.entries) {
      if (objects.has(key)) continue;
      this.entries.delete(key);
      rmSync(entry.workdir, { recursive: true, force: true });
    }
  }

  /** Whether the fleet repository's own GitRepository carries a reconcile request not yet handled. */
  rootRequested(): boolean {
    const root = this.objects.get(this.rootKey);
    const at = root?.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    return Boolean(at && at !== root?.status?.lastHandledReconcileAt);
  }

  /** Records a fetch of the fleet repository on its GitRepository object, when the cluster has one. */
  async recordRoot(outcome: { artifact: Artifact } | { error: string }): Promise<void> {
    const obj = this.objects.get(this.rootKey);
    if (!obj) return;
    await this.writeStatus(
      obj,
      "artifact" in outcome ? outcome : { reason: "GitOperationFailed", ...outcome },
    );
  }

  /**
   * The artifact a Kustomization renders from, or undefined when it reads
   * the fleet repository (no sourceRef, the fleet's own GitRepository, or a
   * source kind the reconciler reports as unsupported).
   */
  resolve(ks: Pick<KustomizationObject, "metadata" | "spec">): Promise<Resolution> | undefined {
    const ref = sourceRefOf(ks);
    if (ref?.kind !== "GitRepository") return undefined;
    const key = sourceKey(ref.namespace, ref.name);
    if (key === this.rootKey) return undefined;
    return this.resolveKey(key);
  }

  /** The `<namespace>/<name>` of the GitRepository a Kustomization reads, undefined without a sourceRef. */
  keyOf(ks: Pick<KustomizationObject, "metadata" | "spec">): string | undefined {
    const ref = sourceRefOf(ks);
    return ref ? sourceKey(ref.namespace, ref.name) : undefined;
  }

  /** Fetches every other due GitRepository, so sources nothing reads yet still report their status. */
  async reconcileRest(): Promise<void> {
    await this.refresh();
    for (const key of this.objects.keys()) {
      if (key !== this.rootKey && !this.pass.has(key)) await this.resolveKey(key);
    }
  }

  /** Restores a source's working copy (generated kustomization files are removed) before a render. */
  async clean(artifact: Artifact): Promise<void> {
    const entry = artifact.source ? this.entries.get(artifact.source) : undefined;
    await entry?.source.clean();
  }

  private resolveKey(key: string): Promise<Resolution> {
    let p = this.pass.get(key);
    if (!p) {
      p = this.reconcileSource(key);
      this.pass.set(key, p);
    }
    return p;
  }

  private async reconcileSource(key: string): Promise<Resolution> {
    const obj = this.objects.get(key);
    if (!obj) {
      return {
        ok: false,
        reason: "ArtifactFailed",
        message: `Source 'GitRepository/${key}' not found`,
        stalled: false,
      };
    }
    const parsed = GitRepositorySpec.safeParse(obj.spec ?? {});
    const ref = parsed.success ? gitRefOf(parsed.data) : undefined;
    if (!parsed.success || !ref || "unsupported" in ref) {
      const issue = parsed.success ? undefined : parsed.error.issues[0];
      const message =
        ref && "unsupported" in ref
          ? ref.unsupported
          : `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}`;
      await this.writeStatus(obj, { reason: "InvalidSpec", error: message });
      return {
        ok: false,
        reason: "ArtifactFailed",
        message: `Source 'GitRepository/${key}': ${message}`,
        stalled: false,
      };
    }
    const spec = parsed.data;
    const [namespace = "", name = ""] = key.split("/");
    const workdir = join(this.opts.workdir, "sources", namespace, name);
    const signature = canonicalJson({ url: spec.url, ref, secret: spec.secretRef?.name ?? null });
    let entry = this.entries.get(key);
    if (!entry || entry.signature !== signature) {
      entry = {
        source: new GitSource({ url: spec.url, branch: "", ref, workdir }),
        signature,
        workdir,
        lastFetch: undefined,
        artifact: undefined,
        error: undefined,
      };
      this.entries.set(key, entry);
    }
    const requestedAt = obj.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    const interval = parseDuration(spec.interval);
    const why = sourceDue({
      now: Date.now(),
      lastFetch: entry.lastFetch,
      failed: entry.error !== undefined,
      intervalMs: interval,
      retryMs: this.opts.retryMs ?? 30_000,
      generation: obj.metadata.generation,
      observedGeneration: obj.status?.observedGeneration,
      requestedAt,
      handledAt: obj.status?.lastHandledReconcileAt,
      suspended: spec.suspend === true,
      force: this.force,
    });
    if (why) await this.fetch(key, obj, spec, entry, why);
    // A failed fetch keeps the last artifact in use, as source-controller keeps serving it.
    if (entry.artifact) return { ok: true, artifact: entry.artifact };
    return {
      ok: false,
      reason: "ArtifactFailed",
      message: `Source 'GitRepository/${key}' is not ready: ${entry.error ?? "not fetched yet"}`,
      stalled: false,
    };
  }

  private async fetch(
    key: string,
    obj: GitRepositoryObject,
    spec: GitRepositorySpec,
    entry: Entry,
    why: string,
  ): Promise<void> {
    const before = entry.artifact?.revision;
    let reason = "GitOperationFailed";
    try {
      let url = spec.url;
      if (spec.secretRef) {
        reason = "AuthenticationFailed";
        url = urlWithSecret(url, await this.secretData(obj, spec.secretRef.name), spec.secretRef.name);
        reason = "GitOperationFailed";
      }
      if (url !== entry.source.url)
        entry.source = new GitSource({ url, branch: "", ref: entry.source.ref, workdir: entry.workdir });
      this.opts.log.debug({ source: key, why }, "fetching");
      entry.artifact = { ...(await entry.source.fetch()), source: key };
      entry.error = undefined;
      this.opts.metrics.fetches.inc({ result: "success" });
    } catch (err) {
      entry.error = describeError(err);
      this.opts.metrics.fetches.inc({ result: "failure" });
      this.opts.log.warn({ source: key }, entry.error);
    }
    entry.lastFetch = Date.now();
    const involved = {
      apiVersion: SOURCE_API_VERSION,
      kind: "GitRepository",
      name: obj.metadata.name ?? "",
      namespace: obj.metadata.namespace ?? "",
      uid: obj.metadata.uid,
    };
    if (entry.error) {
      await this.writeStatus(obj, { reason, error: entry.error });
      await this.opts.events.emit(involved, "Warning", reason, entry.error);
    } else if (entry.artifact) {
      await this.writeStatus(obj, { artifact: entry.artifact });
      if (entry.artifact.revision !== before)
        await this.opts.events.emit(
          involved,
          "Normal",
          "NewArtifact",
          `stored artifact for revision '${entry.artifact.revision}'`,
        );
    }
  }

  private async secretData(obj: GitRepositoryObject, name: string): Promise<Record<string, string>> {
    const ns = obj.metadata.namespace ?? "";
    const res = await this.opts.client.raw({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(name)}`,
    });
    if (res.code === 404) throw new Error(`secret ${ns}/${name} not found`);
    if (res.code !== 200) throw apiError(`secret ${ns}/${name}`, res.code, res.body);
    return SecretObject.parse(res.body).data ?? {};
  }

  /** Writes status only when it changes, so a steady source costs no write. */
  private async writeStatus(obj: GitRepositoryObject, outcome: Outcome): Promise<void> {
    const now = new Date().toISOString();
    const prev: GitRepositoryStatus = obj.status ?? {};
    const generation = obj.metadata.generation;
    const g = generation === undefined ? {} : { observedGeneration: generation };
    const requestedAt = obj.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    const next: GitRepositoryStatus = {
      ...prev,
      ...g,
      ...(requestedAt ? { lastHandledReconcileAt: requestedAt } : {}),
    };
    let conditions = prev.conditions ?? [];
    if ("artifact" in outcome) {
      const { revision } = outcome.artifact;
      const message = `stored artifact for revision '${revision}'`;
      // path and url are required by Flux's own CRD schema; the agent keeps a checkout, not a tarball.
      next.artifact =
        prev.artifact?.revision === revision
          ? prev.artifact
          : {
              path: `gitrepository/${obj.metadata.namespace}/${obj.metadata.name}/${outcome.artifact.commit}`,
              url: `file://${outcome.artifact.dir}`,
              revision,
              lastUpdateTime: now,
            };
      conditions = removeCondition(removeCondition(conditions, "Reconciling"), "Stalled");
      conditions = setCondition(
        conditions,
        { type: "Ready", status: "True", reason: "Succeeded", message, ...g },
        now,
      );
      conditions = setCondition(
        conditions,
        { type: "ArtifactInStorage", status: "True", reason: "Succeeded", message, ...g },
        now,
      );
    } else {
      conditions = setCondition(
        conditions,
        { type: "Ready", status: "False", reason: outcome.reason, message: outcome.error, ...g },
        now,
      );
    }
    next.conditions = conditions;
    if (canonicalJson(prev) === canonicalJson(next)) return;
    const res = await this.opts.client.raw({
      method: "PATCH",
      path: gitRepositoryPath(obj.metadata.namespace, obj.metadata.name, true),
      body: { status: next },
      contentType: "application/merge-patch+json",
    });
    if (res.code === 404) return; // deleted while we fetched
    if (res.code < 200 || res.code > 299) {
      // Status is a report: a refused write is logged, and never stops what depends on the source.
      const err = apiError(
        `status of GitRepository ${obj.metadata.namespace}/${obj.metadata.name}`,
        res.code,
        res.body,
      );
      this.opts.log.warn(
        { source: sourceKey(obj.metadata.namespace ?? "", obj.metadata.name ?? "") },
        err.message,
      );
      return;
    }
    obj.status = next;
  }
}
