/**
 * ExternalArtifact (source.toolkit.fluxcd.io/v1): an artifact another
 * producer stores and describes in the object's status. The agent's only
 * producer is its ArtifactGenerator reconciler (../generators.ts), which
 * builds into this handler's directory and then writes the status; the
 * handler serves that tree when the status's digest matches what was built
 * here. The directory is the agent's own: a status naming any other place
 * is never read.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { SOURCE_API_VERSION } from "../../kube/schema.ts";
import { listFiles } from "../artifacts/build.ts";
import type { FieldTable } from "../fields/support.ts";
import type { Artifact } from "../git-source.ts";
import {
  type FetchContext,
  parseWith,
  SourceError,
  type SourceFetcher,
  type SourceHandler,
} from "./handler.ts";

/** source.toolkit.fluxcd.io/v1 ExternalArtifact spec fields (source-controller v1.9.6 CRD). */
export const EXTERNAL_ARTIFACT_FIELDS: FieldTable = {
  sourceRef: "honoured",
  "sourceRef.apiVersion": "honoured",
  "sourceRef.kind": "honoured",
  "sourceRef.name": "honoured",
  "sourceRef.namespace": "honoured",
};

const ARTIFACT_GENERATOR_GROUP = "source.extensions.fluxcd.io";

const ExternalArtifactSpec = z.looseObject({
  sourceRef: z
    .looseObject({
      apiVersion: z.string().optional(),
      kind: z.string(),
      name: z.string(),
      namespace: z.string().optional(),
    })
    .optional(),
});
type ExternalArtifactSpec = z.infer<typeof ExternalArtifactSpec>;

/** What the generator records next to the tree it built: checked before the tree is served. */
export const BuildManifest = z.object({ digest: z.string(), files: z.array(z.string()) });
export type BuildManifest = z.infer<typeof BuildManifest>;

export const MANIFEST_FILE = "manifest.json";
export const TREE_DIR = "tree";

const StatusArtifact = z.looseObject({
  revision: z.string(),
  digest: z.string().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
});

export function readManifest(dir: string): BuildManifest | undefined {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    // Unreadable or cut short: the artifact is not built, and the generator builds it again.
    return undefined;
  }
  const parsed = BuildManifest.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

class ExternalArtifactFetcher implements SourceFetcher<ExternalArtifactSpec> {
  private readonly dir: string;
  private manifest: BuildManifest | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  async fetch(spec: ExternalArtifactSpec, ctx: FetchContext): Promise<Artifact> {
    const producer = spec.sourceRef;
    if (
      producer?.kind !== "ArtifactGenerator" ||
      !(producer.apiVersion ?? ARTIFACT_GENERATOR_GROUP).startsWith(ARTIFACT_GENERATOR_GROUP)
    )
      throw new SourceError(
        "UnsupportedSource",
        `ExternalArtifact ${ctx.namespace}/${ctx.name} is produced by ${producer?.kind ?? "nothing"}; the shipmate agent reads only artifacts its ArtifactGenerators build`,
        { stalled: true },
      );
    const status = ctx.object.status ?? {};
    const conditions = (status.conditions ?? []) as { type?: string; status?: string; message?: string }[];
    const ready = conditions.find((c) => c.type === "Ready");
    const artifact = StatusArtifact.safeParse(status.artifact);
    if (!artifact.success || ready?.status === "False")
      throw new SourceError(
        "ArtifactUnavailable",
        `ExternalArtifact ${ctx.namespace}/${ctx.name} has no artifact${ready?.message ? `: ${ready.message}` : " yet"}`,
      );
    const manifest = readManifest(this.dir);
    if (!manifest || manifest.digest !== artifact.data.digest)
      throw new SourceError(
        "ArtifactUnavailable",
        `ExternalArtifact ${ctx.namespace}/${ctx.name} at ${artifact.data.revision} is not built in this agent's storage yet (ArtifactGenerator ${producer.namespace ?? ctx.namespace}/${producer.name})`,
      );
    this.manifest = manifest;
    return {
      revision: artifact.data.revision,
      digest: manifest.digest,
      dir: join(this.dir, TREE_DIR),
      ...(artifact.data.metadata ? { metadata: artifact.data.metadata } : {}),
    };
  }

  /** Removes what a render added (a generated kustomization.yaml): the tree is as built again. */
  async clean(): Promise<void> {
    const tree = join(this.dir, TREE_DIR);
    if (!this.manifest || !existsSync(tree)) return;
    const built = new Set(this.manifest.files);
    for (const f of listFiles(tree)) if (!built.has(f)) rmSync(join(tree, f), { force: true });
  }
}

export const externalArtifactHandler: SourceHandler<ExternalArtifactSpec> = {
  kind: "ExternalArtifact",
  apiVersion: SOURCE_API_VERSION,
  plural: "externalartifacts",
  failureReason: "ArtifactUnavailable",
  // Its producer (the ArtifactGenerator reconciler) writes the status, as in Flux.
  writesStatus: false,
  holds: "manifests",
  fields: EXTERNAL_ARTIFACT_FIELDS,
  parse: (spec) => parseWith(ExternalArtifactSpec, spec),
  // No interval: its status is read on every pass that needs it (a local read).
  interval: () => undefined,
  suspended: () => false,
  signature: (spec) => spec.sourceRef ?? null,
  open: (dir) => new ExternalArtifactFetcher(dir),
};
