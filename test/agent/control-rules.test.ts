/**
 * The control module's kind table (src/kube/control.ts) against the agent's
 * own constants, and how each kind is shown in `get` rows: tables.
 */
import { describe, expect, it } from "vitest";
import { ARTIFACT_GENERATOR_API_VERSION } from "../../src/agent/generators.ts";
import { HELM_API_VERSION } from "../../src/agent/helm/spec.ts";
import { IMAGE_API_VERSION } from "../../src/agent/images/spec.ts";
import { AGENT_RECONCILED_KINDS } from "../../src/agent/kinds.ts";
import { RECEIVER_API_VERSION, RECEIVER_KINDS } from "../../src/agent/receiver/rules.ts";
import { ksPath } from "../../src/agent/reconciler.ts";
import { gitRepositoryPath, sourcePath } from "../../src/agent/source-objects.ts";
import { SOURCE_HANDLERS } from "../../src/agent/sources/index.ts";
import {
  FLUX_KINDS,
  type FluxKind,
  type FluxObject,
  gitSourceOf,
  objectPath,
  objectRowOf,
  sourceRefOf,
} from "../../src/kube/control.ts";
import { KUSTOMIZATION_API_VERSION } from "../../src/kube/schema.ts";

describe("FLUX_KINDS is where the agent serves each kind", () => {
  it("every source handler's API version and plural", () => {
    for (const h of SOURCE_HANDLERS.values()) {
      const k = FLUX_KINDS[h.kind as FluxKind];
      expect(k, h.kind).toBeDefined();
      expect({ apiVersion: k.apiVersion, plural: k.plural }).toEqual({
        apiVersion: h.apiVersion,
        plural: h.plural,
      });
    }
  });

  it.each([
    ["Kustomization", KUSTOMIZATION_API_VERSION],
    ["HelmRelease", HELM_API_VERSION],
    ["ImageRepository", IMAGE_API_VERSION],
    ["ImagePolicy", IMAGE_API_VERSION],
    ["ImageUpdateAutomation", IMAGE_API_VERSION],
    ["Receiver", RECEIVER_API_VERSION],
    ["ArtifactGenerator", ARTIFACT_GENERATOR_API_VERSION],
  ] as const)("%s is served as %s", (kind, apiVersion) => {
    expect(FLUX_KINDS[kind].apiVersion).toBe(apiVersion);
  });

  it("every kind the agent reconciles, but Alert and Provider (no status, nothing to request)", () => {
    const missing = [...AGENT_RECONCILED_KINDS]
      .map((k) => k.slice(k.indexOf("/") + 1))
      .filter((k) => !(k in FLUX_KINDS));
    expect(missing.sort()).toEqual(["Alert", "Provider"]);
  });

  it("a Receiver may name every kind but Receiver", () => {
    expect(Object.keys(RECEIVER_KINDS).sort()).toEqual(
      Object.keys(FLUX_KINDS)
        .filter((k) => k !== "Receiver")
        .sort(),
    );
  });

  it("object paths are the agent's own", () => {
    expect(objectPath("Kustomization", "ns", "a")).toBe(ksPath("ns", "a"));
    expect(objectPath("GitRepository", "ns", "a b")).toBe(gitRepositoryPath("ns", "a b"));
    expect(objectPath("GitRepository")).toBe(gitRepositoryPath());
    const oci = SOURCE_HANDLERS.get("OCIRepository");
    if (!oci) throw new Error("no OCIRepository handler");
    expect(objectPath("OCIRepository", "ns")).toBe(sourcePath(oci, "ns"));
    expect(objectPath("ImagePolicy", "flux-system", "web")).toBe(
      "/apis/image.toolkit.fluxcd.io/v1/namespaces/flux-system/imagepolicies/web",
    );
  });
});

const ready = (status: "True" | "False", message: string) => ({
  type: "Ready",
  status,
  reason: status === "True" ? "Succeeded" : "Failed",
  message,
  lastTransitionTime: "2026-01-01T00:00:00Z",
});
const obj = (spec: Record<string, unknown>, status?: FluxObject["status"]): FluxObject => ({
  metadata: { namespace: "ns", name: "a" },
  spec,
  ...(status ? { status } : {}),
});

describe("objectRowOf: the columns `flux get` shows per kind", () => {
  it.each<[string, FluxKind, FluxObject, Partial<ReturnType<typeof objectRowOf>>]>([
    [
      "a git source: its URL and artifact revision",
      "GitRepository",
      obj(
        { url: "https://example.com/r.git", suspend: true },
        {
          conditions: [ready("True", "stored")],
          artifact: { revision: "main@sha1:abc" },
          lastHandledReconcileAt: "t1",
        },
      ),
      {
        url: "https://example.com/r.git",
        revision: "main@sha1:abc",
        suspended: true,
        ready: "True",
        message: "stored",
        lastHandledReconcileAt: "t1",
      },
    ],
    [
      "a bucket: its endpoint",
      "Bucket",
      obj({ endpoint: "127.0.0.1:9000" }),
      { url: "127.0.0.1:9000", revision: "", ready: "Unknown", message: "waiting to be reconciled" },
    ],
    [
      "a HelmRelease: the chart version of its latest release",
      "HelmRelease",
      obj(
        {},
        {
          conditions: [ready("True", "installed")],
          history: [{ chartVersion: "1.2.0" }, { chartVersion: "1.1.0" }],
        },
      ),
      { revision: "1.2.0", ready: "True" },
    ],
    [
      "an OCI HelmRepository without status: static, shown Ready",
      "HelmRepository",
      obj({ type: "oci", url: "oci://r/charts" }),
      {
        ready: "True",
        message: "static object: the HelmCharts that use it pull its charts",
        url: "oci://r/charts",
      },
    ],
    [
      "an HTTP HelmRepository without status: waiting",
      "HelmRepository",
      obj({ url: "https://charts" }),
      { ready: "Unknown", message: "waiting to be reconciled" },
    ],
    [
      "an ImageRepository: canonical name and last scan",
      "ImageRepository",
      obj(
        { image: "r/app" },
        { canonicalImageName: "docker.io/r/app", lastScanResult: { scanTime: "2026-01-01T00:00:00Z" } },
      ),
      { url: "docker.io/r/app", revision: "2026-01-01T00:00:00Z" },
    ],
    [
      "an ImagePolicy: the image it selected",
      "ImagePolicy",
      obj({}, { latestRef: { name: "r/app", tag: "1.0.0", digest: "sha256:d" } }),
      { url: "r/app", revision: "r/app:1.0.0@sha256:d" },
    ],
    [
      "an ImageUpdateAutomation: its last run and push",
      "ImageUpdateAutomation",
      obj({}, { lastAutomationRunTime: "2026-01-02T00:00:00Z", lastPushCommit: "abc" }),
      { url: "abc", revision: "2026-01-02T00:00:00Z" },
    ],
    [
      "a Receiver: its webhook path",
      "Receiver",
      obj({}, { conditions: [ready("False", "no secret")], webhookPath: "/hook/x" }),
      { url: "/hook/x", revision: "", ready: "False", reason: "Failed", message: "no secret" },
    ],
  ])("%s", (_, kind, o, want) => {
    expect(objectRowOf(kind, o)).toMatchObject({ namespace: "ns", name: "a", ...want });
  });
});

describe("sourceRefOf / gitSourceOf: the source a Kustomization reads, with Flux's defaulting", () => {
  const ks = (sourceRef: unknown) =>
    ({
      apiVersion: "kustomize.toolkit.fluxcd.io/v1",
      kind: "Kustomization",
      metadata: { namespace: "apps", name: "web" },
      spec: { sourceRef },
    }) as const;
  it.each([
    [
      "no namespace: the Kustomization's own",
      { kind: "GitRepository", name: "r" },
      { namespace: "apps", name: "r" },
    ],
    [
      "a namespace named",
      { kind: "GitRepository", name: "r", namespace: "src" },
      { namespace: "src", name: "r" },
    ],
    [
      "an empty namespace is none",
      { kind: "GitRepository", name: "r", namespace: "" },
      { namespace: "apps", name: "r" },
    ],
    ["another kind is no git source", { kind: "OCIRepository", name: "r" }, undefined],
    ["no name is no source", { kind: "GitRepository" }, undefined],
  ])("%s", (_, ref, want) => {
    expect(gitSourceOf(ks(ref))).toEqual(want);
  });
  it("keeps the kind", () => {
    expect(sourceRefOf(ks({ kind: "Bucket", name: "b" }))).toEqual({
      kind: "Bucket",
      name: "b",
      namespace: "apps",
    });
  });
});
