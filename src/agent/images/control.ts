/**
 * `shipmate get images repository|policy|all`: Flux's image objects listed as
 * `flux get images` shows them (for a repository the last scan, for a policy
 * the latest image), in the rows every `get` table prints.
 */
import { formatSourceRows, type SourceRow } from "../../bootstrap/control.ts";
import { ClusterError } from "../../errors.ts";
import { apiError, type KubeClient } from "../../kube/client.ts";
import { type Condition, KubeList } from "../../kube/schema.ts";
import { IMAGE_API_VERSION } from "./spec.ts";

export type ImageKind = "ImageRepository" | "ImagePolicy";

interface Listed {
  metadata: { name?: string; namespace?: string };
  spec?: { image?: unknown; suspend?: unknown };
  status?: {
    conditions?: Condition[];
    canonicalImageName?: string;
    lastScanResult?: { scanTime?: string; tagCount?: number };
    latestRef?: { name?: string; tag?: string; digest?: string };
    lastHandledReconcileAt?: string;
  };
}

const PLURAL: Record<ImageKind, string> = {
  ImageRepository: "imagerepositories",
  ImagePolicy: "imagepolicies",
};

/** A repository's revision column is its last scan time; a policy's is the image it selected. */
export function imageRowOf(kind: ImageKind, obj: Listed): SourceRow {
  const ready = obj.status?.conditions?.find((c) => c.type === "Ready");
  const latest = obj.status?.latestRef;
  return {
    namespace: obj.metadata.namespace ?? "",
    name: obj.metadata.name ?? "",
    url:
      kind === "ImageRepository"
        ? (obj.status?.canonicalImageName ?? (typeof obj.spec?.image === "string" ? obj.spec.image : ""))
        : (latest?.name ?? ""),
    revision:
      kind === "ImageRepository"
        ? (obj.status?.lastScanResult?.scanTime ?? "")
        : latest?.tag
          ? `${latest.name}:${latest.tag}${latest.digest ? `@${latest.digest}` : ""}`
          : "",
    suspended: obj.spec?.suspend === true,
    ready: ready?.status ?? "Unknown",
    reason: ready?.reason ?? "",
    message: ready?.message ?? "waiting to be reconciled",
    lastHandledReconcileAt: obj.status?.lastHandledReconcileAt ?? "",
  };
}

export async function listImageObjects(
  client: KubeClient,
  kind: ImageKind,
  namespace?: string,
): Promise<SourceRow[]> {
  const path = `/apis/${IMAGE_API_VERSION}/${namespace ? `namespaces/${encodeURIComponent(namespace)}/` : ""}${PLURAL[kind]}`;
  const res = await client.raw({ method: "GET", path });
  if (res.code === 404)
    throw new ClusterError(`${kind} objects are not served by this cluster: install Flux's image CRDs`);
  if (res.code !== 200) throw apiError(`list ${kind}`, res.code, res.body);
  return (KubeList.parse(res.body).items ?? [])
    .map((i) => imageRowOf(kind, i as Listed))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

export { formatSourceRows as formatImageRows };
