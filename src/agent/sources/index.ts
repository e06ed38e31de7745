/**
 * Source kinds the agent fetches, by `kind`: a Kustomization's (or a
 * HelmRelease's, an ArtifactGenerator's) `sourceRef.kind` is looked up here.
 * A kind is added by writing its handler (./handler.ts) and one line below.
 */
import { type BucketLimits, bucketHandler, DEFAULT_BUCKET_LIMITS } from "./bucket.ts";
import { externalArtifactHandler } from "./external.ts";
import { gitRepositoryHandler } from "./git.ts";
import type { SourceHandler } from "./handler.ts";
import { helmChartHandler } from "./helm-chart.ts";
import { helmRepositoryHandler } from "./helm-repository.ts";
import { DEFAULT_OCI_LIMITS, type OciLimits, ociRepositoryHandler } from "./oci.ts";

export interface SourceHandlerOptions {
  /** Bounds on an OCIRepository's layer (compressed, and once extracted). */
  oci?: Partial<OciLimits>;
  /** Bounds on a Bucket's listing (objects) and download (bytes). */
  bucket?: Partial<BucketLimits>;
}

/** Every handler, configured (the agent's size and count limits reach the handlers here). */
// biome-ignore lint/suspicious/noExplicitAny: each handler is typed by its own spec; the map holds them all
export function sourceHandlers(opts: SourceHandlerOptions = {}): ReadonlyMap<string, SourceHandler<any>> {
  return new Map(
    [
      gitRepositoryHandler,
      ociRepositoryHandler({ ...DEFAULT_OCI_LIMITS, ...opts.oci }),
      bucketHandler({ ...DEFAULT_BUCKET_LIMITS, ...opts.bucket }),
      externalArtifactHandler,
      helmRepositoryHandler,
      helmChartHandler,
    ].map((h) => [h.kind, h as SourceHandler<unknown>]),
  );
}

// biome-ignore lint/suspicious/noExplicitAny: each handler is typed by its own spec; the map holds them all
export const SOURCE_HANDLERS: ReadonlyMap<string, SourceHandler<any>> = sourceHandlers();

/** Whether a Kustomization can render from this kind (its artifact is a tree of manifests). */
export function isSourceKind(kind: string | undefined): boolean {
  return kind !== undefined && SOURCE_HANDLERS.get(kind)?.holds === "manifests";
}

/** The kinds a Kustomization's sourceRef may name, for messages. */
export function manifestSourceKinds(): string[] {
  return [...SOURCE_HANDLERS.values()].filter((h) => h.holds === "manifests").map((h) => h.kind);
}
