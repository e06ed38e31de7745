/**
 * HelmRelease drift detection (`spec.driftDetection`), as helm-controller
 * does it: the objects of the release's manifest (what Helm recorded,
 * post-renderers included) are dry-run applied to the cluster and the
 * results compared with the live objects; an object missing or changed is
 * drift. `ignore` rules drop JSON pointer paths from the desired objects
 * (of the objects a rule's `target` selects) before comparing and
 * correcting, so a field another controller owns is left to it. Mode
 * `warn` reports; `enabled` also takes the drift back with a server-side
 * apply of the desired objects. The selector and pointer logic is pure;
 * `detectDrift` does the I/O with the release's own client.
 */
import { parseAllDocuments } from "yaml";
import { apiError, type KubeClient } from "../../kube/client.ts";
import { Discovery, resourcePath } from "../../kube/discovery.ts";
import { canonicalJson, describeRef, FIELD_MANAGER } from "../../kube/objects.ts";
import type { Selector } from "./spec.ts";

export interface IgnoreRule {
  paths: string[];
  target?: Selector;
}

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [k: string]: unknown;
};

/** The objects of a Helm release manifest (empty documents skipped). */
export function manifestObjects(manifest: string): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(manifest)) {
    const v = doc.toJS() as Obj | null;
    if (v && typeof v === "object" && v.kind && v.apiVersion && v.metadata?.name) out.push(v);
  }
  return out;
}

/** A Kubernetes equality/set-based label selector string against a label map. */
export function matchesLabelSelector(selector: string, labels: Record<string, string> = {}): boolean {
  const terms = selector.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  return terms.every((raw) => {
    const term = raw.trim();
    if (!term) return true;
    let m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) {
      const values = (m[3] ?? "").split(",").map((v) => v.trim());
      const has = (m[1] as string) in labels && values.includes(labels[m[1] as string] as string);
      return m[2] === "in" ? has : !has;
    }
    m = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (m) {
      const equal = labels[m[1] as string] === m[3];
      return m[2] === "!=" ? !equal : equal;
    }
    if (term.startsWith("!")) return !(term.slice(1) in labels);
    return term in labels;
  });
}

/** kustomize's selector rules: group/version/kind exact, name and namespace anchored regular expressions. */
export function selects(target: Selector | undefined, obj: Obj): boolean {
  if (!target) return true;
  const slash = obj.apiVersion.indexOf("/");
  const group = slash < 0 ? "" : obj.apiVersion.slice(0, slash);
  const version = slash < 0 ? obj.apiVersion : obj.apiVersion.slice(slash + 1);
  const re = (p: string, v: string) => {
    try {
      return new RegExp(`^(?:${p})$`).test(v);
    } catch {
      return p === v;
    }
  };
  if (target.group !== undefined && target.group !== group) return false;
  if (target.version && target.version !== version) return false;
  if (target.kind && target.kind !== obj.kind) return false;
  if (target.name && !re(target.name, obj.metadata.name)) return false;
  if (target.namespace && !re(target.namespace, obj.metadata.namespace ?? "")) return false;
  if (target.labelSelector && !matchesLabelSelector(target.labelSelector, obj.metadata.labels)) return false;
  if (target.annotationSelector && !matchesLabelSelector(target.annotationSelector, obj.metadata.annotations))
    return false;
  return true;
}

/** Removes one RFC 6901 JSON pointer from a copy-on-write value; a pointer that names nothing is a no-op. */
export function removePointer<T>(value: T, pointer: string): T {
  if (pointer === "" || pointer === "/") return value;
  const parts = pointer
    .replace(/^\//, "")
    .split("/")
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  const go = (v: unknown, i: number): unknown => {
    const key = parts[i] as string;
    if (Array.isArray(v)) {
      const idx = Number(key);
      if (!Number.isInteger(idx) || idx < 0 || idx >= v.length) return v;
      if (i === parts.length - 1) return v.filter((_, j) => j !== idx);
      return v.map((x, j) => (j === idx ? go(x, i + 1) : x));
    }
    if (v === null || typeof v !== "object" || !(key in (v as object))) return v;
    const o = v as Record<string, unknown>;
    if (i === parts.length - 1) {
      const { [key]: _dropped, ...rest } = o;
      return rest;
    }
    return { ...o, [key]: go(o[key], i + 1) };
  };
  return go(value, 0) as T;
}

/** The desired object with every path an ignore rule selecting it names removed. */
export function withoutIgnored(obj: Obj, rules: readonly IgnoreRule[]): Obj {
  let out = obj;
  for (const r of rules) if (selects(r.target, obj)) for (const p of r.paths) out = removePointer(out, p);
  return out;
}

/** What the comparison leaves out: fields the server keeps changing, never desired state. */
function comparable(o: Record<string, unknown>): string {
  const meta = { ...((o.metadata as Record<string, unknown>) ?? {}) };
  for (const k of ["managedFields", "resourceVersion", "generation", "creationTimestamp", "uid"])
    delete meta[k];
  const { status: _s, ...rest } = o;
  return canonicalJson({ ...rest, metadata: meta });
}

export interface DriftEntry {
  object: string;
  change: "missing" | "changed";
}

export interface DriftReport {
  entries: DriftEntry[];
  corrected: boolean;
}

const discoveries = new WeakMap<KubeClient, Discovery>();

/**
 * Compares the release's objects with the cluster; with `correct`, applies
 * the drifted ones back. Objects are in `namespace` unless they name one.
 */
export async function detectDrift(
  client: KubeClient,
  manifest: string,
  opts: { namespace: string; ignore: readonly IgnoreRule[]; correct: boolean },
): Promise<DriftReport> {
  let discovery = discoveries.get(client);
  if (!discovery) {
    discovery = new Discovery(client);
    discoveries.set(client, discovery);
  }
  const entries: DriftEntry[] = [];
  const drifted: { path: string; obj: Obj; what: string }[] = [];
  for (const raw of manifestObjects(manifest)) {
    const info = await discovery.resolve(raw.apiVersion, raw.kind);
    const ns = info.namespaced ? (raw.metadata.namespace ?? opts.namespace) : undefined;
    const obj = withoutIgnored(
      { ...raw, metadata: { ...raw.metadata, ...(ns ? { namespace: ns } : {}) } },
      opts.ignore,
    );
    const path = resourcePath(info, ns, obj.metadata.name);
    const what = describeRef({ kind: obj.kind, namespace: ns ?? "", name: obj.metadata.name });
    const live = await client.raw({ method: "GET", path });
    if (live.code === 404) {
      entries.push({ object: what, change: "missing" });
      drifted.push({ path, obj, what });
      continue;
    }
    if (live.code !== 200) throw apiError(`read ${what}`, live.code, live.body);
    const dry = await client.raw({
      method: "PATCH",
      path,
      query: { fieldManager: FIELD_MANAGER, force: "true" },
      body: obj,
      contentType: "application/apply-patch+yaml",
      dryRun: true,
    });
    if (dry.code !== 200) throw apiError(`dry-run ${what}`, dry.code, dry.body);
    if (
      comparable(dry.body as Record<string, unknown>) !== comparable(live.body as Record<string, unknown>)
    ) {
      entries.push({ object: what, change: "changed" });
      drifted.push({ path, obj, what });
    }
  }
  if (!opts.correct || !drifted.length) return { entries, corrected: false };
  for (const d of drifted) {
    const res = await client.raw({
      method: "PATCH",
      path: d.path,
      query: { fieldManager: FIELD_MANAGER, force: "true" },
      body: d.obj,
      contentType: "application/apply-patch+yaml",
    });
    if (res.code !== 200 && res.code !== 201) throw apiError(`correct ${d.what}`, res.code, res.body);
  }
  return { entries, corrected: true };
}

/** One line for events and logs: `Deployment/ns/web changed, ConfigMap/ns/x missing`. */
export function driftSummary(entries: readonly DriftEntry[]): string {
  const shown = entries.slice(0, 10).map((e) => `${e.object} ${e.change}`);
  return entries.length > 10 ? `${shown.join(", ")} and ${entries.length - 10} more` : shown.join(", ");
}
