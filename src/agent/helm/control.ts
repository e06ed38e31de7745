/**
 * `shipmate get helmreleases` and `get sources helm|chart`: the Helm kinds
 * listed as `flux get` shows them (revision, suspended, Ready, message).
 */
import { formatSourceRows, type SourceRow } from "../../bootstrap/control.ts";
import { ClusterError } from "../../errors.ts";
import { apiError, type KubeClient } from "../client.ts";
import { type Condition, KubeList } from "../schema.ts";
import { helmChartHandler } from "../sources/helm-chart.ts";
import { helmRepositoryHandler } from "../sources/helm-repository.ts";
import { sourcePath } from "../sources.ts";
import { helmReleasePath } from "./release.ts";

export type HelmKind = "HelmRelease" | "HelmRepository" | "HelmChart";

interface Listed {
  metadata: { name?: string; namespace?: string };
  spec?: { url?: unknown; suspend?: unknown; chart?: unknown };
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
    ready: ready?.status ?? "Unknown",
    reason: ready?.reason ?? "",
    message: ready?.message ?? "waiting to be reconciled",
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
