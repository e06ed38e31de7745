/**
 * Status and control of sources and Kustomizations through the Kubernetes
 * API, the way the flux CLI does it: `get sources git` reads GitRepository
 * objects, `reconcile` annotates `reconcile.fluxcd.io/requestedAt` and waits
 * until the agent reports it handled, bootstrap waits for the root
 * Kustomization to be Ready at the revision it pushed.
 */

import { type KustomizationRow, rowOf } from "../agent/control.ts";
import { getCondition } from "../agent/kustomization.ts";
import { ksPath } from "../agent/reconciler.ts";
import { gitRepositoryPath, sourceRefOf } from "../agent/source-objects.ts";
import { ClusterError } from "../errors.ts";
import { apiError, type KubeClient } from "../kube/client.ts";
import { REQUESTED_AT_ANNOTATION } from "../kube/objects.ts";
import {
  GitRepositoryObject,
  KUSTOMIZATION_API_VERSION,
  KubeList,
  KustomizationObject,
  SOURCE_API_VERSION,
} from "../kube/schema.ts";
import { formatTable } from "../table.ts";

export interface SourceRow {
  namespace: string;
  name: string;
  url: string;
  revision: string;
  suspended: boolean;
  ready: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastHandledReconcileAt: string;
}

export function sourceRowOf(obj: GitRepositoryObject): SourceRow {
  const ready = obj.status?.conditions?.find((c) => c.type === "Ready");
  const spec = (obj.spec ?? {}) as { url?: unknown; suspend?: unknown };
  return {
    namespace: obj.metadata.namespace ?? "",
    name: obj.metadata.name ?? "",
    url: typeof spec.url === "string" ? spec.url : "",
    revision: obj.status?.artifact?.revision ?? "",
    suspended: spec.suspend === true,
    ready: ready?.status ?? "Unknown",
    reason: ready?.reason ?? "",
    message: ready?.message ?? "waiting to be reconciled",
    lastHandledReconcileAt: obj.status?.lastHandledReconcileAt ?? "",
  };
}

export async function listGitRepositories(client: KubeClient, namespace?: string): Promise<SourceRow[]> {
  const res = await client.raw({ method: "GET", path: gitRepositoryPath(namespace) });
  if (res.code === 404)
    throw new ClusterError(
      "GitRepository objects are not served by this cluster: is the agent installed (shipmate bootstrap)?",
    );
  if (res.code !== 200) throw apiError("list GitRepositories", res.code, res.body);
  return (KubeList.parse(res.body).items ?? [])
    .map((i) =>
      GitRepositoryObject.safeParse({ apiVersion: SOURCE_API_VERSION, kind: "GitRepository", ...i }),
    )
    .filter((p) => p.success)
    .map((p) => sourceRowOf(p.data))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** Fixed-width table in the spirit of `flux get sources git`. */
export function formatSourceRows(rows: SourceRow[]): string[] {
  const head = ["NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"];
  const cells = rows.map((r) => [
    r.namespace,
    r.name,
    r.revision || "-",
    r.suspended ? "True" : "False",
    r.ready,
    r.message.replaceAll("\n", " "),
  ]);
  return formatTable(head, cells).split("\n");
}

export type Kind = "GitRepository" | "Kustomization";

function pathOf(kind: Kind, namespace: string, name: string): string {
  return kind === "GitRepository" ? gitRepositoryPath(namespace, name) : ksPath(namespace, name);
}

/** One object read and parsed, undefined when it does not exist. */
async function readObject<T>(
  client: KubeClient,
  path: string,
  what: string,
  parse: (body: object) => T,
): Promise<T | undefined> {
  const res = await client.raw({ method: "GET", path });
  if (res.code === 404) return undefined;
  if (res.code !== 200) throw apiError(what, res.code, res.body);
  return parse(res.body as object);
}

export function getGitRepository(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<GitRepositoryObject | undefined> {
  return readObject(client, gitRepositoryPath(namespace, name), `GitRepository ${namespace}/${name}`, (b) =>
    GitRepositoryObject.parse({ apiVersion: SOURCE_API_VERSION, kind: "GitRepository", ...b }),
  );
}

export function getKustomization(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<KustomizationObject | undefined> {
  return readObject(client, ksPath(namespace, name), `Kustomization ${namespace}/${name}`, (b) =>
    KustomizationObject.parse({ apiVersion: KUSTOMIZATION_API_VERSION, kind: "Kustomization", ...b }),
  );
}

/**
 * A merge patch the CLI makes to a Flux object at `path` (field manager
 * `shipmate-cli`); `what` names it ("Kind namespace/name") in the one line a
 * missing object or a refusal gives. Every kind's reconcile, suspend and
 * resume goes through here.
 */
export async function patchFluxObject(
  client: KubeClient,
  path: string,
  what: string,
  body: unknown,
  verb: string,
): Promise<void> {
  const res = await client.raw({
    method: "PATCH",
    path,
    query: { fieldManager: "shipmate-cli" },
    body,
    contentType: "application/merge-patch+json",
  });
  if (res.code === 404) throw new ClusterError(`${what} not found`);
  if (res.code < 200 || res.code > 299) throw apiError(`${verb} ${what}`, res.code, res.body);
}

/** A `reconcile.fluxcd.io/requestedAt` request on the object at `path`; returns its value to wait for. */
export async function requestReconcileAt(
  client: KubeClient,
  path: string,
  what: string,
  now = new Date(),
): Promise<string> {
  const at = now.toISOString();
  await patchFluxObject(
    client,
    path,
    what,
    { metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: at } } },
    "annotate",
  );
  return at;
}

/** `spec.suspend`, and on resume a reconcile request as Flux's CLI makes it; returns the request time. */
export async function setSuspendedAt(
  client: KubeClient,
  path: string,
  what: string,
  suspended: boolean,
  now = new Date(),
): Promise<string> {
  const at = now.toISOString();
  const body = suspended
    ? { spec: { suspend: true } }
    : { metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: at } }, spec: { suspend: false } };
  await patchFluxObject(client, path, what, body, suspended ? "suspend" : "resume");
  return at;
}

/** Waits until the agent handled the request made at `at` (`status.lastHandledReconcileAt`); returns the row then. */
export async function waitHandledAt<R extends { lastHandledReconcileAt?: string }>(
  client: KubeClient,
  path: string,
  what: string,
  at: string,
  timeoutMs: number,
  rowOf: (obj: unknown) => R,
  pollMs: number,
): Promise<R> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await client.raw({ method: "GET", path });
    if (res.code === 404) throw new ClusterError(`${what} not found`);
    if (res.code !== 200) throw apiError(what, res.code, res.body);
    const row = rowOf(res.body);
    if (row.lastHandledReconcileAt === at) return row;
    if (Date.now() > deadline)
      throw new ClusterError(`${what}: not reconciled within ${Math.round(timeoutMs / 1000)}s`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Asks the agent to reconcile an object now; returns the request's timestamp to wait for. */
export async function requestReconcile(
  client: KubeClient,
  kind: Kind,
  namespace: string,
  name: string,
  now = new Date(),
): Promise<string> {
  return await requestReconcileAt(client, pathOf(kind, namespace, name), `${kind} ${namespace}/${name}`, now);
}

async function poll<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new ClusterError(`${what}: not done within ${Math.round(timeoutMs / 1000)}s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Waits until the agent handled the source's request (fetched, status written); returns its row then. */
export async function waitSourceHandled(
  client: KubeClient,
  namespace: string,
  name: string,
  requestedAt: string,
  timeoutMs: number,
): Promise<SourceRow> {
  return await poll(`GitRepository ${namespace}/${name}: reconcile request`, timeoutMs, async () => {
    const obj = await getGitRepository(client, namespace, name);
    if (!obj) throw new ClusterError(`GitRepository ${namespace}/${name} not found`);
    const ready = getCondition(obj.status, "Ready");
    return obj.status?.lastHandledReconcileAt === requestedAt && ready ? sourceRowOf(obj) : undefined;
  });
}

/** The GitRepository a Kustomization reads (namespace and name), or undefined when it names none. */
export function sourceOf(ks: KustomizationObject): { namespace: string; name: string } | undefined {
  const ref = sourceRefOf(ks);
  return ref?.kind === "GitRepository" ? { namespace: ref.namespace, name: ref.name } : undefined;
}

/**
 * Waits until the Kustomization is Ready at `revision` (`<branch>@sha1:<commit>`),
 * reporting each change of its Ready condition; on timeout the error carries
 * the last condition, which says what the agent is stuck on.
 */
export async function waitReadyAt(
  client: KubeClient,
  namespace: string,
  name: string,
  revision: string,
  timeoutMs: number,
  onChange: (row: KustomizationRow | undefined) => void,
  pollMs = 1000,
  /** Where the agent's Deployment runs, for the hint on timeout (the root's namespace unless told). */
  agentNamespace = namespace,
): Promise<KustomizationRow> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let row: KustomizationRow | undefined;
  for (;;) {
    const ks = await getKustomization(client, namespace, name);
    row = ks ? rowOf(ks) : undefined;
    const seen = row ? `${row.ready}/${row.reason}/${row.lastAppliedRevision}/${row.message}` : "missing";
    if (seen !== last) {
      last = seen;
      onChange(row);
    }
    if (row?.ready === "True" && row.lastAppliedRevision === revision) return row;
    if (Date.now() > deadline) {
      const state = row
        ? `Ready=${row.ready}${row.reason ? ` ${row.reason}` : ""}: ${row.message.replaceAll("\n", " ")}`
        : "the object does not exist yet";
      throw new ClusterError(
        `Kustomization ${namespace}/${name} did not apply ${revision} within ${Math.round(timeoutMs / 1000)}s (${state}); is the agent running? kubectl -n ${agentNamespace} get deployment shipmate-agent`,
      );
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
