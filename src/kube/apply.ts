/**
 * The apply engine: server-side apply with field manager `shipmate`.
 *
 * 1. Plan: one metadata-only list per kind and namespace tells which objects
 *    exist; an object whose inventory hash still matches (same desired
 *    object, same fields owned) is unchanged and costs nothing more.
 * 2. Validate: every other object is applied with `dryRun=All` first; any
 *    error fails the whole Kustomization before a single write. Objects that
 *    need a CRD or Namespace from the same apply are validated right after
 *    those are written (stage 0), before anything else is.
 * 3. Write: only objects whose dry-run result differs from the live object,
 *    CRDs and Namespaces first, then by kind rank.
 * Conflicts with fields last written imperatively (`kubectl edit`, `scale`,
 * client-side apply) are drift and are taken back; conflicts with another
 * server-side applier are reported, and forced only when configured.
 * Fields owned by Flux's own controllers (`kustomize-controller`,
 * `helm-controller`: ./ownership.ts) are handed over to the agent before it
 * writes, so a cluster Flux ran is taken over without a conflict and
 * without a co-owner that is gone.
 */
import { ClusterError } from "../errors.ts";
import { ApiError, apiError, type KubeClient, PARTIAL_METADATA_LIST_ACCEPT } from "./client.ts";
import { type Discovery, type ResourceInfo, resourcePath, UnknownKindError } from "./discovery.ts";
import {
  applyRank,
  describeRef,
  FIELD_MANAGER,
  FLUX_RECONCILE_ANNOTATION,
  inventoryId,
  isStageZero,
  NAME_LABEL,
  NAMESPACE_LABEL,
  type ObjectRef,
  ownedFields,
  pruneDisabled,
  refOf,
  sameObject,
  stateHash,
} from "./objects.ts";
import { FLUX_FIELD_MANAGERS, fluxOwners, handOverManagedFields } from "./ownership.ts";
import { type InventoryEntry, KubeList, KubeObject, type ObjectMeta } from "./schema.ts";

const SSA_POLICY_ANNOTATION = "kustomize.toolkit.fluxcd.io/ssa";

export type Action = "created" | "configured" | "recreated" | "unchanged" | "skipped" | "deleted";
export interface Change {
  ref: ObjectRef;
  action: Action;
}

/** Apply failed; `written` says whether anything reached the cluster before it did. */
export class ApplyError extends ClusterError {
  override name = "ApplyError";
  readonly errors: string[];
  readonly written: boolean;
  constructor(errors: string[], written: boolean) {
    super(
      errors.length === 1 ? (errors[0] ?? "") : `${errors.length} errors: ${errors.slice(0, 5).join("; ")}`,
    );
    this.errors = errors;
    this.written = written;
  }
}

export interface ApplyOptions {
  /** Take fields from other server-side appliers too (never needed for imperative drift). */
  forceConflicts?: boolean;
  concurrency?: number;
  /** How long to wait for applied CRDs to become established. */
  crdTimeoutMs?: number;
}

export interface Owner {
  name: string;
  namespace: string;
}

export interface ApplyRequest {
  objects: KubeObject[];
  previous: InventoryEntry[];
  owner: Owner;
  /**
   * Persists an inventory before the first write, so that an apply cut short
   * (API server gone, agent killed) never leaves an object nobody records.
   */
  writeAhead(entries: InventoryEntry[]): Promise<void>;
  /** Aborted when this replica may no longer write (leadership lost): no further write is sent. */
  signal?: AbortSignal;
  /** Flux's `spec.force`: recreate objects whose change touches an immutable field. */
  recreate?: boolean;
}

const STOPPED = "stopped before writing: this replica no longer holds the leader lease";

export interface ApplyResult {
  changes: Change[];
  inventory: InventoryEntry[];
  /** Objects whose stored state was written (created or configured). */
  writes: number;
}

interface Item {
  obj: KubeObject;
  ref: ObjectRef;
  id: string;
  info?: ResourceInfo;
  live?: ObjectMeta;
  force: boolean;
  /** Flux's `spec.force`: an immutable-field change is applied by deleting and creating the object. */
  recreate: boolean;
  needsRecreate?: boolean;
  /** Flux's controllers own fields of the live object: they are handed over before the write. */
  handOver?: boolean;
  dryRun?: KubeObject;
  result?: KubeObject;
  action?: Action;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The managers named in an SSA conflict Status ("conflict with \"kubectl-edit\" using apps/v1"). */
export function conflictManagers(err: ApiError): string[] {
  const texts = [
    err.status?.message ?? "",
    ...(err.status?.details?.causes ?? []).map((c) => c.message ?? ""),
  ];
  const out = new Set<string>();
  for (const t of texts) for (const m of t.matchAll(/conflict with "([^"]+)"/g)) if (m[1]) out.add(m[1]);
  return [...out];
}

/**
 * Whether a conflict may be taken without `--force-conflicts`: every
 * conflicting manager either only ever wrote imperatively (drift, not a
 * rival owner) or is one of Flux's controllers the agent takes over from.
 */
export function takeableConflict(managers: string[], live: ObjectMeta | undefined): boolean {
  if (!managers.length) return false;
  const rest = managers.filter((m) => !FLUX_FIELD_MANAGERS.includes(m));
  return rest.length === 0 || onlyImperative(rest, live);
}

/** Whether every conflicting manager only ever wrote imperatively (Update): that is drift, not a rival owner. */
export function onlyImperative(managers: string[], live: ObjectMeta | undefined): boolean {
  if (!managers.length) return false;
  const entries = live?.managedFields ?? [];
  return managers.every((m) => {
    const own = entries.filter((e) => e.manager === m);
    return own.length > 0 && own.every((e) => e.operation === "Update");
  });
}

export class Applier {
  private readonly client: KubeClient;
  private readonly discovery: Discovery;
  private readonly opts: Required<ApplyOptions>;

  constructor(client: KubeClient, discovery: Discovery, opts: ApplyOptions = {}) {
    this.client = client;
    this.discovery = discovery;
    this.opts = { forceConflicts: false, concurrency: 16, crdTimeoutMs: 60_000, ...opts };
  }

  /** Metadata of every object of one kind in one namespace (or cluster-wide), keyed by inventory id. */
  private async listMeta(
    info: ResourceInfo,
    namespace: string | undefined,
  ): Promise<Map<string, ObjectMeta>> {
    const out = new Map<string, ObjectMeta>();
    let cont: string | undefined;
    const { group } = { group: info.apiVersion.includes("/") ? (info.apiVersion.split("/")[0] ?? "") : "" };
    do {
      const list = await this.client.call(
        {
          method: "GET",
          path: resourcePath(info, namespace),
          query: { limit: "500", continue: cont },
          accept: PARTIAL_METADATA_LIST_ACCEPT,
        },
        KubeList,
        `list ${info.plural}${namespace ? ` in ${namespace}` : ""}`,
      );
      for (const item of list.items ?? []) {
        const m = item.metadata;
        out.set(inventoryId({ group, kind: info.kind, namespace: m.namespace ?? "", name: m.name ?? "" }), m);
      }
      cont = list.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  private ssa(item: Item, dryRun: boolean): Promise<KubeObject> {
    const info = item.info as ResourceInfo;
    return this.client.call(
      {
        method: "PATCH",
        path: resourcePath(info, item.ref.namespace, item.ref.name),
        query: { fieldManager: FIELD_MANAGER, force: item.force ? "true" : undefined },
        body: item.obj,
        contentType: "application/apply-patch+yaml",
        dryRun,
      },
      KubeObject,
      `${dryRun ? "validate" : "apply"} ${describeRef(item.ref)}`,
    );
  }

  private async getLive(item: Item): Promise<KubeObject | undefined> {
    const info = item.info as ResourceInfo;
    const res = await this.client.raw({
      method: "GET",
      path: resourcePath(info, item.ref.namespace, item.ref.name),
    });
    if (res.code === 404) return undefined;
    if (res.code !== 200) throw new ApiError(`get ${describeRef(item.ref)}`, res.code, undefined);
    return KubeObject.parse(res.body);
  }

  /** Dry-runs one item, taking imperative drift back; records the result or an error. */
  private async validate(item: Item, errors: string[]): Promise<void> {
    try {
      item.dryRun = await this.ssa(item, true);
    } catch (err) {
      if (err instanceof ApiError && err.code === 409 && !item.force) {
        const managers = conflictManagers(err);
        const live = item.live ?? (await this.getLive(item))?.metadata;
        if (takeableConflict(managers, live)) {
          item.force = true;
          return await this.validate(item, errors);
        }
        errors.push(
          `${describeRef(item.ref)}: conflict with server-side applier ${managers.map((m) => `"${m}"`).join(", ")} (${err.status?.details?.causes?.map((c) => c.field).join(", ") ?? ""}); not forced (enable force-conflicts to take ownership)`,
        );
        return;
      }
      if (
        item.recreate &&
        item.live &&
        err instanceof ApiError &&
        err.code === 422 &&
        /immutable/i.test(err.message)
      ) {
        // The new object cannot be dry-run while the old one exists; the server validates the create.
        item.needsRecreate = true;
        return;
      }
      errors.push(
        err instanceof ApiError
          ? `${describeRef(item.ref)}: ${err.status?.message ?? err.message}`
          : (err as Error).message,
      );
    }
  }

  /** Deletes the live object, waits until it is gone, then applies the new one. */
  private async recreateObject(item: Item): Promise<KubeObject> {
    const info = item.info as ResourceInfo;
    const path = resourcePath(info, item.ref.namespace, item.ref.name);
    const del = await this.client.raw({
      method: "DELETE",
      path,
      body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" },
    });
    if (del.code !== 200 && del.code !== 202 && del.code !== 404)
      throw apiError(`recreate ${describeRef(item.ref)}`, del.code, del.body);
    const deadline = Date.now() + this.opts.crdTimeoutMs;
    while ((await this.client.raw({ method: "GET", path })).code !== 404) {
      if (Date.now() > deadline)
        throw new ClusterError(
          `recreate ${describeRef(item.ref)}: the old object is still there (finalizers?)`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
    return await this.ssa(item, false);
  }

  /**
   * Resolves kinds, looks live objects up and keeps those needing a write.
   * Items that cannot be validated until stage 0 is written are returned in `deferred`.
   */
  private async plan(
    items: Item[],
    previous: Map<string, InventoryEntry>,
    stageZero: { crdKinds: Set<string>; namespaces: Set<string> },
    errors: string[],
    allowDefer: boolean,
  ): Promise<{ pending: Item[]; deferred: Item[] }> {
    const deferred: Item[] = [];
    const resolved: Item[] = [];
    for (const item of items) {
      try {
        item.info = await this.discovery.resolve(item.obj.apiVersion, item.obj.kind);
      } catch (err) {
        if (
          err instanceof UnknownKindError &&
          allowDefer &&
          stageZero.crdKinds.has(`${item.ref.group}/${item.ref.kind}`)
        ) {
          deferred.push(item);
          continue;
        }
        errors.push(`${describeRef(item.ref)}: ${(err as Error).message}`);
        continue;
      }
      if (item.info.namespaced && !item.ref.namespace) {
        errors.push(
          `${describeRef(item.ref)}: namespace not specified (set metadata.namespace or the Kustomization's targetNamespace)`,
        );
        continue;
      }
      if (!item.info.namespaced && item.ref.namespace) {
        // Cluster-scoped objects carry no namespace; kustomize may have set one on a custom kind.
        item.ref = { ...item.ref, namespace: "" };
        item.id = inventoryId(item.ref);
        const { namespace: _ns, ...meta } = item.obj.metadata;
        item.obj = { ...item.obj, metadata: meta };
      }
      resolved.push(item);
    }

    // One metadata list per kind and namespace (cluster-wide for cluster-scoped kinds).
    const lists = new Map<string, { info: ResourceInfo; namespace: string | undefined }>();
    const nsInfo = await this.discovery.resolve("v1", "Namespace");
    lists.set("v1/Namespace", { info: nsInfo, namespace: undefined });
    for (const item of resolved) {
      const info = item.info as ResourceInfo;
      const ns = info.namespaced ? item.ref.namespace : undefined;
      lists.set(`${info.apiVersion}/${info.kind}/${ns ?? ""}`, { info, namespace: ns });
    }
    const live = new Map<string, ObjectMeta>();
    const listFailed = new Map<string, string>();
    await pool([...lists.entries()], this.opts.concurrency, async ([key, { info, namespace }]) => {
      try {
        for (const [id, meta] of await this.listMeta(info, namespace)) live.set(id, meta);
      } catch (err) {
        listFailed.set(
          key,
          err instanceof ApiError ? (err.status?.message ?? err.message) : (err as Error).message,
        );
      }
    });
    for (const item of resolved) {
      const info = item.info as ResourceInfo;
      const why = listFailed.get(
        `${info.apiVersion}/${info.kind}/${info.namespaced ? item.ref.namespace : ""}`,
      );
      if (why) errors.push(`${describeRef(item.ref)}: ${why}`);
    }
    if (errors.length) return { pending: [], deferred: [] };
    const existingNamespaces = listFailed.has("v1/Namespace")
      ? await this.namespacesOneByOne(resolved, nsInfo, errors)
      : new Set(
          [...live.entries()].filter(([id]) => id.endsWith("__Namespace")).map(([, m]) => m.name ?? ""),
        );
    if (errors.length) return { pending: [], deferred: [] };

    const toValidate: Item[] = [];
    for (const item of resolved) {
      item.live = live.get(item.id);
      const policy = item.obj.metadata.annotations?.[SSA_POLICY_ANNOTATION];
      if (
        policy === "Ignore" ||
        (policy === "IfNotPresent" && item.live) ||
        item.live?.annotations?.[FLUX_RECONCILE_ANNOTATION] === "disabled"
      ) {
        item.action = "skipped";
        continue;
      }
      if (item.live && fluxOwners(item.live).length) item.handOver = true;
      else if (item.live) {
        const h = stateHash(item.obj, ownedFields({ ...item.obj, metadata: item.live }));
        if (h && previous.get(item.id)?.h === h) {
          item.action = "unchanged";
          continue;
        }
      }
      const ns = item.ref.namespace;
      if (ns && !existingNamespaces.has(ns)) {
        if (allowDefer && stageZero.namespaces.has(ns)) {
          deferred.push(item);
          continue;
        }
      }
      toValidate.push(item);
    }

    await pool(toValidate, this.opts.concurrency, (item) => this.validate(item, errors));
    const pending: Item[] = [];
    const existing = toValidate.filter((i) => i.dryRun && i.live);
    await pool(existing, this.opts.concurrency, async (item) => {
      const full = await this.getLive(item);
      if (full && item.dryRun && !item.handOver && sameObject(full, item.dryRun, "status" in item.obj)) {
        item.action = "unchanged";
        item.result = full;
      }
    });
    for (const item of toValidate)
      if ((item.dryRun || item.needsRecreate) && !item.action) pending.push(item);
    return { pending, deferred };
  }

  /**
   * Which of the items' namespaces exist, asked one by one: an impersonated
   * tenant may not list namespaces cluster-wide, yet may read its own. A
   * namespace it may not read either counts as existing, so its objects are
   * validated now and their own answer (forbidden) names them.
   */
  private async namespacesOneByOne(
    items: Item[],
    nsInfo: ResourceInfo,
    errors: string[],
  ): Promise<Set<string>> {
    const names = [...new Set(items.map((i) => (i.info?.namespaced ? i.ref.namespace : "")).filter(Boolean))];
    const existing = new Set<string>();
    await pool(names, this.opts.concurrency, async (name) => {
      const res = await this.client.raw({ method: "GET", path: resourcePath(nsInfo, undefined, name) });
      if (res.code === 200 || res.code === 403) existing.add(name);
      else if (res.code !== 404) errors.push(apiError(`Namespace/${name}`, res.code, res.body).message);
    });
    return existing;
  }

  private async write(items: Item[], errors: string[], signal?: AbortSignal): Promise<number> {
    let writes = 0;
    const ranks = [...new Set(items.map((i) => applyRank(i.ref.kind)))].sort((a, b) => a - b);
    for (const rank of ranks) {
      await pool(
        items.filter((i) => applyRank(i.ref.kind) === rank),
        this.opts.concurrency,
        async (item) => {
          if (signal?.aborted) {
            if (!errors.includes(STOPPED)) errors.push(STOPPED);
            return;
          }
          try {
            if (item.needsRecreate) {
              item.result = await this.recreateObject(item);
              item.action = "recreated";
            } else {
              if (item.handOver) writes += await this.handOver(item);
              item.result = await this.ssa(item, false);
              item.action = item.live ? "configured" : "created";
            }
            writes++;
          } catch (err) {
            errors.push(
              err instanceof ApiError
                ? `${describeRef(item.ref)}: ${err.status?.message ?? err.message}`
                : (err as Error).message,
            );
          }
        },
      );
      if (errors.length) break;
    }
    return writes;
  }

  /**
   * Folds Flux's controllers' managedFields entries into the agent's own,
   * guarded by the resourceVersion just read (a concurrent writer makes it
   * fail, and the next pass tries again). Returns the writes made (0 or 1).
   */
  private async handOver(item: Item): Promise<number> {
    const live = await this.getLive(item);
    const entries = live
      ? handOverManagedFields(
          live.metadata.managedFields ?? [],
          FLUX_FIELD_MANAGERS,
          FIELD_MANAGER,
          item.obj.apiVersion,
          new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        )
      : undefined;
    if (!live || !entries) return 0;
    const info = item.info as ResourceInfo;
    const res = await this.client.raw({
      method: "PATCH",
      path: resourcePath(info, item.ref.namespace, item.ref.name),
      contentType: "application/json-patch+json",
      body: [
        { op: "test", path: "/metadata/resourceVersion", value: live.metadata.resourceVersion },
        { op: "replace", path: "/metadata/managedFields", value: entries },
      ],
    });
    if (res.code < 200 || res.code > 299)
      throw apiError(`take field ownership of ${describeRef(item.ref)} over from Flux`, res.code, res.body);
    return 1;
  }

  private async waitForCrds(items: Item[]): Promise<void> {
    const crds = items.filter((i) => i.ref.kind === "CustomResourceDefinition");
    const deadline = Date.now() + this.opts.crdTimeoutMs;
    for (const crd of crds) {
      for (;;) {
        const live = await this.getLive(crd);
        const conds = ((live as { status?: { conditions?: { type: string; status: string }[] } } | undefined)
          ?.status?.conditions ?? []) as { type: string; status: string }[];
        if (conds.some((c) => c.type === "Established" && c.status === "True")) break;
        if (Date.now() > deadline)
          throw new ApplyError([`${describeRef(crd.ref)}: not established in time`], true);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    this.discovery.invalidate();
  }

  async apply(req: ApplyRequest): Promise<ApplyResult> {
    const previous = new Map(req.previous.map((e) => [e.id, e]));
    const errors: string[] = [];
    const seen = new Set<string>();
    const items: Item[] = [];
    for (const obj of req.objects) {
      const ref = refOf(obj);
      const id = inventoryId(ref);
      if (seen.has(id)) {
        errors.push(`${describeRef(ref)}: defined more than once`);
        continue;
      }
      seen.add(id);
      items.push({ obj, ref, id, force: this.opts.forceConflicts, recreate: req.recreate ?? false });
    }
    if (errors.length) throw new ApplyError(errors, false);

    const stageZero = {
      crdKinds: new Set(
        items
          .filter((i) => i.ref.kind === "CustomResourceDefinition")
          .map((i) => {
            const spec = (i.obj as { spec?: { group?: string; names?: { kind?: string } } }).spec;
            return `${spec?.group ?? ""}/${spec?.names?.kind ?? ""}`;
          }),
      ),
      namespaces: new Set(items.filter((i) => i.ref.kind === "Namespace").map((i) => i.ref.name)),
    };

    const { pending, deferred } = await this.plan(items, previous, stageZero, errors, true);
    if (errors.length) throw new ApplyError(errors, false);

    const newIds = items.filter((i) => !previous.has(i.id));
    if (newIds.length && (pending.length || deferred.length)) {
      await req.writeAhead([...req.previous, ...newIds.map((i) => ({ id: i.id, v: i.ref.version }))]);
    }

    let writes = 0;
    const stage0 = pending.filter((i) => isStageZero(i.ref.kind));
    if (stage0.length) {
      writes += await this.write(stage0, errors, req.signal);
      if (errors.length) throw new ApplyError(errors, writes > 0);
    }
    let rest = pending.filter((i) => !isStageZero(i.ref.kind));
    if (deferred.length) {
      await this.waitForCrds(stage0);
      const late = await this.plan(deferred, previous, stageZero, errors, false);
      if (errors.length) throw new ApplyError(errors, writes > 0);
      rest = [...rest, ...late.pending];
    }
    writes += await this.write(rest, errors, req.signal);
    if (errors.length) throw new ApplyError(errors, writes > 0);

    const inventory: InventoryEntry[] = items.map((i) => {
      const meta = i.result?.metadata ?? i.live;
      const h = meta ? stateHash(i.obj, ownedFields({ ...i.obj, metadata: meta })) : undefined;
      return h ? { id: i.id, v: i.ref.version, h } : { id: i.id, v: i.ref.version };
    });
    return {
      changes: items.map((i) => ({ ref: i.ref, action: i.action ?? "unchanged" })),
      inventory,
      writes,
    };
  }

  /**
   * Deletes objects that left git. Only objects still labelled as belonging
   * to `owner` are deleted, never one marked "prune: disabled", and each
   * delete is conditional on the uid we looked at.
   */
  async prune(
    stale: ObjectRef[],
    owner: Owner,
    beforeDelete?: (ref: ObjectRef, live: KubeObject) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<{ changes: Change[]; kept: ObjectRef[]; errors: string[] }> {
    const changes: Change[] = [];
    const kept: ObjectRef[] = [];
    const errors: string[] = [];
    // Reverse apply order: workloads before their namespace, custom resources before their CRD.
    const ordered = [...stale].sort((a, b) => applyRank(b.kind) - applyRank(a.kind));
    const ranks = [...new Set(ordered.map((r) => applyRank(r.kind)))];
    for (const rank of ranks) {
      await pool(
        ordered.filter((r) => applyRank(r.kind) === rank),
        this.opts.concurrency,
        async (ref) => {
          const apiVersion = ref.group ? `${ref.group}/${ref.version}` : ref.version;
          const info = await this.discovery.find(apiVersion, ref.kind).catch(() => undefined);
          if (!info) return; // the kind is gone, and its objects with it
          const item: Item = {
            obj: { apiVersion, kind: ref.kind, metadata: {} },
            ref,
            id: inventoryId(ref),
            info,
            force: false,
            recreate: false,
          };
          let live: KubeObject | undefined;
          try {
            live = await this.getLive(item);
          } catch (err) {
            errors.push(`${describeRef(ref)}: ${(err as Error).message}`);
            kept.push(ref);
            return;
          }
          if (!live || live.metadata.deletionTimestamp) return;
          const labels = live.metadata.labels ?? {};
          if (labels[NAME_LABEL] !== owner.name || labels[NAMESPACE_LABEL] !== owner.namespace) return;
          if (pruneDisabled(live.metadata.annotations)) {
            changes.push({ ref, action: "skipped" });
            return;
          }
          try {
            if (signal?.aborted) throw new Error(STOPPED);
            if (beforeDelete) await beforeDelete(ref, live);
            const res = await this.client.raw({
              method: "DELETE",
              path: resourcePath(info, ref.namespace, ref.name),
              body: {
                kind: "DeleteOptions",
                apiVersion: "v1",
                propagationPolicy: "Background",
                preconditions: { uid: live.metadata.uid },
              },
            });
            if (res.code === 404 || res.code === 409) return; // already gone, or replaced by a new object
            if (res.code < 200 || res.code > 299)
              throw apiError(`delete ${describeRef(ref)}`, res.code, res.body);
            changes.push({ ref, action: "deleted" });
          } catch (err) {
            errors.push(`${describeRef(ref)}: ${(err as Error).message}`);
            kept.push(ref);
          }
        },
      );
    }
    return { changes, kept, errors };
  }
}
