/**
 * OCIRepository (source.toolkit.fluxcd.io/v1): one layer of an OCI artifact
 * (what `flux push artifact` and `shipmate push artifact` publish), pulled
 * through the registry client (auth, retries, budget) and extracted into a
 * directory the agent owns. As source-controller does, the digest a tag
 * points to is asked with one manifest HEAD; when it is the revision held,
 * nothing else is requested. The tarball is extracted defensively: a path
 * outside the artifact, a link, too many bytes or a layer of the wrong type
 * fail the fetch with one line, and the previous tree stays in use.
 */
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { ArtifactError, describeError, RegistryTooLargeError } from "../../errors.ts";
import { Duration, SOURCE_API_VERSION } from "../../kube/schema.ts";
import { compileGoRegexp } from "../../policy/regex.ts";
import { parseOciUrl } from "../../registry/artifact.ts";
import { RegistryClient } from "../../registry/client.ts";
import { type CredentialProvider, dockerConfigCredentials } from "../../registry/credentials.ts";
import type { ImageReference } from "../../registry/reference.ts";
import { validateDigest } from "../../registry/reference.ts";
import { DockerConfig, type ImageManifest } from "../../registry/schemas.ts";
import { extractTarball } from "../../registry/tar.ts";
import type { FieldTable } from "../fields/support.ts";
import { type Artifact, pickSemverTag } from "../git-source.ts";
import { parseDuration } from "../kustomization.ts";
import {
  type FetchContext,
  parseWith,
  SourceError,
  type SourceFetcher,
  type SourceHandler,
} from "./handler.ts";
import { applySourceIgnore } from "./ignore.ts";
import { pruneTree, treePaths } from "./tree.ts";

/** source.toolkit.fluxcd.io/v1 OCIRepository spec fields (source-controller v1.9.6 CRD), honoured or refused. */
export const OCI_REPOSITORY_FIELDS: FieldTable = {
  url: "honoured",
  interval: "honoured",
  timeout: "honoured",
  suspend: "honoured",
  insecure: "honoured",
  ref: "honoured",
  "ref.tag": "honoured",
  "ref.semver": "honoured",
  "ref.semverFilter": "honoured",
  "ref.digest": "honoured",
  layerSelector: "honoured",
  "layerSelector.mediaType": "honoured",
  "layerSelector.operation": "honoured",
  secretRef: "honoured",
  "secretRef.name": "honoured",
  provider: { refused: "only generic (Secret) authentication is implemented", accepts: ["generic"] },
  certSecretRef: { refused: "client TLS certificates and custom CAs are not implemented" },
  proxySecretRef: { refused: "pulling through a proxy is not implemented" },
  serviceAccountName: { refused: "image pull secrets of a service account are not read" },
  ignore: "honoured",
  verify: { refused: "cosign/notation signature verification is not implemented" },
};

const OciRef = z.looseObject({
  tag: z.string().optional(),
  semver: z.string().optional(),
  semverFilter: z.string().optional(),
  digest: z.string().optional(),
});

/** source.toolkit.fluxcd.io/v1 OCIRepositorySpec, the fields the agent reads. */
export const OCIRepositorySpec = z.looseObject({
  url: z.string().regex(/^oci:\/\/.+$/, 'an OCI URL such as "oci://ghcr.io/org/manifests"'),
  interval: Duration,
  timeout: Duration.optional(),
  suspend: z.boolean().optional(),
  insecure: z.boolean().optional(),
  ref: OciRef.optional(),
  layerSelector: z
    .looseObject({
      mediaType: z.string().optional(),
      operation: z.enum(["extract", "copy"]).optional(),
    })
    .optional(),
  secretRef: z.looseObject({ name: z.string().min(1) }).optional(),
  ignore: z.string().optional(),
});
export type OCIRepositorySpec = z.infer<typeof OCIRepositorySpec>;

/** What to resolve, with Flux's precedence: digest over semver over tag; no ref is the `latest` tag. */
export type OciTarget = { digest: string } | { semver: string; filter?: string } | { tag: string };

export function ociTarget(spec: Pick<OCIRepositorySpec, "ref">): OciTarget {
  const ref = spec.ref;
  if (ref?.digest) return { digest: ref.digest };
  if (ref?.semver)
    return ref.semverFilter ? { semver: ref.semver, filter: ref.semverFilter } : { semver: ref.semver };
  return { tag: ref?.tag || "latest" };
}

/**
 * The repository an OCIRepository's URL names, or why it is unusable (a
 * tag or digest in the URL: Flux wants those in `ref`).
 */
export function ociRepository(url: string): ImageReference {
  const ref = parseOciUrl(url);
  if (ref.digest) throw new ArtifactError(`URL must not contain a digest; use spec.ref.digest`);
  if (ref.tag)
    throw new ArtifactError(`URL must not contain a tag; remove ':${ref.tag}' and use spec.ref.tag`);
  return ref;
}

/**
 * The layer to pull, as source-controller selects it: the first of the
 * selector's media type, or the first layer when no selector says one.
 */
export function selectLayer(
  manifest: Pick<ImageManifest, "layers">,
  mediaType: string | undefined,
): { digest: string; size: number; mediaType?: string } {
  if (manifest.layers.length === 0) throw new ArtifactError("no layers found in artifact");
  if (!mediaType) return manifest.layers[0]!;
  const found = manifest.layers.find((l) => l.mediaType === mediaType);
  if (!found) {
    const has = [...new Set(manifest.layers.map((l) => l.mediaType ?? "(none)"))].join(", ");
    throw new ArtifactError(
      `failed to find layer with media type '${mediaType}' in artifact (it has: ${has})`,
    );
  }
  return found;
}

/** Registry credentials from a Flux OCI Secret (`kubernetes.io/dockerconfigjson`). */
export function secretCredentials(data: Record<string, string>, where: string): CredentialProvider {
  const raw = data[".dockerconfigjson"];
  if (raw === undefined) {
    const has = Object.keys(data).sort().join(", ") || "no keys";
    throw new Error(
      `${where} has ${has}; the shipmate agent reads ".dockerconfigjson" (kubernetes.io/dockerconfigjson)`,
    );
  }
  let parsed: DockerConfig;
  try {
    parsed = DockerConfig.parse(JSON.parse(Buffer.from(raw, "base64").toString("utf8")));
  } catch {
    throw new Error(`${where}: ".dockerconfigjson" is not a Docker config JSON document`);
  }
  // Credential helpers run programs: a Secret must never make the agent execute one.
  return dockerConfigCredentials(parsed, where, { helpers: false });
}

/**
 * The registry client's request budget bounds its whole life, and a
 * source's client lives as long as the agent: one that has spent most of it
 * is replaced (its cached tokens with it), so polling never exhausts it.
 */
export function clientSpent(client: RegistryClient): boolean {
  return client.stats().total >= 5_000;
}

export interface OciLimits {
  /** Compressed size of the selected layer. Default 256 MiB. */
  layerBytes: number;
  /** Bytes once extracted. Default 1 GiB. */
  extractedBytes: number;
}

export const DEFAULT_OCI_LIMITS: OciLimits = {
  layerBytes: 256 * 1024 * 1024,
  extractedBytes: 1024 * 1024 * 1024,
};

class OciFetcher implements SourceFetcher<OCIRepositorySpec> {
  private readonly dir: string;
  private readonly limits: OciLimits;
  private client: RegistryClient | undefined;
  /** What the client was built with (credentials' content, timeout, insecure): a change builds a new one. */
  private clientKey = "";
  private current: Artifact | undefined;
  /** Paths of the extracted tree: whatever else appears (a render's generated files) is removed by clean(). */
  private extracted = new Set<string>();

  constructor(dir: string, limits: OciLimits) {
    this.dir = dir;
    this.limits = limits;
  }

  private async clientFor(
    spec: OCIRepositorySpec,
    repo: ImageReference,
    ctx: FetchContext,
  ): Promise<RegistryClient> {
    let credentials: CredentialProvider | undefined;
    let secretKey = "";
    if (spec.secretRef) {
      const name = spec.secretRef.name;
      try {
        const data = await ctx.secret(name);
        secretKey = JSON.stringify(data);
        credentials = secretCredentials(data, `secret ${ctx.namespace}/${name}`);
      } catch (err) {
        throw new SourceError("AuthenticationFailed", describeError(err), { cause: err });
      }
    }
    const timeoutMs = parseDuration(spec.timeout ?? "60s");
    const key = JSON.stringify([secretKey, timeoutMs, spec.insecure === true, repo.registry]);
    if (this.client && key === this.clientKey && !clientSpent(this.client)) return this.client;
    this.client = new RegistryClient({
      credentials: credentials ?? { get: async () => undefined },
      // The agent keeps no registry cache on disk: tags move, and its tokens live in memory only.
      cacheDir: false,
      timeoutMs,
      insecureRegistries: spec.insecure ? [repo.registry] : [],
      userAgent: "shipmate-agent",
    });
    this.clientKey = key;
    return this.client;
  }

  async fetch(spec: OCIRepositorySpec, ctx: FetchContext): Promise<Artifact> {
    let repo: ImageReference;
    try {
      repo = ociRepository(spec.url);
    } catch (err) {
      throw new SourceError("URLInvalid", `URL validation failed for '${spec.url}': ${describeError(err)}`, {
        stalled: true,
      });
    }
    const target = ociTarget(spec);
    if ("digest" in target) {
      const why = validateDigest(target.digest);
      if (why)
        throw new SourceError("InvalidSpec", `spec.ref.digest "${target.digest}": ${why}`, { stalled: true });
    }
    const client = await this.clientFor(spec, repo, ctx);
    const tag = await this.resolveTag(client, repo, target);
    let revision: string;
    let digest: string;
    if ("digest" in target) {
      digest = target.digest;
      revision = digest;
    } else {
      try {
        digest = (await client.resolveDigest({ ...repo, tag }, { platform: false })).digest;
      } catch (err) {
        throw new SourceError(
          "OCIArtifactPullFailed",
          `failed to determine artifact digest: ${describeError(err)}`,
          {
            cause: err,
          },
        );
      }
      revision = `${tag}@${digest}`;
    }
    // Steady state: the revision held is the one upstream; the HEAD above was the only request.
    if (this.current?.revision === revision && existsSync(this.current.dir)) return this.current;
    this.current = await this.pull(client, { ...repo, digest }, revision, spec);
    return this.current;
  }

  private async resolveTag(client: RegistryClient, repo: ImageReference, target: OciTarget): Promise<string> {
    if ("tag" in target) return target.tag;
    if ("digest" in target) return "";
    let tags: string[];
    try {
      tags = (await client.listTags(repo)).tags;
    } catch (err) {
      throw new SourceError(
        "ReadOperationFailed",
        `failed to determine the artifact tag for 'oci://${repo.registry}/${repo.repository}': ${describeError(err)}`,
        { cause: err },
      );
    }
    let filtered = tags;
    if (target.filter) {
      let re: ReturnType<typeof compileGoRegexp>;
      try {
        re = compileGoRegexp(target.filter);
      } catch (err) {
        throw new SourceError("InvalidSpec", `spec.ref.semverFilter: ${(err as Error).message}`, {
          stalled: true,
        });
      }
      filtered = tags.filter((t) => re.test(t));
    }
    let picked: string | undefined;
    try {
      picked = pickSemverTag(filtered, target.semver);
    } catch (err) {
      throw new SourceError(
        "InvalidSpec",
        `semver '${target.semver}' parse error: ${(err as Error).message}`,
        {
          stalled: true,
        },
      );
    }
    if (!picked)
      throw new SourceError(
        "ReadOperationFailed",
        `failed to determine the artifact tag for 'oci://${repo.registry}/${repo.repository}': no match found for semver: ${target.semver}`,
      );
    return picked;
  }

  /** GET manifest by digest, select the layer, stream it to disk within the limit, extract; swap in only when whole. */
  private async pull(
    client: RegistryClient,
    ref: ImageReference,
    revision: string,
    spec: OCIRepositorySpec,
  ): Promise<Artifact> {
    const pullFailed = (err: unknown) =>
      new SourceError(
        "OCIArtifactPullFailed",
        `failed to pull artifact from '${spec.url}': ${describeError(err)}`,
        {
          cause: err,
        },
      );
    const layerFailed = (err: unknown) =>
      new SourceError("OCIArtifactLayerOperationFailed", `${revision}: ${describeError(err)}`, {
        cause: err,
      });
    let manifest: ImageManifest;
    try {
      const pulled = await client.manifest(ref);
      if (pulled.index)
        throw new ArtifactError(
          `${ref.digest} is an image index; an OCIRepository reads an artifact manifest`,
        );
      manifest = pulled.manifest;
    } catch (err) {
      if (err instanceof ArtifactError) throw layerFailed(err);
      throw pullFailed(err);
    }
    let layer: { digest: string; size: number };
    try {
      layer = selectLayer(manifest, spec.layerSelector?.mediaType);
      if (layer.size > this.limits.layerBytes)
        throw new ArtifactError(
          `layer ${layer.digest} is ${layer.size} bytes, more than the ${this.limits.layerBytes} allowed`,
        );
    } catch (err) {
      throw layerFailed(err);
    }
    await mkdir(this.dir, { recursive: true });
    const blob = join(this.dir, "layer.tgz");
    const staging = join(this.dir, "staging");
    const tree = join(this.dir, "tree");
    await rm(staging, { recursive: true, force: true });
    try {
      await client.downloadBlob(ref, layer.digest, blob, this.limits.layerBytes);
    } catch (err) {
      if (err instanceof RegistryTooLargeError) throw layerFailed(err);
      throw pullFailed(err);
    }
    let paths: string[];
    try {
      paths = await extractTarball(blob, staging, { maxBytes: this.limits.extractedBytes });
    } catch (err) {
      throw new SourceError(
        "OCIArtifactLayerOperationFailed",
        `failed to extract layer contents from artifact ${revision}: ${describeError(err)}`,
        { cause: err },
      );
    } finally {
      await rm(blob, { force: true });
    }
    // What source-controller leaves out when it archives an extracted layer: `.sourceignore`
    // files in it and spec.ignore, else Flux's default exclusions (./ignore.ts).
    if ((spec.layerSelector?.operation ?? "extract") === "extract") applySourceIgnore(staging, spec.ignore);
    await rm(tree, { recursive: true, force: true });
    await rename(staging, tree);
    this.extracted = treePaths(paths);
    return {
      revision,
      digest: layer.digest,
      dir: tree,
      ...(manifest.annotations && Object.keys(manifest.annotations).length
        ? { metadata: manifest.annotations }
        : {}),
    };
  }

  /** Removes whatever a render wrote into the tree (files the source did not hold). */
  async clean(): Promise<void> {
    pruneTree(this.current?.dir, this.extracted);
  }
}

export function ociRepositoryHandler(
  limits: OciLimits = DEFAULT_OCI_LIMITS,
): SourceHandler<OCIRepositorySpec> {
  return {
    kind: "OCIRepository",
    apiVersion: SOURCE_API_VERSION,
    plural: "ocirepositories",
    failureReason: "OCIArtifactPullFailed",
    writesStatus: true,
    holds: "manifests",
    fields: OCI_REPOSITORY_FIELDS,
    parse: (spec) => parseWith(OCIRepositorySpec, spec),
    interval: (spec) => spec.interval,
    suspended: (spec) => spec.suspend === true,
    signature: (spec) => ({
      url: spec.url,
      ref: ociTarget(spec),
      layer: {
        mediaType: spec.layerSelector?.mediaType ?? "",
        operation: spec.layerSelector?.operation ?? "extract",
      },
      secret: spec.secretRef?.name ?? null,
      insecure: spec.insecure === true,
      // A new rule set makes a new artifact, as Flux re-archives when spec.ignore changes.
      ignore: spec.ignore ?? null,
    }),
    open: (dir) => new OciFetcher(dir, limits),
  };
}
