/**
 * `shipmate create source helm` and `create helmrelease` with `--export`:
 * the YAML `flux create … --export` writes for the same flags, and each bad
 * flag as one line with exit code 2. No server: nothing is applied here
 * (test/helm/features.test.ts applies them to a real API server).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runCli } from "../helpers/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "shipmate-create-helm-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("create source helm --export", () => {
  it("an HTTP repository with a secret and passCredentials", async () => {
    const r = await runCli([
      "create",
      "source",
      "helm",
      "podinfo",
      "--url=https://stefanprodan.github.io/podinfo",
      "--interval=10m",
      "--secret-ref=creds",
      "--pass-credentials",
      "-n",
      "apps",
      "--export",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: podinfo
  namespace: apps
spec:
  interval: 10m
  passCredentials: true
  secretRef:
    name: creds
  url: https://stefanprodan.github.io/podinfo
`);
  });
  it("an oci:// URL is an OCI repository (provider generic)", async () => {
    const r = await runCli([
      "create",
      "source",
      "helm",
      "charts",
      "--url=oci://ghcr.io/org/charts",
      "--export",
    ]);
    expect(parse(r.stdout).spec).toEqual({
      interval: "1m",
      provider: "generic",
      type: "oci",
      url: "oci://ghcr.io/org/charts",
    });
  });
  it.each([
    [["--url=ftp://x"], /--url "ftp:\/\/x" must be https:\/\/, http:\/\/ or oci:\/\//],
    [["--url=https://user:pw@x"], /must not carry credentials/],
    [[], /--url is required/],
    [["--url=oci://x/y", "--oci-provider=aws"], /--oci-provider aws is not supported/],
    [["--url=https://x", "--chart=a"], /--chart does not apply to create source helm/],
    [["--url=https://x", "--interval=often"], /--interval must be a duration/],
  ])("%j is refused", async (flags, message) => {
    const r = await runCli(["create", "source", "helm", "x", ...flags, "--export"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain("pw");
  });
});

describe("create helmrelease --export", () => {
  it("a chart template from a HelmRepository with values files merged in order", async () => {
    writeFileSync(join(dir, "a.yaml"), "replicas: 2\nimage:\n  tag: '1.0'\n  pull: Always\n");
    writeFileSync(join(dir, "b.yaml"), "image:\n  tag: '2.0'\n");
    const r = await runCli([
      "create",
      "helmrelease",
      "podinfo",
      "--source=HelmRepository/podinfo",
      "--chart=podinfo",
      "--chart-version=>4.0.0",
      `--values=${join(dir, "a.yaml")}`,
      `--values=${join(dir, "b.yaml")}`,
      "--target-namespace=web",
      "--create-target-namespace",
      "--crds=CreateReplace",
      "--values-from=Secret/extra",
      "--depends-on=infra/cert-manager",
      "--interval=10m",
      "-n",
      "apps",
      "--export",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  chart:
    spec:
      chart: podinfo
      reconcileStrategy: ChartVersion
      sourceRef:
        kind: HelmRepository
        name: podinfo
      version: ">4.0.0"
  dependsOn:
    - namespace: infra
      name: cert-manager
  interval: 10m
  install:
    crds: CreateReplace
    createNamespace: true
  targetNamespace: web
  upgrade:
    crds: CreateReplace
  values:
    replicas: 2
    image:
      tag: "2.0"
      pull: Always
  valuesFrom:
    - kind: Secret
      name: extra
`);
  });
  it("a chart from a path in a GitRepository in another namespace, with release and storage names", async () => {
    const r = await runCli([
      "create",
      "hr",
      "app",
      "--source=GitRepository/fleet.flux-system",
      "--chart=./charts/app",
      "--reconcile-strategy=Revision",
      "--release-name=app-dev",
      "--storage-namespace=flux-system",
      "--service-account=deployer",
      "--export",
    ]);
    expect(r.code).toBe(0);
    expect(parse(r.stdout).spec).toEqual({
      chart: {
        spec: {
          chart: "./charts/app",
          reconcileStrategy: "Revision",
          sourceRef: { kind: "GitRepository", name: "fleet", namespace: "flux-system" },
        },
      },
      interval: "1m",
      releaseName: "app-dev",
      serviceAccountName: "deployer",
      storageNamespace: "flux-system",
    });
  });
  it.each([
    [["--chart=x"], /--source is required/],
    [["--source=HelmRepository/x"], /--chart is required/],
    [["--source=Bucket/x", "--chart=a"], /--source kind Bucket is not supported/],
    [["--source=x", "--chart=a"], /must be Kind\/NAME/],
    [
      ["--source=HelmRepository/x", "--chart=a", "--crds=Always"],
      /--crds must be Skip, Create or CreateReplace/,
    ],
    [["--source=HelmRepository/x", "--chart=a", "--values-from=Vault/x"], /--values-from "Vault\/x" must be/],
    [
      ["--source=HelmRepository/x", "--chart=a", "--url=https://x"],
      /--url does not apply to create helmrelease/,
    ],
    [["--source=HelmRepository/x", "--chart=a", "--release-name=Bad_Name"], /not a valid Helm release name/],
  ])("%j is refused", async (flags, message) => {
    const r = await runCli(["create", "helmrelease", "x", ...flags, "--export"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
  it("a values file that is missing, not a map, or not YAML: one line naming it", async () => {
    writeFileSync(join(dir, "list.yaml"), "- a\n- b\n");
    writeFileSync(join(dir, "bad.yaml"), "a: [\n");
    for (const [file, message] of [
      ["nope.yaml", "no such file"],
      ["list.yaml", "not a YAML map of values"],
      ["bad.yaml", "not valid YAML"],
    ] as const) {
      const r = await runCli([
        "create",
        "hr",
        "x",
        "--source=HelmRepository/x",
        "--chart=a",
        `--values=${join(dir, file)}`,
        "--export",
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim()).toMatch(new RegExp(`--values ${join(dir, file)}: ${message}`));
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});
