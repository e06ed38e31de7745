/**
 * The pure rules of Helm charts in OCI registries, table-tested against
 * what Helm and Flux document: `+` stored as `_` in tags, version picking
 * from tags (exact tag first, then the newest in the range), the chart
 * layer of a manifest, and helm-controller's chart version marked with the
 * source digest for a chartRef to an OCIRepository or ExternalArtifact.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { chartFilesIn, digestedChartVersion, tracksRevisionDigest } from "../../src/agent/helm/chartref.ts";
import { chartVersionToTag, selectOciChartVersion, tagToChartVersion } from "../../src/agent/helm/repo.ts";
import { ArtifactError } from "../../src/errors.ts";
import {
  HELM_CHART_CONTENT_MEDIA_TYPE,
  HELM_CONFIG_MEDIA_TYPE,
  helmChartLayer,
} from "../../src/registry/artifact.ts";

const D = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

describe("OCI chart tags", () => {
  it.each([
    ["1.2.3+build.7", "1.2.3_build.7"],
    ["1.2.3", "1.2.3"],
    ["0.1.0-rc.1+meta", "0.1.0-rc.1_meta"],
  ])("version %s is stored under tag %s, and read back", (version, tag) => {
    expect(chartVersionToTag(version)).toBe(tag);
    expect(tagToChartVersion(tag)).toBe(version);
  });

  const tags = ["1.0.0", "1.1.0_build.7", "2.0.0", "1.2.0-rc.1", "latest", "sha256-abc.sig", "v1.0.5"];
  it.each([
    ["", "2.0.0", "no version: the newest stable"],
    ["*", "2.0.0", "star: the newest stable"],
    ["1.x", "1.1.0+build.7", "a range: the newest in it, build metadata read back from `_`"],
    ["~1.0.0", "v1.0.5", "a leading v is a version too"],
    [">=1.2.0-0 <2.0.0", "1.2.0-rc.1", "prereleases only when the range names one"],
    ["1.1.0+build.7", "1.1.0+build.7", "an exact version wins outright"],
    ["1.1.0_build.7", "1.1.0+build.7", "so does its tag, as an image policy writes it"],
    ["2.0.0", "2.0.0", "an exact version"],
  ])("version %j picks %s (%s)", (range, want) => {
    expect(selectOciChartVersion(tags, "greeter", range)).toBe(want);
  });

  it.each([
    [["latest", "main"], "", 'no chart version of "greeter" found in the OCI repository'],
    [tags, "9.x", 'no version of chart "greeter" matches "9.x"'],
    [tags, "not a range !", 'version "not a range !" is not a semver range'],
  ])("tags %j with version %j fail: %s", (list, range, message) => {
    expect(() => selectOciChartVersion(list, "greeter", range)).toThrow(message);
  });
});

describe("the chart layer of a manifest", () => {
  const config = { mediaType: HELM_CONFIG_MEDIA_TYPE, digest: D, size: 10 };
  const chart = { mediaType: HELM_CHART_CONTENT_MEDIA_TYPE, digest: D, size: 100 };
  const prov = { mediaType: "application/vnd.cncf.helm.chart.provenance.v1.prov", digest: D, size: 5 };
  it("is the one chart content layer, a provenance layer beside it", () => {
    expect(helmChartLayer({ config, layers: [prov, chart] }, "chart x")).toEqual(chart);
  });
  it.each([
    [
      { config: { mediaType: "application/vnd.cncf.flux.config.v1+json" }, layers: [chart] },
      "is not a Helm chart",
    ],
    [{ config, layers: [prov] }, "has 0 chart layers"],
    [{ config, layers: [chart, chart] }, "has 2 chart layers"],
  ])("refuses %j: %s", (manifest, message) => {
    expect(() => helmChartLayer(manifest, "chart x")).toThrow(ArtifactError);
    expect(() => helmChartLayer(manifest, "chart x")).toThrow(message);
  });
});

describe("chartRef: the chart version marked with the source digest (helm-controller)", () => {
  it.each([
    ["6.5.3", `6.5.3@${D}`, "6.5.3+0123456789ab", "tag@digest: the digest's first 12 hex digits"],
    [
      "6.5.3+old",
      `6.5.3_old@${D}`,
      "6.5.3+0123456789ab",
      "build metadata replaced, `_` in the tag read as `+`",
    ],
    ["v1.0.0-rc.1", `1.0.0-rc.1@${D}`, "1.0.0-rc.1+0123456789ab", "canonical form, prerelease kept"],
    ["1.0.0", D, "1.0.0+0123456789ab", "a digest alone"],
    ["1.0.0", `latest@${D}`, "1.0.0+0123456789ab", "a tag that is not a version: the digest"],
  ])("chart %s at %s is released as %s (%s)", (version, revision, want) => {
    expect(digestedChartVersion(version, revision)).toBe(want);
  });
  it.each([
    ["1.0.0", `2.0.0@${D}`, "artifact revision 2.0.0 does not match chart version 1.0.0"],
    ["1.0.0", "sha256:abc", "invalid artifact revision sha256:abc"],
    ["not-a-version", D, "invalid chart version not-a-version"],
  ])("chart %s at %s is refused: %s", (version, revision, message) => {
    expect(() => digestedChartVersion(version, revision)).toThrow(message);
  });
  it.each([
    ["OCIRepository", `1.0.0@${D}`, true],
    ["ExternalArtifact", `latest@${D}`, true],
    ["ExternalArtifact", "1.0.0", false],
    ["HelmChart", "1.0.0", false],
  ])("%s at %s tracks its digest: %s", (kind, revision, want) => {
    expect(tracksRevisionDigest(kind, revision)).toBe(want);
  });
});

describe("chartRef: where the chart is in an artifact", () => {
  const root = mkdtempSync(join(tmpdir(), "shipmate-chartref-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const tree = (name: string, files: Record<string, string>) => {
    const dir = join(root, name);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, ".."), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  };
  const chartYaml = "apiVersion: v2\nname: demo\nversion: 1.0.0\n";
  it.each([
    ["at the root", { "Chart.yaml": chartYaml, "values.yaml": "a: 1\n" }],
    [
      "in the one top-level directory (an extracted helm chart layer)",
      { "demo/Chart.yaml": chartYaml, "demo/values.yaml": "a: 1\n" },
    ],
  ])("is found %s", (_what, files) => {
    const got = chartFilesIn(tree(_what.replace(/\W+/g, "-"), files), "artifact");
    expect(got.map((f) => f.path).sort()).toEqual(["Chart.yaml", "values.yaml"]);
  });
  it.each([
    ["nothing", { "deploy/app.yaml": "kind: ConfigMap\n" }, "holds no Helm chart"],
    ["two charts", { "a/Chart.yaml": chartYaml, "b/Chart.yaml": chartYaml }, "holds 2 charts (a, b)"],
  ])("refuses an artifact with %s", (what, files, message) => {
    expect(() => chartFilesIn(tree(`bad-${what.replace(/\W+/g, "-")}`, files), "artifact")).toThrow(message);
  });
});
