/**
 * Reading and steering the agent through the Kubernetes API, the way the
 * flux CLI does: status comes from the Kustomization objects, suspend and
 * resume patch `spec.suspend`, and the health report the promotion gate
 * reads is computed from the same objects.
 */
import { Watch } from "@kubernetes/client-node";
import { ClusterError } from "../errors.ts";
import { apiError, type KubeClient } from "../kube/client.ts";
import { REQUESTED_AT_ANNOTATION } from "../kube/objects.ts";
import {
  KustomizationObject as KsSchema,
  KUSTOMIZATION_API_VERSION,
  KubeList,
  type KustomizationObject,
} from "../kube/schema.ts";
import { getCondition } from "./kustomization.ts";
import { ksPath } from "./reconciler.ts";

export interface KustomizationRow {
  namespace: string;
  name: string;
  /** Ready condition status: True, False or Unknown. */
  ready: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  suspended: boolean;
  lastAppliedRevision: string;
  lastAttemptedRevision: string;
  inventory: number;
  /** When the Ready condition last changed. */
  since: string;
}

export function rowOf(ks: KustomizationObject): KustomizationRow {
  const ready = getCondition(ks.status, "Ready");
  return {
    namespace: ks.metadata.namespace ?? "",
    name: ks.metadata.name ?? "",
    ready: ready?.status ?? "Unknown",
    reason: ready?.reason ?? "",
    message: ready?.message ?? "waiting to be reconciled",
    suspended: (ks.spec as { suspend?: unknown } | undefined)?.suspend === true,
    lastAppliedRevision: ks.status?.lastAppliedRevision ?? "",
    lastAttemptedRevision: ks.status?.lastAttemptedRevision ?? "",
    inventory: ks.status?.inventory?.entries?.length ?? 0,
    since: ready?.lastTransitionTime ?? "",
  };
}

export async function listKustomizations(
  client: KubeClient,
  namespace?: string,
): Promise<KustomizationRow[]> {
  const path = namespace
    ? `/apis/${KUSTOMIZATION_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/kustomizations`
    : `/apis/${KUSTOMIZATION_API_VERSION}/kustomizations`;
  const list = await client.call({ method: "GET", path }, KubeList, "list Kustomizations");
  return (list.items ?? [])
    .map((i) => KsSchema.safeParse({ apiVersion: KUSTOMIZATION_API_VERSION, kind: "Kustomization", ...i }))
    .filter((p) => p.success)
    .map((p) => rowOf(p.data))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** Fixed-width table in the spirit of `flux get kustomizations`. */
export function formatRows(rows: KustomizationRow[], header = true): string[] {
  const cols = (r: KustomizationRow) => [
    r.namespace,
    r.name,
    r.lastAppliedRevision || "-",
    r.suspended ? "True" : "False",
    r.ready,
    String(r.inventory),
    r.message.replaceAll("\n", " "),
  ];
  const head = ["NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "OBJECTS", "MESSAGE"];
  const table = header ? [head, ...rows.map(cols)] : rows.map(cols);
  const widths = head.map((_, i) =>
    Math.max(...(header ? table : [head, ...table]).map((r) => (r[i] ?? "").length)),
  );
  return table.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
}

async function patchSpec(
  client: KubeClient,
  namespace: string,
  name: string,
  body: unknown,
  what: string,
): Promise<void> {
  const res = await client.raw({
    method: "PATCH",
    path: ksPath(namespace, name),
    query: { fieldManager: "shipmate-cli" },
    body,
    contentType: "application/merge-patch+json",
  });
  if (res.code === 404) throw new ClusterError(`Kustomization ${namespace}/${name} not found`);
  if (res.code < 200 || res.code > 299)
    throw apiError(`${what} Kustomization ${namespace}/${name}`, res.code, res.body);
}

/** Stops the agent from acting on a Kustomization (manual changes then stay) until resumed. */
export async function suspend(client: KubeClient, namespace: string, name: string): Promise<void> {
  await patchSpec(client, namespace, name, { spec: { suspend: true } }, "suspend");
}

/** Lets the agent act again, and asks for a reconcile right away. */
export async function resume(
  client: KubeClient,
  namespace: string,
  name: string,
  now = new Date(),
): Promise<void> {
  await patchSpec(
    client,
    namespace,
    name,
    { metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: now.toISOString() } }, spec: { suspend: false } },
    "resume",
  );
}

/** Waits until the agent handled a reconcile request, returning the Kustomization's row then. */
export async function waitReconciled(
  client: KubeClient,
  namespace: string,
  name: string,
  timeoutMs: number,
): Promise<KustomizationRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ks = await client.call(
      { method: "GET", path: ksPath(namespace, name) },
      KsSchema,
      `Kustomization ${namespace}/${name}`,
    );
    const requested = ks.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    const ready = getCondition(ks.status, "Ready");
    if (requested && ks.status?.lastHandledReconcileAt === requested && ready && ready.status !== "Unknown")
      return rowOf(ks);
    if (Date.now() > deadline)
      throw new ClusterError(
        `Kustomization ${namespace}/${name}: not reconciled within ${timeoutMs / 1000}s`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Streams Kustomization changes (client-node's Watch) until `signal` aborts,
 * calling `onRow` for every added or modified object.
 */
export async function watchKustomizations(
  client: KubeClient,
  namespace: string | undefined,
  onRow: (row: KustomizationRow, type: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const watch = new Watch(client.kc);
  const path = namespace
    ? `/apis/${KUSTOMIZATION_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/kustomizations`
    : `/apis/${KUSTOMIZATION_API_VERSION}/kustomizations`;
  while (!signal.aborted) {
    const ended = new Promise<Error | undefined>((resolve) => {
      watch
        .watch(
          path,
          { allowWatchBookmarks: false },
          (type, obj) => {
            const parsed = KsSchema.safeParse({
              apiVersion: KUSTOMIZATION_API_VERSION,
              kind: "Kustomization",
              ...(obj as object),
            });
            if (parsed.success && (type === "ADDED" || type === "MODIFIED" || type === "DELETED"))
              onRow(rowOf(parsed.data), type);
          },
          (err) => resolve(err ?? undefined),
        )
        .then((ctrl) => {
          if (signal.aborted) ctrl.abort();
          else signal.addEventListener("abort", () => ctrl.abort(), { once: true });
        }, resolve);
    });
    const err = await ended;
    if (signal.aborted) return;
    // Watches end on their own (server timeout, API server restart): start again after a pause.
    await new Promise((r) => setTimeout(r, err ? 1000 : 100));
  }
}

export interface HealthReport {
  /** Every Kustomization Ready, none suspended. */
  healthy: boolean;
  /** The revision every Kustomization applied, when they all agree. */
  revision: string | undefined;
  kustomizations: KustomizationRow[];
  checkedAt: string;
}

/** The health report the promotion gate reads (documented in docs/agent.md). */
export async function healthReport(client: KubeClient, namespace?: string): Promise<HealthReport> {
  const rows = await listKustomizations(client, namespace);
  const revisions = new Set(rows.map((r) => r.lastAppliedRevision));
  return {
    healthy: rows.length > 0 && rows.every((r) => r.ready === "True" && !r.suspended),
    revision: revisions.size === 1 ? [...revisions][0] || undefined : undefined,
    kustomizations: rows,
    checkedAt: new Date().toISOString(),
  };
}

/** Whether the report shows every Kustomization healthy at `commit` (a full or abbreviated SHA). */
export function healthyAt(report: HealthReport, commit: string): boolean {
  const c = commit.toLowerCase();
  return (
    report.healthy &&
    report.kustomizations.every((r) => {
      const sha = r.lastAppliedRevision.split(":").pop() ?? "";
      return c.length >= 7 && sha.startsWith(c);
    })
  );
}
