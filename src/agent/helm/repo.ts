/**
 * A Helm chart repository's `index.yaml` (helm.sh/helm/v4/pkg/repo IndexFile):
 * parsed through a schema, a chart version picked from a semver range as
 * source-controller picks it, and the download URL resolved against the
 * repository URL. Pure.
 */
import { parse } from "yaml";
import { z } from "zod";
import {
  compareVersions,
  parseLooseVersion,
  parseSemverRange,
  type SemVersion,
} from "../../policy/semver.ts";

/** helm repo ChartVersion: Chart.yaml metadata plus `urls`, `digest`, `created`. */
export const ChartVersionEntry = z.looseObject({
  name: z.string(),
  version: z.string(),
  urls: z.array(z.string()).nullish(),
  digest: z.string().nullish(),
  created: z.string().nullish(),
  appVersion: z.string().nullish(),
});
export type ChartVersionEntry = z.infer<typeof ChartVersionEntry>;

/** helm repo IndexFile: `apiVersion: v1`, `entries` by chart name. */
export const RepositoryIndex = z.looseObject({
  apiVersion: z.string(),
  entries: z.record(z.string(), z.array(ChartVersionEntry).nullable()).nullish(),
  generated: z.string().nullish(),
});
export type RepositoryIndex = z.infer<typeof RepositoryIndex>;

export class IndexError extends Error {
  override name = "IndexError";
}

/** Parses `index.yaml` text (YAML or JSON, as Helm accepts both). */
export function parseIndex(text: string): RepositoryIndex {
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new IndexError(`index.yaml is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const parsed = RepositoryIndex.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new IndexError(
      `index.yaml is not a Helm repository index: ${issue?.path.join(".") || "document"}: ${issue?.message}`,
    );
  }
  if (parsed.data.apiVersion === "") throw new IndexError("index.yaml has no apiVersion");
  return parsed.data;
}

/**
 * The newest version of `chart` that satisfies `range` (`*` when empty:
 * the newest stable version); prereleases only when the range names one.
 */
export function selectChartVersion(index: RepositoryIndex, chart: string, range: string): ChartVersionEntry {
  const versions = index.entries?.[chart];
  if (!versions?.length) throw new IndexError(`chart "${chart}" not found in the repository index`);
  const wanted = range.trim() || "*";
  let constraint: ReturnType<typeof parseSemverRange>;
  try {
    constraint = parseSemverRange(wanted);
  } catch (err) {
    throw new IndexError(`version "${wanted}" is not a semver range: ${(err as Error).message}`);
  }
  let best: { entry: ChartVersionEntry; v: SemVersion } | undefined;
  for (const entry of versions) {
    const v = parseLooseVersion(entry.version);
    if (!v || !constraint.check(v)) continue;
    if (!best || compareVersions(v, best.v) > 0) best = { entry, v };
  }
  if (!best) throw new IndexError(`no version of chart "${chart}" matches "${wanted}"`);
  return best.entry;
}

/**
 * Where to download a chart version: its first URL, resolved against the
 * repository URL when relative (as `helm repo index --url` may omit).
 */
export function chartDownloadUrl(repoUrl: string, entry: ChartVersionEntry): URL {
  const first = entry.urls?.[0];
  if (!first) throw new IndexError(`chart "${entry.name}" version ${entry.version} has no download URL`);
  const base = repoUrl.endsWith("/") ? repoUrl : `${repoUrl}/`;
  try {
    return new URL(first, base);
  } catch {
    throw new IndexError(`chart "${entry.name}" version ${entry.version}: bad URL "${first}"`);
  }
}

/**
 * Whether the repository's credentials go with a download: always to the
 * repository's own host, to another host only with `passCredentials`
 * (Helm's `--pass-credentials`).
 */
export function sendCredentials(repoUrl: string, download: URL, passCredentials: boolean): boolean {
  if (passCredentials) return true;
  try {
    return new URL(repoUrl).host === download.host;
  } catch {
    return false;
  }
}

/**
 * An OCI tag as Helm reads it: OCI tags cannot hold `+`, so `helm push`
 * writes build metadata with `_` and Helm's registry client turns it back.
 */
export const tagToChartVersion = (tag: string): string => tag.replaceAll("_", "+");
export const chartVersionToTag = (version: string): string => version.replaceAll("+", "_");

/**
 * The chart version to pull from an OCI repository's tags, as
 * source-controller picks it: tags that are not semantic versions are
 * dropped (as Helm's registry client drops them); a version equal to
 * `version` (or whose tag is) wins outright; otherwise the newest version in the range (`*`, the
 * newest stable, when empty). Returns the version (with `+`), not the tag.
 */
export function selectOciChartVersion(tags: readonly string[], chart: string, range: string): string {
  const versions = tags.map(tagToChartVersion).filter((v) => parseLooseVersion(v) !== undefined);
  if (!versions.length) throw new IndexError(`no chart version of "${chart}" found in the OCI repository`);
  const wanted = range.trim();
  // The tag itself (`1.2.3_build.7`, what an image policy writes) names its version too.
  const exact = wanted ? versions.find((v) => v === wanted || chartVersionToTag(v) === wanted) : undefined;
  if (exact) return exact;
  let constraint: ReturnType<typeof parseSemverRange>;
  try {
    constraint = parseSemverRange(wanted || "*");
  } catch (err) {
    throw new IndexError(`version "${wanted}" is not a semver range: ${(err as Error).message}`);
  }
  let best: { version: string; v: SemVersion } | undefined;
  for (const version of versions) {
    const v = parseLooseVersion(version);
    if (!v || !constraint.check(v)) continue;
    if (!best || compareVersions(v, best.v) > 0) best = { version, v };
  }
  if (!best) throw new IndexError(`no version of chart "${chart}" matches "${wanted || "*"}"`);
  return best.version;
}
