/**
 * Flux OCI artifacts (what `flux push artifact` publishes and an
 * OCIRepository pulls): an OCI image manifest whose config has the media
 * type `application/vnd.cncf.flux.config.v1+json`, one layer of type
 * `application/vnd.cncf.flux.content.v1.tar+gzip` holding the directory as
 * a gzip'd tarball (./tar.ts), and the `org.opencontainers.image.created`,
 * `.source` and `.revision` annotations on the manifest (fluxcd/pkg/oci,
 * push.go and meta.go). Built reproducibly: the same tree, source, revision
 * and creation time give the same manifest digest.
 */
import { ArtifactCreatedError, ArtifactError, ImageReferenceError } from "../errors.ts";
import type { RegistryClient } from "./client.ts";
import { type ImageReference, parseReference } from "./reference.ts";
import { MediaType } from "./schemas.ts";
import { type BuiltTarball, buildTarball, sha256 } from "./tar.ts";

export const FLUX_CONFIG_MEDIA_TYPE = "application/vnd.cncf.flux.config.v1+json";
export const FLUX_CONTENT_MEDIA_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip";
export const SOURCE_ANNOTATION = "org.opencontainers.image.source";
export const REVISION_ANNOTATION = "org.opencontainers.image.revision";
export const CREATED_ANNOTATION = "org.opencontainers.image.created";
/** Helm charts in OCI registries (helm.sh/helm/v4/pkg/registry constants.go): what `helm push` writes. */
export const HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json";
export const HELM_CHART_CONTENT_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/** The chart layer type of Helm's pre-3.8 experimental OCI support, which Helm still pulls. */
export const HELM_LEGACY_CHART_MEDIA_TYPE = "application/tar+gzip";
/** The `created` a reproducible build gets when no time is given: what `flux push artifact --reproducible` writes. */
export const REPRODUCIBLE_CREATED = "1970-01-01T00:00:00Z";

export interface ArtifactMeta {
  /** Where the content comes from (a git URL): `org.opencontainers.image.source`. */
  source?: string;
  /** Its revision there (`main@sha1:…`, a commit): `org.opencontainers.image.revision`. */
  revision?: string;
  /** RFC 3339; default REPRODUCIBLE_CREATED. */
  created?: string;
}

export interface BuiltArtifact {
  layer: BuiltTarball;
  config: Buffer;
  manifest: Buffer;
  /** `sha256:<hex>` of the manifest: what the tag will point to. */
  digest: string;
}

/** `oci://host/repo[:tag][@digest]` → the reference; the scheme is required, as Flux requires it. */
export function parseOciUrl(url: string): ImageReference {
  if (!url.startsWith("oci://")) throw new ImageReferenceError(url, 'an OCI URL starts with "oci://"');
  return parseReference(url.slice("oci://".length));
}

/**
 * The chart layer of a Helm chart manifest, as Helm's registry client
 * checks it: the config must be Helm's, and exactly one layer the chart
 * (a provenance layer may sit beside it).
 */
export function helmChartLayer(
  manifest: {
    config: { mediaType?: string };
    layers: { mediaType?: string; digest: string; size: number }[];
  },
  what: string,
): { digest: string; size: number } {
  if (manifest.config.mediaType !== HELM_CONFIG_MEDIA_TYPE)
    throw new ArtifactError(
      `${what} is not a Helm chart: its config media type is "${manifest.config.mediaType ?? "(none)"}", not "${HELM_CONFIG_MEDIA_TYPE}"`,
    );
  const charts = manifest.layers.filter(
    (l) => l.mediaType === HELM_CHART_CONTENT_MEDIA_TYPE || l.mediaType === HELM_LEGACY_CHART_MEDIA_TYPE,
  );
  if (charts.length !== 1)
    throw new ArtifactError(
      `${what} has ${charts.length} chart layers (${HELM_CHART_CONTENT_MEDIA_TYPE}); a Helm chart has exactly one`,
    );
  return charts[0]!;
}

function checkCreated(created: string): string {
  // RFC 3339 with seconds, as Go's time.RFC3339 parses it for Flux.
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(created) ||
    Number.isNaN(Date.parse(created))
  )
    throw new ArtifactCreatedError(`created time "${created}" is not RFC 3339 (e.g. 2026-01-02T15:04:05Z)`);
  return created;
}

/** The manifest and config of a Flux artifact around an already built layer. */
export function artifactDocuments(layer: BuiltTarball, meta: ArtifactMeta): BuiltArtifact {
  const created = checkCreated(meta.created ?? REPRODUCIBLE_CREATED);
  // An OCI image config (image-spec config.md) as go-containerregistry writes Flux's: empty platform, one diff_id.
  const config = Buffer.from(
    JSON.stringify({
      architecture: "",
      created,
      os: "",
      rootfs: { type: "layers", diff_ids: [layer.diffId] },
      config: {},
    }),
  );
  const annotations: Record<string, string> = { [CREATED_ANNOTATION]: created };
  if (meta.revision) annotations[REVISION_ANNOTATION] = meta.revision;
  if (meta.source) annotations[SOURCE_ANNOTATION] = meta.source;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: FLUX_CONFIG_MEDIA_TYPE, size: config.length, digest: sha256(config) },
      layers: [{ mediaType: FLUX_CONTENT_MEDIA_TYPE, size: layer.data.length, digest: layer.digest }],
      annotations,
    }),
  );
  return { layer, config, manifest, digest: sha256(manifest) };
}

/** Archives `dir` and wraps it as a Flux artifact (nothing is sent anywhere). */
export async function buildArtifact(dir: string, meta: ArtifactMeta): Promise<BuiltArtifact> {
  return artifactDocuments(await buildTarball(dir), meta);
}

export interface PushResult {
  /** `host/repo:tag@sha256:…` */
  reference: string;
  digest: string;
  /** Blobs already in the repository, not sent again. */
  skippedBlobs: number;
  uploadedBlobs: number;
}

/**
 * Pushes a built artifact: each blob the repository lacks (one HEAD each
 * to find out), then the manifest under the reference's tag.
 */
export async function pushArtifact(
  client: RegistryClient,
  ref: ImageReference,
  artifact: BuiltArtifact,
): Promise<PushResult> {
  if (!ref.tag)
    throw new ImageReferenceError(
      `${ref.registry}/${ref.repository}`,
      "pushing needs a tag (oci://HOST/REPO:TAG)",
    );
  if (ref.digest)
    throw new ImageReferenceError(`${ref.registry}/${ref.repository}`, "push to a tag, not a digest");
  let skippedBlobs = 0;
  let uploadedBlobs = 0;
  for (const blob of [artifact.config, artifact.layer.data]) {
    const digest = sha256(blob);
    if (await client.hasBlob(ref, digest)) {
      skippedBlobs++;
      continue;
    }
    await client.uploadBlob(ref, digest, blob);
    uploadedBlobs++;
  }
  const digest = await client.putManifest(ref, artifact.manifest, MediaType.ociManifest);
  return {
    reference: `${ref.registry}/${ref.repository}:${ref.tag}@${digest}`,
    digest,
    skippedBlobs,
    uploadedBlobs,
  };
}
