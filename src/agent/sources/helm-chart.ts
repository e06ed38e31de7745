/**
 * HelmChart (source.toolkit.fluxcd.io/v1): one chart version made ready for
 * Helm. From a HelmRepository: the newest version in the `version` range is
 * picked from the stored index, downloaded (bounded, digest-checked) and
 * unpacked safely (no `../` paths, no links). From an OCI HelmRepository:
 * the tags of `<url>/<chart>` are listed through the registry client (auth,
 * budget, retries), the version picked as source-controller picks it, the
 * tag's manifest digest asked with one HEAD (an unchanged digest stops
 * there), then the Helm chart layer pulled and checked against its digest. From a GitRepository: the
 * chart directory at `chart` is copied out of the checkout (no links, no
 * escaping the repository). `valuesFiles` replace the chart's default
 * values, merged in order. The artifact is the chart directory; its
 * revision is the version source-controller would publish it under.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { parse, parseDocument, stringify } from "yaml";
import { z } from "zod";
import { ArtifactError, describeError, RegistryError } from "../../errors.ts";
import { Duration, SOURCE_API_VERSION } from "../../kube/schema.ts";
import { helmChartLayer } from "../../registry/artifact.ts";
import { RegistryClient } from "../../registry/client.ts";
import type { ImageReference } from "../../registry/reference.ts";
import type { FieldTable } from "../fields/support.ts";
import type { Artifact } from "../git-source.ts";
import { getBounded, HttpFetchError } from "../helm/http.ts";
import {
  chartDownloadUrl,
  chartVersionToTag,
  IndexError,
  parseIndex,
  selectChartVersion,
  selectOciChartVersion,
  sendCredentials,
} from "../helm/repo.ts";
import { chartRevision, mergeValues, type Values } from "../helm/rules.ts";
import { ChartArchiveError, chartRoot, readChartArchive, safeEntryPath, type TarEntry } from "../helm/tar.ts";
import { parseDuration } from "../kustomization.ts";
import {
  type FetchContext,
  parseWith,
  SourceError,
  type SourceFetcher,
  type SourceHandler,
} from "./handler.ts";
import {
  HelmRepositorySpec,
  INDEX_FILE,
  ociRepositoryCredentials,
  repositoryAuth,
} from "./helm-repository.ts";
import { clientSpent, ociRepository } from "./oci.ts";

/** source-controller's default `--helm-chart-max-size`. */
export const MAX_CHART_BYTES = 10 * 1024 * 1024;
/** What a chart may expand to: Helm's own loader caps a chart at 100 MiB. */
const MAX_CHART_FILES_BYTES = 100 * 1024 * 1024;

/** source.toolkit.fluxcd.io/v1 HelmChart spec fields (source-controller v1.9.6 CRD), honoured or refused. */
export const HELM_CHART_FIELDS: FieldTable = {
  chart: "honoured",
  version: "honoured",
  sourceRef: "honoured",
  "sourceRef.apiVersion": "honoured",
  "sourceRef.kind": "honoured",
  "sourceRef.name": "honoured",
  interval: "honoured",
  reconcileStrategy: "honoured",
  valuesFiles: "honoured",
  ignoreMissingValuesFiles: "honoured",
  suspend: "honoured",
  verify: { refused: "chart signature verification (cosign, notation) is not implemented" },
};

/** source.toolkit.fluxcd.io/v1 HelmChartSpec. */
export const HelmChartSpec = z.looseObject({
  chart: z.string().min(1).max(2048),
  version: z.string().optional(),
  sourceRef: z.looseObject({
    kind: z.enum(["HelmRepository", "GitRepository", "Bucket"]),
    name: z.string().min(1),
    apiVersion: z.string().optional(),
  }),
  interval: Duration,
  reconcileStrategy: z.enum(["ChartVersion", "Revision"]).optional(),
  valuesFiles: z.array(z.string().min(1)).optional(),
  ignoreMissingValuesFiles: z.boolean().optional(),
  suspend: z.boolean().optional(),
});
export type HelmChartSpec = z.infer<typeof HelmChartSpec>;

/** Chart.yaml, the fields the agent reads. */
const ChartMetadata = z.looseObject({ name: z.string().min(1), version: z.string().min(1) });

/** sha256 over every file's path and content, in path order: equal charts, equal digests. */
export function filesDigest(files: readonly TarEntry[]): string {
  const h = createHash("sha256");
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(`${f.path}\0${f.data.length}\0`);
    h.update(f.data);
  }
  return `sha256:${h.digest("hex")}`;
}

/** A chart directory in a checkout, read as entries; symbolic links and paths leaving the repository are refused. */
export function readChartDir(root: string, chartPath: string): TarEntry[] {
  const rel = safeEntryPath(chartPath);
  const dir = resolve(root, rel);
  if (dir !== resolve(root) && !dir.startsWith(resolve(root) + sep))
    throw new ChartArchiveError(`chart path "${chartPath}" leaves the repository`);
  if (!existsSync(dir) || !lstatSync(dir).isDirectory())
    throw new ChartArchiveError(`chart path "${chartPath}" is not a directory in the repository`);
  const out: TarEntry[] = [];
  let total = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      const st = lstatSync(full);
      const path = relative(dir, full).split(sep).join("/");
      if (st.isSymbolicLink()) throw new ChartArchiveError(`chart file "${path}" is a symbolic link`);
      if (st.isDirectory()) walk(full);
      else if (st.isFile()) {
        total += st.size;
        if (total > MAX_CHART_FILES_BYTES)
          throw new ChartArchiveError(`chart is larger than ${MAX_CHART_FILES_BYTES} bytes`);
        out.push({ path, data: readFileSync(full) });
      } else throw new ChartArchiveError(`chart file "${path}" is not a regular file`);
    }
  };
  walk(dir);
  return out;
}

/**
 * The chart's files made ready: `valuesFiles` merged in order replace
 * values.yaml, and Chart.yaml carries the published version.
 */
export function prepareChart(
  files: readonly TarEntry[],
  opts: { version: string; valuesFiles?: readonly string[]; ignoreMissing?: boolean },
): TarEntry[] {
  let out = [...files];
  const chartYaml = out.find((f) => f.path === "Chart.yaml");
  if (!chartYaml) throw new ChartArchiveError("chart has no Chart.yaml");
  if (opts.valuesFiles?.length) {
    let merged: Values = {};
    for (const vf of opts.valuesFiles) {
      const path = safeEntryPath(vf);
      const file = out.find((f) => f.path === path);
      if (!file) {
        if (opts.ignoreMissing) continue;
        throw new ChartArchiveError(`values file "${vf}" not found in the chart`);
      }
      let doc: unknown;
      try {
        doc = parse(file.data.toString("utf8"));
      } catch (err) {
        throw new ChartArchiveError(
          `values file "${vf}" is not YAML: ${(err as Error).message.split("\n")[0]}`,
        );
      }
      if (doc === null || doc === undefined) continue;
      if (typeof doc !== "object" || Array.isArray(doc))
        throw new ChartArchiveError(`values file "${vf}" is not a map`);
      merged = mergeValues(merged, doc as Values);
    }
    out = out.filter((f) => f.path !== "values.yaml");
    out.push({ path: "values.yaml", data: Buffer.from(stringify(merged)) });
  }
  const doc = parseDocument(chartYaml.data.toString("utf8"));
  if (doc.get("version") !== opts.version) {
    doc.set("version", opts.version);
    out = out.map((f) => (f.path === "Chart.yaml" ? { path: f.path, data: Buffer.from(doc.toString()) } : f));
  }
  return out;
}

function chartMetadata(files: readonly TarEntry[], where: string): z.infer<typeof ChartMetadata> {
  const file = files.find((f) => f.path === "Chart.yaml");
  if (!file) throw new ChartArchiveError(`${where} has no Chart.yaml`);
  let doc: unknown;
  try {
    doc = parse(file.data.toString("utf8"));
  } catch (err) {
    throw new ChartArchiveError(`${where}: Chart.yaml is not YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const parsed = ChartMetadata.safeParse(doc);
  if (!parsed.success) throw new ChartArchiveError(`${where}: Chart.yaml needs a name and a version`);
  return parsed.data;
}

class HelmChartFetcher implements SourceFetcher<HelmChartSpec> {
  private readonly dir: string;
  private client: RegistryClient | undefined;
  /** What the registry client was built with (credentials' content, insecure, timeout). */
  private clientKey = "";
  /** The OCI chart held: the manifest it came from, so an unchanged digest costs one HEAD. */
  private ociPulled: { url: string; digest: string; generation: number | undefined } | undefined;
  constructor(dir: string) {
    this.dir = dir;
  }

  async fetch(spec: HelmChartSpec, ctx: FetchContext): Promise<Artifact> {
    const ref = { kind: spec.sourceRef.kind, namespace: ctx.namespace, name: spec.sourceRef.name };
    if (ref.kind === "Bucket")
      throw new SourceError(
        "SourceUnavailable",
        "charts from a Bucket are not supported by the shipmate agent",
        { stalled: true },
      );
    const source = await ctx.resolve(ref);
    if (!source.ok) throw new SourceError("SourceUnavailable", source.message, { stalled: source.stalled });
    const generation = spec.valuesFiles?.length ? (ctx.object.metadata.generation ?? 1) : undefined;
    try {
      if (ref.kind === "HelmRepository" && source.artifact.static)
        return await this.fromOciRepository(spec, ctx, generation);
      return ref.kind === "HelmRepository"
        ? await this.fromRepository(spec, ctx, source.artifact, generation)
        : this.publish(spec, readChartDir(source.artifact.dir, spec.chart), {
            strategy: spec.reconcileStrategy,
            commit: source.artifact.commit,
            valuesFilesGeneration: generation,
          });
    } catch (err) {
      if (err instanceof ChartArchiveError || err instanceof IndexError)
        throw new SourceError("ChartPullFailed", err.message, { stalled: err instanceof ChartArchiveError });
      if (err instanceof HttpFetchError) throw new SourceError("ChartPullFailed", err.message);
      if (err instanceof ArtifactError)
        throw new SourceError("ChartPullFailed", err.message, { stalled: true });
      if (err instanceof RegistryError)
        throw new SourceError(
          err.status === 401 || err.status === 403 ? "AuthenticationFailed" : "ChartPullFailed",
          describeError(err),
        );
      throw err;
    }
  }

  /** The HelmRepository a chart names, its spec checked (an OCI one is read, not fetched). */
  private repository(spec: HelmChartSpec, ctx: FetchContext): HelmRepositorySpec {
    const repoObject = ctx.lookup({
      kind: "HelmRepository",
      namespace: ctx.namespace,
      name: spec.sourceRef.name,
    });
    const repo = HelmRepositorySpec.safeParse(repoObject?.spec ?? {});
    if (!repo.success)
      throw new SourceError("SourceUnavailable", `HelmRepository ${spec.sourceRef.name} has no valid spec`);
    return repo.data;
  }

  private async registryClient(
    repo: HelmRepositorySpec,
    registry: string,
    ctx: FetchContext,
  ): Promise<RegistryClient> {
    const auth = await ociRepositoryCredentials(repo, ctx);
    const timeoutMs = parseDuration(repo.timeout ?? "60s");
    const key = JSON.stringify([auth?.key ?? "", timeoutMs, repo.insecure === true, registry]);
    if (this.client && key === this.clientKey && !clientSpent(this.client)) return this.client;
    this.client = new RegistryClient({
      credentials: auth?.credentials ?? { get: async () => undefined },
      // No registry cache on disk: tags move, and tokens live in memory only.
      cacheDir: false,
      timeoutMs,
      insecureRegistries: repo.insecure ? [registry] : [],
      userAgent: "shipmate-agent",
    });
    this.clientKey = key;
    return this.client;
  }

  /**
   * A chart from an OCI HelmRepository: `<url>/<chart>`'s tags listed, the
   * version picked, its manifest digest asked (HEAD); the same digest as
   * held stops there. Otherwise the manifest is read, checked to be a Helm
   * chart, and its chart layer downloaded within the size limit and
   * checked against its digest before it is unpacked.
   */
  private async fromOciRepository(
    spec: HelmChartSpec,
    ctx: FetchContext,
    generation: number | undefined,
  ): Promise<Artifact> {
    const repo = this.repository(spec, ctx);
    const url = `${repo.url.replace(/\/+$/, "")}/${spec.chart}`;
    let ref: ImageReference;
    try {
      ref = ociRepository(url);
    } catch (err) {
      throw new SourceError("URLInvalid", `chart URL '${url}': ${describeError(err)}`, { stalled: true });
    }
    const client = await this.registryClient(repo, ref.registry, ctx);
    const { tags } = await client.listTags(ref);
    const version = selectOciChartVersion(tags, spec.chart, spec.version ?? "");
    const tag = chartVersionToTag(version);
    const { digest } = await client.resolveDigest({ ...ref, tag }, { platform: false });
    const held = this.ociPulled;
    if (
      held &&
      held.url === url &&
      held.digest === digest &&
      held.generation === generation &&
      ctx.previous &&
      existsSync(join(ctx.previous.dir, "Chart.yaml"))
    )
      return ctx.previous;
    const what = `chart ${url}:${tag}`;
    const pulled = await client.manifest({ ...ref, digest });
    if (pulled.index) throw new ArtifactError(`${what} is an image index, not a Helm chart`);
    const layer = helmChartLayer(pulled.manifest, what);
    if (layer.size > MAX_CHART_BYTES)
      throw new ChartArchiveError(
        `${what}: the chart layer is ${layer.size} bytes, more than ${MAX_CHART_BYTES}`,
      );
    mkdirSync(this.dir, { recursive: true });
    const tmp = await mkdtemp(join(this.dir, ".pull-"));
    let tgz: Buffer;
    try {
      const file = join(tmp, "chart.tgz");
      await client.downloadBlob({ ...ref, digest }, layer.digest, file, MAX_CHART_BYTES);
      tgz = readFileSync(file);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    const entries = readChartArchive(tgz, { maxBytes: MAX_CHART_FILES_BYTES, maxEntries: 10_000 });
    const root = chartRoot(entries);
    const files = entries.map((e) => ({ path: e.path.slice(root.length + 1), data: e.data }));
    const meta = chartMetadata(files, what);
    if (meta.name !== spec.chart)
      throw new ChartArchiveError(`${what} holds chart "${meta.name}", not "${spec.chart}"`);
    const artifact = this.publish(spec, files, { valuesFilesGeneration: generation });
    this.ociPulled = { url, digest, generation };
    return artifact;
  }

  private async fromRepository(
    spec: HelmChartSpec,
    ctx: FetchContext,
    index: Artifact,
    generation: number | undefined,
  ): Promise<Artifact> {
    const entry = selectChartVersion(
      parseIndex(readFileSync(join(index.dir, INDEX_FILE), "utf8")),
      spec.chart,
      spec.version ?? "*",
    );
    const revision = chartRevision(entry.version, { valuesFilesGeneration: generation });
    // Charts in a repository are immutable: the version already unpacked needs no download.
    if (ctx.previous?.revision === revision && existsSync(join(ctx.previous.dir, "Chart.yaml")))
      return ctx.previous;
    const repo = this.repository(spec, ctx);
    const url = chartDownloadUrl(repo.url, entry);
    const auth = sendCredentials(repo.url, url, repo.passCredentials === true)
      ? await repositoryAuth(repo, ctx)
      : undefined;
    const tgz = await getBounded(url, {
      auth,
      timeoutMs: parseDuration(repo.timeout ?? "60s"),
      maxBytes: MAX_CHART_BYTES,
      what: `download chart ${entry.name} ${entry.version}`,
    });
    if (entry.digest) {
      const got = createHash("sha256").update(tgz).digest("hex");
      if (got !== entry.digest.replace(/^sha256:/, ""))
        throw new ChartArchiveError(
          `chart ${entry.name} ${entry.version}: digest mismatch (index says ${entry.digest}, got ${got})`,
        );
    }
    const entries = readChartArchive(tgz, { maxBytes: MAX_CHART_FILES_BYTES, maxEntries: 10_000 });
    const root = chartRoot(entries);
    const files = entries.map((e) => ({ path: e.path.slice(root.length + 1), data: e.data }));
    const meta = chartMetadata(files, `chart ${entry.name} ${entry.version}`);
    if (meta.name !== spec.chart)
      throw new ChartArchiveError(`chart archive for "${spec.chart}" holds chart "${meta.name}"`);
    return this.publish(spec, files, { valuesFilesGeneration: generation });
  }

  /** Writes the prepared chart to a fresh directory and swaps it in whole. */
  private publish(spec: HelmChartSpec, raw: TarEntry[], opts: Parameters<typeof chartRevision>[1]): Artifact {
    const meta = chartMetadata(raw, `chart ${spec.chart}`);
    const revision = chartRevision(meta.version, opts);
    const files = prepareChart(raw, {
      version: revision,
      valuesFiles: spec.valuesFiles,
      ignoreMissing: spec.ignoreMissingValuesFiles,
    });
    const target = join(this.dir, "chart");
    const staging = join(this.dir, ".chart.tmp");
    rmSync(staging, { recursive: true, force: true });
    for (const f of files) {
      const full = join(staging, f.path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, f.data);
    }
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
    return {
      revision,
      digest: filesDigest(files),
      dir: target,
      metadata: { chart: meta.name, version: revision },
    };
  }

  async clean(): Promise<void> {}
}

export const helmChartHandler: SourceHandler<HelmChartSpec> = {
  kind: "HelmChart",
  apiVersion: SOURCE_API_VERSION,
  plural: "helmcharts",
  failureReason: "ChartPullFailed",
  writesStatus: true,
  holds: "chart",
  fields: HELM_CHART_FIELDS,
  parse: (spec) => parseWith(HelmChartSpec, spec),
  interval: (spec) => spec.interval,
  suspended: (spec) => spec.suspend === true,
  signature: (spec) => spec,
  open: (dir) => new HelmChartFetcher(dir),
};
