/**
 * `shipmate get helmreleases` and `get sources helm|chart`: the Helm kinds
 * listed as `flux get` shows them (revision, suspended, Ready, message).
 */
import {
  formatSourceRows,
  requestReconcileAt,
  type SourceRow,
  setSuspendedAt,
  waitHandledAt,
} from "../../bootstrap/control.ts";
import { ClusterError } from "../../errors.ts";
import { apiError, type KubeClient } from "../../kube/client.ts";
import { type Condition, KubeList } from "../../kube/schema.ts";
import { sourcePath } from "../source-objects.ts";
import { helmChartHandler } from "../sources/helm-chart.ts";
import { helmRepositoryHandler } from "../sources/helm-repository.ts";
import { helmReleasePath } from "./release.ts";

export type HelmKind = "HelmRelease" | "HelmRepository" | "HelmChart";

interface Listed {
  metadata: { name?: string; namespace?: string };
  spec?: { url?: unknown; suspend?: unknown; chart?: unknown; type?: unknown };
  status?: {
    conditions?: Condition[];
    artifact?: { revision?: string };
    history?: { chartVersion?: string }[];
    lastHandledReconcileAt?: string;
  };
}

/** One row: for a HelmRelease the revision is the chart version of its latest release, as `flux get hr` shows. */
export function helmRowOf(kind: HelmKind, obj: Listed): SourceRow {
  const ready = obj.status?.conditions?.find((c) => c.type === "Ready");
  // An OCI HelmRepository is static, with an empty status (as source-controller keeps it): usable once it exists.
  const static_ = kind === "HelmRepository" && obj.spec?.type === "oci" && !ready;
  const revision =
    kind === "HelmRelease"
      ? (obj.status?.history?.[0]?.chartVersion ?? "")
      : (obj.status?.artifact?.revision ?? "");
  return {
    namespace: obj.metadata.namespace ?? "",
    name: obj.metadata.name ?? "",
    url: typeof obj.spec?.url === "string" ? obj.spec.url : "",
    revision,
    suspended: obj.spec?.suspend === true,
    ready: ready?.status ?? (static_ ? "True" : "Unknown"),
    reason: ready?.reason ?? "",
    message:
      ready?.message ??
      (static_ ? "static object: the HelmCharts that use it pull its charts" : "waiting to be reconciled"),
    lastHandledReconcileAt: obj.status?.lastHandledReconcileAt ?? "",
  };
}

export function helmPath(kind: HelmKind, namespace?: string, name?: string): string {
  if (kind === "HelmRelease") return helmReleasePath(namespace, name);
  return sourcePath(kind === "HelmChart" ? helmChartHandler : helmRepositoryHandler, namespace, name);
}

export async function listHelmObjects(
  client: KubeClient,
  kind: HelmKind,
  namespace?: string,
): Promise<SourceRow[]> {
  const res = await client.raw({ method: "GET", path: helmPath(kind, namespace) });
  if (res.code === 404)
    throw new ClusterError(`${kind} objects are not served by this cluster: apply deploy/agent/crds.yaml`);
  if (res.code !== 200) throw apiError(`list ${kind}`, res.code, res.body);
  return (KubeList.parse(res.body).items ?? [])
    .map((i) => helmRowOf(kind, i as Listed))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

export { formatSourceRows as formatHelmRows };

/** `suspend|resume helmrelease`: the spec flag, and on resume a reconcile request; returns the request time. */
export async function setHelmReleaseSuspended(
  client: KubeClient,
  namespace: string,
  name: string,
  suspended: boolean,
  now = new Date(),
): Promise<string> {
  const what = `HelmRelease ${namespace}/${name}`;
  return await setSuspendedAt(client, helmPath("HelmRelease", namespace, name), what, suspended, now);
}

/** `reconcile helmrelease|source helm|source chart`: a `reconcile.fluxcd.io/requestedAt` request. */
export async function requestHelmReconcile(
  client: KubeClient,
  kind: HelmKind,
  namespace: string,
  name: string,
  now = new Date(),
): Promise<string> {
  return await requestReconcileAt(
    client,
    helmPath(kind, namespace, name),
    `${kind} ${namespace}/${name}`,
    now,
  );
}

/** Waits until the agent handled the request made at `at`; returns the object's row then. */
export async function waitHelmHandled(
  client: KubeClient,
  kind: HelmKind,
  namespace: string,
  name: string,
  at: string,
  timeoutMs: number,
): Promise<SourceRow> {
  const what = `${kind} ${namespace}/${name}`;
  const rowOf = (obj: unknown) => helmRowOf(kind, obj as Listed);
  return await waitHandledAt(client, helmPath(kind, namespace, name), what, at, timeoutMs, rowOf, 500);
}
