/**
 * The CLI's side of Flux's image objects: `shipmate get images
 * repository|policy|update|all` lists them as `flux get images` shows them
 * (for a repository the last scan, for a policy the latest image, for an
 * automation its last run), in the rows every `get` table prints;
 * `reconcile image`, `suspend|resume image` and `create image` write the
 * requests and objects the agent answers.
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
import { REQUESTED_AT_ANNOTATION } from "../../kube/objects.ts";
import { type Condition, KubeList } from "../../kube/schema.ts";
import { IMAGE_API_VERSION } from "./spec.ts";

export type ImageKind = "ImageRepository" | "ImagePolicy" | "ImageUpdateAutomation";

interface Listed {
  metadata: { name?: string; namespace?: string };
  spec?: { image?: unknown; suspend?: unknown };
  status?: {
    conditions?: Condition[];
    canonicalImageName?: string;
    lastScanResult?: { scanTime?: string; tagCount?: number };
    latestRef?: { name?: string; tag?: string; digest?: string };
    lastAutomationRunTime?: string;
    lastPushCommit?: string;
    lastHandledReconcileAt?: string;
  };
}

const PLURAL: Record<ImageKind, string> = {
  ImageRepository: "imagerepositories",
  ImagePolicy: "imagepolicies",
  ImageUpdateAutomation: "imageupdateautomations",
};

/**
 * A repository's revision column is its last scan time; a policy's is the
 * image it selected; an automation's is its last run (Flux's LAST RUN).
 */
export function imageRowOf(kind: ImageKind, obj: Listed): SourceRow {
  const ready = obj.status?.conditions?.find((c) => c.type === "Ready");
  const latest = obj.status?.latestRef;
  return {
    namespace: obj.metadata.namespace ?? "",
    name: obj.metadata.name ?? "",
    url:
      kind === "ImageRepository"
        ? (obj.status?.canonicalImageName ?? (typeof obj.spec?.image === "string" ? obj.spec.image : ""))
        : kind === "ImagePolicy"
          ? (latest?.name ?? "")
          : (obj.status?.lastPushCommit ?? ""),
    revision:
      kind === "ImageRepository"
        ? (obj.status?.lastScanResult?.scanTime ?? "")
        : kind === "ImageUpdateAutomation"
          ? (obj.status?.lastAutomationRunTime ?? "")
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
    throw new ClusterError(
      `${kind} objects are not served by this cluster: start the agent with --image-automation or apply deploy/agent/crds.yaml`,
    );
  if (res.code !== 200) throw apiError(`list ${kind}`, res.code, res.body);
  return (KubeList.parse(res.body).items ?? [])
    .map((i) => imageRowOf(kind, i as Listed))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

export { formatSourceRows as formatImageRows };

export function imagePath(kind: ImageKind, namespace?: string, name?: string): string {
  const ns = namespace ? `namespaces/${encodeURIComponent(namespace)}/` : "";
  return `/apis/${IMAGE_API_VERSION}/${ns}${PLURAL[kind]}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

/** `reconcile image repository|update`: a `reconcile.fluxcd.io/requestedAt` request; returns its value. */
export async function requestImageReconcile(
  client: KubeClient,
  kind: ImageKind,
  namespace: string,
  name: string,
  now = new Date(),
): Promise<string> {
  return await requestReconcileAt(
    client,
    imagePath(kind, namespace, name),
    `${kind} ${namespace}/${name}`,
    now,
  );
}

/** `suspend|resume image …`: `spec.suspend`, and on resume a reconcile request (returned) as Flux's CLI makes. */
export async function setImageSuspended(
  client: KubeClient,
  kind: ImageKind,
  namespace: string,
  name: string,
  suspended: boolean,
  now = new Date(),
): Promise<string> {
  const what = `${kind} ${namespace}/${name}`;
  return await setSuspendedAt(client, imagePath(kind, namespace, name), what, suspended, now);
}

/** Waits until the agent has handled the request made at `at` (status.lastHandledReconcileAt). */
export async function waitImageHandled(
  client: KubeClient,
  kind: ImageKind,
  namespace: string,
  name: string,
  at: string,
  timeoutMs: number,
): Promise<SourceRow> {
  const what = `${kind} ${namespace}/${name}`;
  const rowOf = (obj: unknown) => imageRowOf(kind, obj as Listed);
  return await waitHandledAt(client, imagePath(kind, namespace, name), what, at, timeoutMs, rowOf, 300);
}

/** `create image …` without --export: creates the object, or replaces its spec (and asks for a reconcile). */
export async function applyImageObject(
  client: KubeClient,
  obj: { kind: ImageKind; metadata: { name: string; namespace: string }; spec: object },
  now = new Date(),
): Promise<{ action: "created" | "updated"; requestedAt: string }> {
  const { name, namespace } = obj.metadata;
  const requestedAt = now.toISOString();
  const annotations = { [REQUESTED_AT_ANNOTATION]: requestedAt };
  const path = imagePath(obj.kind, namespace, name);
  const what = `${obj.kind} ${namespace}/${name}`;
  const res = await client.raw({ method: "GET", path });
  if (res.code === 404) {
    const created = await client.raw({
      method: "POST",
      path: imagePath(obj.kind, namespace),
      query: { fieldManager: "shipmate-cli" },
      body: { apiVersion: IMAGE_API_VERSION, ...obj, metadata: { ...obj.metadata, annotations } },
    });
    if (created.code === 404)
      throw new ClusterError(
        `${what}: the cluster does not serve ${obj.kind} objects; start the agent with --image-automation or apply deploy/agent/crds.yaml`,
      );
    if (created.code < 200 || created.code > 299)
      throw apiError(`create ${what}`, created.code, created.body);
    return { action: "created", requestedAt };
  }
  if (res.code !== 200) throw apiError(what, res.code, res.body);
  const current = res.body as {
    metadata: { resourceVersion?: string; annotations?: Record<string, string> };
  };
  const put = await client.raw({
    method: "PUT",
    path,
    query: { fieldManager: "shipmate-cli" },
    body: {
      ...(res.body as object),
      metadata: { ...current.metadata, annotations: { ...current.metadata.annotations, ...annotations } },
      spec: obj.spec,
    },
  });
  if (put.code < 200 || put.code > 299) throw apiError(`update ${what}`, put.code, put.body);
  return { action: "updated", requestedAt };
}
