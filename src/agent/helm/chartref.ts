/**
 * A HelmRelease's `chartRef` to a source that is not a HelmChart — an
 * OCIRepository (a chart pushed with `helm push`, or any artifact holding a
 * chart) or an ExternalArtifact (a chart an ArtifactGenerator composed) —
 * made into a chart directory Helm installs, as helm-controller does: the
 * chart is found in the artifact (at its root, in its one top-level
 * directory, or as its one chart archive), and its version gets the first
 * 12 hex digits of the artifact's digest as build metadata
 * (`6.5.3+0a1b2c3d4e5f`), so a new artifact under the same chart version is
 * still an upgrade. A tag that names another version than Chart.yaml is
 * refused, as helm-controller refuses it. The prepared directory is reused
 * while the source's revision and digest stay the same.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { compareVersions, parseLooseVersion } from "../../policy/semver.ts";
import type { Artifact } from "../git-source.ts";
import { prepareChart, readChartDir } from "../sources/helm-chart.ts";
import { tagToChartVersion } from "./repo.ts";
import { ChartArchiveError, chartRoot, readChartArchive, type TarEntry } from "./tar.ts";

/** A chart a chartRef source cannot give: helm-controller's `ChartMutateError` / `ArtifactFailed`. */
export class ChartRefError extends Error {
  override name = "ChartRefError";
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** The kinds whose artifact revision carries a digest the chart version is marked with. */
export function tracksRevisionDigest(kind: string, revision: string): boolean {
  if (kind === "OCIRepository") return true;
  // An ExternalArtifact's revision may be a plain version: only a digest is tracked.
  return kind === "ExternalArtifact" && revision.includes(":");
}

/** `<algorithm>:<hex>` → the first 12 hex digits, or why the revision is unusable. */
function digestPrefix(digest: string, revision: string): string {
  const pair = digest.split(":");
  if (pair.length !== 2 || (pair[1] ?? "").length < 12)
    throw new ChartRefError("ChartMutateError", `invalid artifact revision ${revision}`);
  return (pair[1] ?? "").slice(0, 12);
}

/**
 * The version a chart is released under when its source revision carries
 * a digest (helm-controller's mutateChartWithSourceRevision): a
 * `<tag>@<digest>` revision whose tag is a version must name the chart's
 * version; the version's build metadata becomes the digest's first 12 hex
 * digits. Masterminds' canonical form, without a leading `v`.
 */
export function digestedChartVersion(chartVersion: string, revision: string): string {
  const v = parseLooseVersion(chartVersion);
  if (!v) throw new ChartRefError("ChartMutateError", `invalid chart version ${chartVersion}`);
  let digest = revision;
  const at = revision.split("@");
  if (revision.includes("@")) {
    const tagVersion = parseLooseVersion(tagToChartVersion(at[0] ?? ""));
    if (tagVersion) {
      if (at.length !== 2 || compareVersions(tagVersion, v) !== 0)
        throw new ChartRefError(
          "ChartMutateError",
          `artifact revision ${at[0]} does not match chart version ${chartVersion}`,
        );
      digest = at[1] ?? "";
    }
  }
  const sha = digestPrefix(digest, revision);
  return `${v.major}.${v.minor}.${v.patch}${v.pre ? `-${v.pre}` : ""}+${sha}`;
}

/** The chart's files in a source tree: at its root, in its one top-level directory, or its one `.tgz`. */
export function chartFilesIn(dir: string, where: string): TarEntry[] {
  if (existsSync(join(dir, "Chart.yaml"))) return readChartDir(dir, ".");
  const top = readdirSync(dir).filter((n) => !n.startsWith("."));
  const dirs = top.filter(
    (n) => lstatSync(join(dir, n)).isDirectory() && existsSync(join(dir, n, "Chart.yaml")),
  );
  if (dirs.length === 1) return readChartDir(dir, dirs[0] ?? "");
  const archives = top.filter((n) => n.endsWith(".tgz") && lstatSync(join(dir, n)).isFile());
  if (dirs.length === 0 && archives.length === 1) {
    const entries = readChartArchive(readFileSync(join(dir, archives[0] ?? "")), {
      maxBytes: 100 * 1024 * 1024,
      maxEntries: 10_000,
    });
    const root = chartRoot(entries);
    return entries.map((e) => ({ path: e.path.slice(root.length + 1), data: e.data }));
  }
  throw new ChartRefError(
    "ArtifactFailed",
    dirs.length > 1
      ? `${where} holds ${dirs.length} charts (${dirs.join(", ")}); a chartRef needs exactly one`
      : `${where} holds no Helm chart (no Chart.yaml at its root or in a top-level directory, and no chart archive)`,
  );
}

/** Chart.yaml's name and version. */
function chartMeta(files: readonly TarEntry[], where: string): { name: string; version: string } {
  const file = files.find((f) => f.path === "Chart.yaml");
  let doc: { name?: unknown; version?: unknown } | undefined;
  try {
    doc = file ? parse(file.data.toString("utf8")) : undefined;
  } catch {
    doc = undefined;
  }
  if (typeof doc?.name !== "string" || !doc.name || doc.version === undefined || doc.version === null)
    throw new ChartRefError("ArtifactFailed", `${where}: Chart.yaml needs a name and a version`);
  return { name: doc.name, version: String(doc.version) };
}

/** Prepared charts, one directory per HelmRelease source, reused while the source stays the same. */
export class SourceCharts {
  private dir: string | undefined;
  private readonly held = new Map<string, { key: string; artifact: Artifact }>();

  /** `dir`: where charts are prepared; default a private temporary directory, made on first use. */
  constructor(dir?: string) {
    this.dir = dir;
  }

  /**
   * The chart of a chartRef source's artifact, ready for Helm: its revision
   * is the version it is released under, its metadata the chart's name.
   */
  prepare(ref: { kind: string; namespace: string; name: string }, source: Artifact): Artifact {
    const id = `${ref.kind}/${ref.namespace}/${ref.name}`;
    const key = `${source.revision}|${source.digest ?? ""}`;
    const held = this.held.get(id);
    if (held?.key === key && existsSync(join(held.artifact.dir, "Chart.yaml"))) return held.artifact;
    const where = `${ref.kind} ${ref.namespace}/${ref.name} at ${source.revision}`;
    let files: TarEntry[];
    try {
      files = chartFilesIn(source.dir, where);
    } catch (err) {
      if (err instanceof ChartArchiveError)
        throw new ChartRefError("ArtifactFailed", `${where}: ${err.message}`);
      throw err;
    }
    const meta = chartMeta(files, where);
    const version = tracksRevisionDigest(ref.kind, source.revision)
      ? digestedChartVersion(meta.version, source.revision)
      : meta.version;
    const prepared = prepareChart(files, { version });
    const dir = this.dir ?? mkdtempSync(join(tmpdir(), "shipmate-chartref-"));
    this.dir = dir;
    const base = join(dir, createHash("sha256").update(id).digest("hex").slice(0, 16));
    const target = join(base, "chart");
    const staging = join(base, ".chart.tmp");
    rmSync(staging, { recursive: true, force: true });
    for (const f of prepared) {
      const full = join(staging, f.path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, f.data);
    }
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
    const artifact: Artifact = { revision: version, dir: target, metadata: { chart: meta.name, version } };
    this.held.set(id, { key, artifact });
    return artifact;
  }
}
