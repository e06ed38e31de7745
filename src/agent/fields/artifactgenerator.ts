/**
 * source.extensions.fluxcd.io/v1beta1 ArtifactGenerator: every spec field of
 * Flux's served version (github.com/fluxcd/source-watcher/api/v2 v2.2.4,
 * the newest that builds with Go 1.26), honoured or refused.
 */
import type { FieldTable } from "./support.ts";

export const ARTIFACT_GENERATOR_FIELDS: FieldTable = {
  commonMetadata: "honoured",
  "commonMetadata.annotations": "honoured",
  "commonMetadata.labels": "honoured",
  sources: "honoured",
  "sources.alias": "honoured",
  "sources.kind": "honoured",
  "sources.name": "honoured",
  "sources.namespace": "honoured",
  pathPattern: { refused: "generating one artifact per matched directory is not implemented" },
  artifacts: "honoured",
  "artifacts.name": "honoured",
  "artifacts.revision": "honoured",
  "artifacts.originRevision": "honoured",
  "artifacts.copy": "honoured",
  "artifacts.copy.from": "honoured",
  "artifacts.copy.to": "honoured",
  "artifacts.copy.exclude": "honoured",
  "artifacts.copy.strategy": {
    refused: "only the Overwrite strategy is implemented (Merge and Extract are not)",
    accepts: ["Overwrite"],
  },
};
