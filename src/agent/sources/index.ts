/**
 * Source kinds the agent fetches, by `kind`: a Kustomization's (or a
 * HelmRelease's, an ArtifactGenerator's) `sourceRef.kind` is looked up here.
 * A kind is added by writing its handler (./handler.ts) and one line below.
 */
import { externalArtifactHandler } from "./external.ts";
import { gitRepositoryHandler } from "./git.ts";
import type { SourceHandler } from "./handler.ts";

// biome-ignore lint/suspicious/noExplicitAny: each handler is typed by its own spec; the map holds them all
export const SOURCE_HANDLERS: ReadonlyMap<string, SourceHandler<any>> = new Map(
  [gitRepositoryHandler, externalArtifactHandler].map((h) => [h.kind, h]),
);

export function isSourceKind(kind: string | undefined): boolean {
  return kind !== undefined && SOURCE_HANDLERS.has(kind);
}
