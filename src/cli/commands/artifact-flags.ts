/** The flags `push artifact` and `build artifact` share: what goes into the artifact's annotations. */
import { ArtifactCreatedError, UsageError } from "../../errors.ts";
import type { ArtifactMeta } from "../../registry/artifact.ts";
import type { CliIO } from "../io.ts";

export const artifactFlags = {
  path: { type: "string" },
  source: { type: "string" },
  revision: { type: "string" },
  created: { type: "string" },
} as const;

/**
 * The annotations: `--created`, else `SOURCE_DATE_EPOCH` (the reproducible
 * builds convention), else none given (the reproducible epoch).
 */
export function artifactMeta(
  values: { source?: string | undefined; revision?: string | undefined; created?: string | undefined },
  io: Pick<CliIO, "env">,
): ArtifactMeta {
  let created = values.created;
  const epoch = io.env.SOURCE_DATE_EPOCH;
  if (created === undefined && epoch !== undefined) {
    if (!/^\d+$/.test(epoch))
      throw new UsageError(`SOURCE_DATE_EPOCH must be seconds since 1970, got "${epoch}"`);
    created = new Date(Number(epoch) * 1000).toISOString().replace(/\.000Z$/, "Z");
  }
  const meta: ArtifactMeta = {};
  if (values.source) meta.source = values.source;
  if (values.revision) meta.revision = values.revision;
  if (created !== undefined) meta.created = created;
  return meta;
}

/** An ArtifactError about a bad `--created` is a usage mistake (exit 2), not a failed job. */
export function asUsage(err: unknown): never {
  if (err instanceof ArtifactCreatedError) throw new UsageError(`--created: ${err.message}`);
  throw err;
}
