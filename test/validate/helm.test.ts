/**
 * `shipmate validate` renders HelmReleases whose chart it can reach with the
 * real helm and schema-checks what they would install: charts from a chart
 * repository on 127.0.0.1 (`helm repo index`, as real ones) and a chart at
 * a path of the tree. A render failure is one problem line naming the file
 * and the HelmRelease; a chart it cannot reach is a note, not a failure.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { stringify } from "yaml";
import { validateTree } from "../../src/validate/validate.ts";
import { runCli } from "../helpers/cli.ts";
import { type ChartServer, type ChartSource, startChartServer, writeChart } from "../infra/charts.ts";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

let charts: ChartServer;
let repoUrl: string;
const dirs: string[] = [];

const webChart = (version: string): ChartSource => ({
  name: "web",
  version,
  values: { replicas: 1, fail: false },
  templates: {
    "deployment.yaml": `{{- if .Values.fail }}{{ fail "web: fail is set" }}{{- end }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, image: nginx }]
`,
  },
});

beforeAll(async () => {
  charts = await startChartServer();
  const repo = charts.repository("validate");
  repo.publish(webChart("1.0.0"));
  repoUrl = repo.url;
});
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await charts?.stop();
});

const helmRepository = (name: string, spec: object) => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "HelmRepository",
  metadata: { name, namespace: "apps" },
  spec: { interval: "10m", ...spec },
});
const helmRelease = (name: string, chartSpec: object, values?: object) => ({
  apiVersion: "helm.toolkit.fluxcd.io/v2",
  kind: "HelmRelease",
  metadata: { name, namespace: "apps" },
  spec: { interval: "10m", chart: { spec: chartSpec }, ...(values ? { values } : {}) },
});

function tree(files: Record<string, object[]>): string {
  const dir = mkdtempSync(join(tmpdir(), "shipmate-validate-helm-"));
  dirs.push(dir);
  for (const [f, docs] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), docs.map((d) => `---\n${stringify(d)}`).join(""));
  }
  return dir;
}
const lines = (ps: { file: string; line?: number; message: string }[]) =>
  ps.map((p) => `${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`);

describe("validate renders HelmReleases", () => {
  it("a chart from a repository renders; its objects are schema-checked and blamed on the HelmRelease", async () => {
    const dir = tree({
      "apps/repo.yaml": [helmRepository("charts", { url: repoUrl })],
      "apps/good.yaml": [
        helmRelease("good", {
          chart: "web",
          version: "1.x",
          sourceRef: { kind: "HelmRepository", name: "charts" },
        }),
      ],
      "apps/bad.yaml": [
        helmRelease(
          "bad",
          { chart: "web", sourceRef: { kind: "HelmRepository", name: "charts" } },
          { replicas: "many" },
        ),
      ],
    });
    const report = await validateTree(dir);
    expect(report.stats.charts).toBe(2);
    expect(lines(report.problems)).toEqual([
      "apps/bad.yaml:2: Deployment/bad: spec.replicas: must be integer (as built from chart web of HelmRelease/bad)",
    ]);
    expect(report.unrendered).toEqual([]);
  });

  it("a chart at a path of the tree that fails to render: one line, file and HelmRelease; unreachable charts are notes", async () => {
    const dir = tree({
      "apps/local.yaml": [
        helmRelease(
          "local",
          { chart: "./charts/web", sourceRef: { kind: "GitRepository", name: "flux-system" } },
          { fail: true },
        ),
      ],
      "apps/private.yaml": [
        helmRepository("private", { url: repoUrl, secretRef: { name: "creds" } }),
        helmRelease("private", { chart: "web", sourceRef: { kind: "HelmRepository", name: "private" } }),
      ],
      "apps/gone.yaml": [
        helmRepository("gone", { url: "http://127.0.0.1:9/charts" }),
        helmRelease("gone", { chart: "web", sourceRef: { kind: "HelmRepository", name: "gone" } }),
      ],
      "apps/missing-version.yaml": [
        helmRepository("charts", { url: repoUrl }),
        helmRelease("missing", {
          chart: "web",
          version: "9.x",
          sourceRef: { kind: "HelmRepository", name: "charts" },
        }),
      ],
    });
    writeChart(join(dir, "charts"), webChart("0.1.0"));
    const report = await validateTree(dir);
    const problems = lines(report.problems);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(
      /^apps\/local\.yaml:2: HelmRelease\/local: helm template failed: .*web: fail is set$/,
    );
    expect(problems[1]).toMatch(
      /^apps\/missing-version\.yaml:\d+: HelmRelease\/missing: helm template failed: .*9\.x/,
    );
    for (const p of problems) expect(p).not.toContain(tmpdir());
    expect(lines(report.unrendered)).toEqual([
      expect.stringMatching(
        /^apps\/gone\.yaml:\d+: HelmRelease\/gone: chart not rendered: web could not be fetched: .*127\.0\.0\.1:9/,
      ),
      expect.stringMatching(
        /^apps\/private\.yaml:\d+: HelmRelease\/private: chart not rendered: HelmRepository private needs credentials$/,
      ),
    ]);

    const r = await runCli(["validate", dir]);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split("\n")).toHaveLength(2);
    expect(r.stderr).toMatch(
      /^2 problem\(s\): .*\n.*gone\.yaml:\d+: note: HelmRelease\/gone: chart not rendered/,
    );
  });
});
