/**
 * ArtifactGenerator (source.extensions.fluxcd.io/v1beta1), as Flux's
 * source-watcher reconciles it: resolve each input source by alias, and
 * when the inputs (or the spec) changed, build each output artifact with the
 * copy engine (./artifacts/) into the directory the ExternalArtifact handler
 * serves, then make the ExternalArtifact object named after the artifact
 * exist, with its status artifact (revision, digest) and Ready condition.
 * Kustomizations with `sourceRef.kind: ExternalArtifact` render from it.
 *
 * An unchanged generator costs no write: its status records the digest of
 * its inputs (`observedSourcesDigest`), and every object and status is
 * written only when it differs from what the cluster holds. The local
 * build is redone after a restart (the tree lives in the agent's workdir),
 * deterministically, so it agrees with the status already there.
 */
import { createHash } from "node:crypto";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import { describeError } from "../errors.ts";
import { apiError, type KubeClient } from "../kube/client.ts";
import { canonicalJson, REQUESTED_AT_ANNOTATION } from "../kube/objects.ts";
import { type Condition, KubeList, type ObjectMeta, SOURCE_API_VERSION } from "../kube/schema.ts";
import { buildArtifact } from "./artifacts/build.ts";
import type { EventRecorder } from "./events.ts";
import { ARTIFACT_GENERATOR_FIELDS } from "./fields/artifactgenerator.ts";
import { refusedFields, unsupportedMessage } from "./fields/support.ts";
import type { Artifact } from "./git-source.ts";
import { ARTIFACT_GENERATOR_GROUP } from "./kinds.ts";
import { removeCondition, setCondition } from "./kustomization.ts";
import {
  type Resolution,
  type SourceStatus,
  sourcePath,
  sourceWorkdir,
  statusArtifact,
} from "./source-objects.ts";
import { MANIFEST_FILE, readManifest, TREE_DIR } from "./sources/external.ts";
import type { SourceRef } from "./sources/handler.ts";
import { isSourceKind, SOURCE_HANDLERS } from "./sources/index.ts";

export const ARTIFACT_GENERATOR_API_VERSION = `${ARTIFACT_GENERATOR_GROUP}/v1beta1`;
/** Flux's label on generated ExternalArtifacts: the generator's uid. */
export const GENERATOR_LABEL = "source.extensions.fluxcd.io/generator";
/** Flux's annotation switching a generator off (`disabled`). */
const RECONCILE_ANNOTATION = "source.extensions.fluxcd.io/reconcile";
const ORIGIN_REVISION = "org.opencontainers.image.revision";
const FIELD_MANAGER = "shipmate-agent";

const ALIAS = /^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$/;
const AT_ALIAS = /^@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)$/;

/** v1beta1 ArtifactGeneratorSpec (source-watcher api/v2 v2.2.4), the fields the agent honours. */
export const ArtifactGeneratorSpec = z.looseObject({
  commonMetadata: z
    .looseObject({
      annotations: z.record(z.string(), z.string()).optional(),
      labels: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  sources: z
    .array(
      z.looseObject({
        alias: z.string().regex(ALIAS, "lower case alphanumerics, '_' and '-'"),
        kind: z.enum(["Bucket", "GitRepository", "OCIRepository", "HelmChart", "ExternalArtifact"]),
        name: z.string().min(1),
        namespace: z.string().optional(),
      }),
    )
    .min(1),
  artifacts: z
    .array(
      z.looseObject({
        name: z.string().min(1).max(253),
        revision: z.string().regex(AT_ALIAS, "'@<alias>'").optional(),
        originRevision: z.string().regex(AT_ALIAS, "'@<alias>'").optional(),
        copy: z
          .array(
            z.looseObject({
              from: z.string().min(1),
              to: z.string().min(1),
              exclude: z.array(z.string()).optional(),
              strategy: z.string().optional(),
            }),
          )
          .min(1),
      }),
    )
    .min(1),
});
export type ArtifactGeneratorSpec = z.infer<typeof ArtifactGeneratorSpec>;

interface GeneratorObject {
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: GeneratorStatus;
}

interface InventoryRef {
  name: string;
  namespace: string;
  digest: string;
  filename: string;
}

interface GeneratorStatus {
  conditions?: Condition[];
  inventory?: InventoryRef[];
  observedSourcesDigest?: string;
  lastHandledReconcileAt?: string;
  [k: string]: unknown;
}

/** The checks Flux's validation does before anything is fetched; the first problem, or undefined. */
export function validateGenerator(spec: ArtifactGeneratorSpec): string | undefined {
  const aliases = new Set<string>();
  for (const s of spec.sources) {
    if (aliases.has(s.alias)) return `duplicate source alias '${s.alias}'`;
    aliases.add(s.alias);
  }
  const names = new Set<string>();
  for (const a of spec.artifacts) {
    if (names.has(a.name)) return `duplicate artifact name '${a.name}'`;
    names.add(a.name);
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(a.name))
      return `artifact name '${a.name}' is not a valid Kubernetes object name`;
    for (const ref of [a.revision, a.originRevision])
      if (ref && !aliases.has(ref.slice(1)))
        return `artifact '${a.name}' refers to unknown source alias '${ref}'`;
    for (const c of a.copy) {
      const alias = /^@([^/]+)\//.exec(c.from)?.[1];
      if (!alias) return `artifact '${a.name}': copy from '${c.from}' must be '@<alias>/<pattern>'`;
      if (!aliases.has(alias))
        return `artifact '${a.name}': copy from '${c.from}' refers to unknown source alias '@${alias}'`;
      if (!c.to.startsWith("@artifact/"))
        return `artifact '${a.name}': copy to '${c.to}' must start with '@artifact/'`;
    }
  }
  return undefined;
}

/** Flux's HashObservedSources: sha256 over sorted `alias=[digest=…,revision=…,url=…]` parts. */
export function observedSourcesDigest(sources: ReadonlyMap<string, Artifact>): string {
  const parts = [...sources].map(
    ([alias, a]) => `${alias}=[digest=${a.digest ?? ""},revision=${a.revision},url=${a.source ?? ""}]`,
  );
  parts.sort();
  return `sha256:${createHash("sha256").update(parts.join("|")).digest("hex")}`;
}

/**
 * Generators ordered so that one reading another's ExternalArtifact comes
 * after it: in one pass the consumer then sees the artifact just built,
 * instead of failing until the next pass. Cycles keep the listed order.
 */
export function producersFirst<G extends { metadata: ObjectMeta; spec?: Record<string, unknown> }>(
  items: readonly G[],
): G[] {
  const producer = new Map<string, G>();
  for (const g of items) {
    const artifacts = (g.spec?.artifacts ?? []) as { name?: unknown }[];
    for (const a of Array.isArray(artifacts) ? artifacts : [])
      if (typeof a.name === "string") producer.set(`${g.metadata.namespace}/${a.name}`, g);
  }
  const out: G[] = [];
  const state = new Map<G, "visiting" | "done">();
  const visit = (g: G) => {
    if (state.get(g)) return;
    state.set(g, "visiting");
    const sources = (g.spec?.sources ?? []) as { kind?: unknown; name?: unknown; namespace?: unknown }[];
    for (const s of Array.isArray(sources) ? sources : []) {
      if (s.kind !== "ExternalArtifact" || typeof s.name !== "string") continue;
      const ns = typeof s.namespace === "string" && s.namespace ? s.namespace : g.metadata.namespace;
      const p = producer.get(`${ns}/${s.name}`);
      if (p && p !== g) visit(p);
    }
    state.set(g, "done");
    out.push(g);
  };
  for (const g of items) visit(g);
  return out;
}

export interface GeneratorManagerOptions {
  client: KubeClient;
  workdir: string;
  log: Logger;
  events: EventRecorder;
  /** The artifact of an input source, fetched when due (the SourceManager's, at most once per pass). */
  resolve(ref: SourceRef): Promise<Resolution>;
  /** Restores an input's files (a render may have written a kustomization.yaml) before they are copied. */
  clean(artifact: Artifact): Promise<void>;
}

type Failure = { reason: string; message: string; stalled: boolean };

export class GeneratorManager {
  private readonly opts: GeneratorManagerOptions;

  constructor(opts: GeneratorManagerOptions) {
    this.opts = opts;
  }

  private path(namespace?: string, name?: string, status = false): string {
    return sourcePath(
      { apiVersion: ARTIFACT_GENERATOR_API_VERSION, plural: "artifactgenerators" },
      namespace,
      name,
      status,
    );
  }

  /** Reconciles every ArtifactGenerator in the cluster; returns how many it looked at. */
  async reconcileAll(signal?: AbortSignal): Promise<number> {
    const res = await this.opts.client.raw({ method: "GET", path: this.path() });
    if (res.code === 404) return 0; // kind not served: no generator can exist
    if (res.code !== 200) throw apiError("list artifactgenerators", res.code, res.body);
    const items = producersFirst((KubeList.parse(res.body).items ?? []) as GeneratorObject[]);
    for (const g of items) {
      if (signal?.aborted) break;
      if (g.metadata.deletionTimestamp) continue;
      try {
        await this.reconcile(g);
      } catch (err) {
        this.opts.log.warn(
          { artifactGenerator: `${g.metadata.namespace}/${g.metadata.name}` },
          describeError(err),
        );
      }
    }
    await this.collectOrphans(new Set(items.map((g) => g.metadata.uid ?? "")));
    return items.length;
  }

  private involved(g: GeneratorObject) {
    return {
      apiVersion: ARTIFACT_GENERATOR_API_VERSION,
      kind: "ArtifactGenerator",
      name: g.metadata.name ?? "",
      namespace: g.metadata.namespace ?? "",
      uid: g.metadata.uid,
    };
  }

  private async fail(g: GeneratorObject, f: Failure): Promise<void> {
    await this.writeStatus(g, { ...g.status }, f);
    await this.opts.events.emit(this.involved(g), "Warning", f.reason, f.message);
    this.opts.log.warn({ artifactGenerator: `${g.metadata.namespace}/${g.metadata.name}` }, f.message);
  }

  private async reconcile(g: GeneratorObject): Promise<void> {
    const ns = g.metadata.namespace ?? "";
    if (g.metadata.annotations?.[RECONCILE_ANNOTATION]?.toLowerCase() === "disabled") return;
    const refused = refusedFields(g.spec, ARTIFACT_GENERATOR_FIELDS);
    if (refused.length)
      return await this.fail(g, {
        reason: "UnsupportedField",
        message: unsupportedMessage("ArtifactGenerator", refused, ARTIFACT_GENERATOR_FIELDS),
        stalled: true,
      });
    const parsed = ArtifactGeneratorSpec.safeParse(g.spec ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return await this.fail(g, {
        reason: "InvalidSpec",
        message: `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}`,
        stalled: true,
      });
    }
    const spec = parsed.data;
    const invalid = validateGenerator(spec);
    if (invalid) return await this.fail(g, { reason: "ValidationFailed", message: invalid, stalled: true });

    const unfetched = spec.sources.filter((s) => !isSourceKind(s.kind));
    if (unfetched.length)
      return await this.fail(g, {
        reason: "UnsupportedSource",
        message: `source kind ${unfetched.map((s) => `${s.kind} (alias '${s.alias}')`).join(", ")} is not fetched by the shipmate agent (supported: ${[...SOURCE_HANDLERS.keys()].join(", ")})`,
        stalled: true,
      });
    const inputs = new Map<string, Artifact>();
    for (const s of spec.sources) {
      const ref = { kind: s.kind, name: s.name, namespace: s.namespace || ns };
      const got = await this.opts.resolve(ref);
      if (!got.ok)
        return await this.fail(g, {
          reason: "SourceFetchFailed",
          message: `fetch sources failed: source '${s.kind}/${ref.namespace}/${s.name}' is not ready: ${got.message}`,
          stalled: false,
        });
      inputs.set(s.alias, got.artifact);
    }
    const digest = observedSourcesDigest(inputs);
    const status = g.status ?? {};
    const ready = status.conditions?.find((c) => c.type === "Ready");
    // Rebuilt only when the inputs or the spec changed, or this agent has no copy of an output yet.
    const upToDate =
      status.observedSourcesDigest === digest &&
      ready?.status === "True" &&
      ready.observedGeneration === g.metadata.generation &&
      spec.artifacts.every((a) => {
        const built = readManifest(sourceWorkdir(this.opts.workdir, "ExternalArtifact", ns, a.name));
        return built && status.inventory?.some((r) => r.name === a.name && r.digest === built.digest);
      });
    // Drift: an ExternalArtifact deleted or changed behind the generator's back is rebuilt (reads only).
    if (upToDate && (await this.outputsInPlace(ns, status.inventory ?? []))) {
      await this.writeStatus(g, { ...status }, undefined);
      return;
    }

    for (const input of inputs.values()) await this.opts.clean(input);
    const inventory: InventoryRef[] = [];
    for (const a of spec.artifacts) {
      const dir = sourceWorkdir(this.opts.workdir, "ExternalArtifact", ns, a.name);
      let built: { digest: string; files: string[] };
      // The manifest says which tree is whole: it goes before the tree changes and comes back after.
      rmSync(join(dir, MANIFEST_FILE), { force: true });
      try {
        built = buildArtifact(
          new Map([...inputs].map(([alias, art]) => [alias, art.dir])),
          a.copy,
          join(dir, TREE_DIR),
        );
      } catch (err) {
        return await this.fail(g, {
          reason: "BuildFailed",
          message: `${a.name} build failed: ${describeError(err)}`,
          stalled: false,
        });
      }
      const manifestTmp = join(dir, `.${MANIFEST_FILE}.tmp-${process.pid}`);
      writeFileSync(manifestTmp, JSON.stringify(built));
      renameSync(manifestTmp, join(dir, MANIFEST_FILE));
      const fromAlias = (ref: string | undefined) => (ref ? inputs.get(ref.slice(1)) : undefined);
      const revisionSource = fromAlias(a.revision);
      const origin = fromAlias(a.originRevision);
      const artifact: Artifact = {
        revision: revisionSource?.revision ?? `latest@${built.digest}`,
        digest: built.digest,
        dir: join(dir, TREE_DIR),
        ...(origin
          ? { metadata: { [ORIGIN_REVISION]: origin.metadata?.[ORIGIN_REVISION] ?? origin.revision } }
          : {}),
      };
      try {
        await this.ensureExternalArtifact(g, spec, a.name, artifact);
      } catch (err) {
        return await this.fail(g, {
          reason: "ReconciliationFailed",
          message: `${a.name} reconcile failed: ${describeError(err)}`,
          stalled: false,
        });
      }
      inventory.push({
        name: a.name,
        namespace: ns,
        digest: built.digest,
        filename: `${built.digest.replace(/^sha256:/, "")}.tar.gz`,
      });
    }

    const previous = status.inventory ?? [];
    for (const old of previous)
      if (!inventory.some((r) => r.name === old.name && r.namespace === old.namespace))
        await this.deleteExternalArtifact(old.namespace, old.name);
    const changed = inventory.filter(
      (r) => !previous.some((p) => p.name === r.name && p.namespace === r.namespace && p.digest === r.digest),
    );
    await this.writeStatus(g, { ...status, inventory, observedSourcesDigest: digest }, undefined);
    if (changed.length)
      await this.opts.events.emit(
        this.involved(g),
        "Normal",
        "Ready",
        `external artifacts reconciled: ${changed.map((r) => `${r.namespace}/${r.name} (${r.digest})`).join("\n")}`,
      );
  }

  /** Whether every inventoried ExternalArtifact exists with the digest the generator recorded. */
  private async outputsInPlace(namespace: string, inventory: readonly InventoryRef[]): Promise<boolean> {
    for (const ref of inventory) {
      const res = await this.opts.client.raw({
        method: "GET",
        path: sourcePath(
          { apiVersion: SOURCE_API_VERSION, plural: "externalartifacts" },
          ref.namespace || namespace,
          ref.name,
        ),
      });
      const digest = (res.body as { status?: SourceStatus } | undefined)?.status?.artifact?.digest;
      if (res.code !== 200 || digest !== ref.digest) return false;
    }
    return true;
  }

  /** The ExternalArtifact object and its status, each written only when it differs. */
  private async ensureExternalArtifact(
    g: GeneratorObject,
    spec: ArtifactGeneratorSpec,
    name: string,
    artifact: Artifact,
  ): Promise<void> {
    const ns = g.metadata.namespace ?? "";
    const handler = { apiVersion: SOURCE_API_VERSION, plural: "externalartifacts" };
    const labels = {
      ...spec.commonMetadata?.labels,
      "app.kubernetes.io/managed-by": FIELD_MANAGER,
      [GENERATOR_LABEL]: g.metadata.uid ?? "",
    };
    const annotations = spec.commonMetadata?.annotations;
    const desired = {
      apiVersion: SOURCE_API_VERSION,
      kind: "ExternalArtifact",
      metadata: {
        name,
        namespace: ns,
        labels,
        ...(annotations && Object.keys(annotations).length ? { annotations } : {}),
      },
      spec: {
        sourceRef: {
          apiVersion: ARTIFACT_GENERATOR_API_VERSION,
          kind: "ArtifactGenerator",
          name: g.metadata.name ?? "",
          namespace: ns,
        },
      },
    };
    const path = sourcePath(handler, ns, name);
    const got = await this.opts.client.raw({ method: "GET", path });
    if (got.code !== 200 && got.code !== 404)
      throw apiError(`ExternalArtifact ${ns}/${name}`, got.code, got.body);
    let live =
      got.code === 200
        ? (got.body as { metadata: ObjectMeta; spec?: unknown; status?: SourceStatus })
        : undefined;
    const sameMeta = (want: Record<string, string> | undefined, have: Record<string, string> | undefined) =>
      Object.entries(want ?? {}).every(([k, v]) => have?.[k] === v);
    if (
      !live ||
      canonicalJson(live.spec) !== canonicalJson(desired.spec) ||
      !sameMeta(labels, live.metadata.labels) ||
      !sameMeta(annotations, live.metadata.annotations)
    ) {
      const res = await this.opts.client.raw({
        method: "PATCH",
        path,
        body: desired,
        contentType: "application/apply-patch+yaml",
        query: { fieldManager: FIELD_MANAGER, force: "true" },
      });
      if (res.code < 200 || res.code > 299)
        throw apiError(`apply ExternalArtifact ${ns}/${name}`, res.code, res.body);
      live = res.body as typeof live;
    }
    const prev: SourceStatus = live?.status ?? {};
    const now = new Date().toISOString();
    const generation = live?.metadata.generation;
    const next: SourceStatus = {
      ...prev,
      artifact: statusArtifact(
        "ExternalArtifact",
        { metadata: { namespace: ns, name } },
        artifact,
        prev.artifact,
        now,
      ),
      conditions: setCondition(
        prev.conditions ?? [],
        {
          type: "Ready",
          status: "True",
          reason: "Succeeded",
          message: "Artifact is ready",
          ...(generation === undefined ? {} : { observedGeneration: generation }),
        },
        now,
      ),
    };
    // The directory is this agent's own and differs between agents: `url` names the artifact, not a path.
    if (next.artifact)
      next.artifact = {
        ...next.artifact,
        url: `shipmate://externalartifact/${ns}/${name}/${next.artifact.path?.split("/").pop() ?? ""}`,
      };
    if (canonicalJson(prev) === canonicalJson(next)) return;
    const res = await this.opts.client.raw({
      method: "PATCH",
      path: sourcePath(handler, ns, name, true),
      body: { status: next },
      contentType: "application/merge-patch+json",
    });
    if (res.code < 200 || res.code > 299)
      throw apiError(`status of ExternalArtifact ${ns}/${name}`, res.code, res.body);
  }

  private async deleteExternalArtifact(namespace: string, name: string): Promise<void> {
    const res = await this.opts.client.raw({
      method: "DELETE",
      path: sourcePath({ apiVersion: SOURCE_API_VERSION, plural: "externalartifacts" }, namespace, name),
    });
    if (res.code !== 404 && (res.code < 200 || res.code > 299))
      this.opts.log.warn(
        { externalArtifact: `${namespace}/${name}` },
        apiError("delete", res.code, res.body).message,
      );
  }

  /** ExternalArtifacts whose generator is gone (pruned from git) go with it, as Flux's finalizer does. */
  private async collectOrphans(live: Set<string>): Promise<void> {
    const res = await this.opts.client.raw({
      method: "GET",
      path: sourcePath({ apiVersion: SOURCE_API_VERSION, plural: "externalartifacts" }),
      query: { labelSelector: GENERATOR_LABEL },
    });
    if (res.code !== 200) return;
    for (const ea of KubeList.parse(res.body).items ?? []) {
      const uid = ea.metadata.labels?.[GENERATOR_LABEL];
      if (uid && !live.has(uid) && ea.metadata.labels?.["app.kubernetes.io/managed-by"] === FIELD_MANAGER)
        await this.deleteExternalArtifact(ea.metadata.namespace ?? "", ea.metadata.name ?? "");
    }
  }

  /** Ready (and Stalled) from the outcome; written only when it changes. */
  private async writeStatus(
    g: GeneratorObject,
    next: GeneratorStatus,
    failure: Failure | undefined,
  ): Promise<void> {
    const now = new Date().toISOString();
    const generation = g.metadata.generation;
    const gen = generation === undefined ? {} : { observedGeneration: generation };
    const requestedAt = g.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    if (requestedAt) next.lastHandledReconcileAt = requestedAt;
    let conditions = removeCondition(next.conditions ?? [], "Reconciling");
    if (failure) {
      const c = { status: "False" as const, reason: failure.reason, message: failure.message, ...gen };
      conditions = setCondition(conditions, { type: "Ready", ...c }, now);
      conditions = failure.stalled
        ? setCondition(conditions, { type: "Stalled", ...c, status: "True" }, now)
        : removeCondition(conditions, "Stalled");
    } else {
      conditions = removeCondition(conditions, "Stalled");
      const n = next.inventory?.length ?? 0;
      conditions = setCondition(
        conditions,
        {
          type: "Ready",
          status: "True",
          reason: "Succeeded",
          message: `reconciliation succeeded, generated ${n} artifact(s)`,
          ...gen,
        },
        now,
      );
    }
    next.conditions = conditions;
    if (canonicalJson(g.status ?? {}) === canonicalJson(next)) return;
    const res = await this.opts.client.raw({
      method: "PATCH",
      path: this.path(g.metadata.namespace, g.metadata.name, true),
      body: { status: next },
      contentType: "application/merge-patch+json",
    });
    if (res.code === 404) return;
    if (res.code < 200 || res.code > 299)
      throw apiError(
        `status of ArtifactGenerator ${g.metadata.namespace}/${g.metadata.name}`,
        res.code,
        res.body,
      );
    g.status = next;
  }
}
