/**
 * Source kinds the agent fetches, by `kind`: a Kustomization's (or a
 * HelmRelease's, an ArtifactGenerator's) `sourceRef.kind` is looked up here.
 * A kind is added by writing its handler (./handler.ts) and one line below.
 */
import { gitRepositoryHandler } from "./git.ts";
import type { SourceHandler } from "./handler.ts";
import { helmChartHandler } from "./helm-chart.ts";
import { helmRepositoryHandler } from "./helm-repository.ts";

// biome-ignore lint/suspicious/noExplicitAny: each handler is typed by its own spec; the map holds them all
export const SOURCE_HANDLERS: ReadonlyMap<string, SourceHandler<any>> = new Map(
  [gitRepositoryHandler, helmRepositoryHandler, helmChartHandler].map((h) => [h.kind, h]),
);

/** Whether a Kustomization can render from this kind (its artifact is a tree of manifests). */
export function isSourceKind(kind: string | undefined): boolean {
  return kind !== undefined && SOURCE_HANDLERS.get(kind)?.holds === "manifests";
}

/** The kinds a Kustomization's sourceRef may name, for messages. */
export function manifestSourceKinds(): string[] {
  return [...SOURCE_HANDLERS.values()].filter((h) => h.holds === "manifests").map((h) => h.kind);
}
