/**
 * The pure parts of HelmRelease drift detection and post-rendering: ignore
 * rule selectors, JSON pointer removal, manifest parsing, and the
 * post-render steps with their digest.
 */
import { describe, expect, it } from "vitest";
import {
  driftSummary,
  manifestObjects,
  matchesLabelSelector,
  removePointer,
  selects,
  withoutIgnored,
} from "../../src/agent/helm/drift.ts";
import { postRenderersDigest, postRenderSteps } from "../../src/agent/helm/postrender.ts";

const deploy = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web-1", namespace: "apps", labels: { tier: "front", env: "prod" } },
  spec: { replicas: 2, template: { spec: { containers: [{ name: "a" }, { name: "b" }] } } },
};

describe("label selectors", () => {
  it.each([
    ["tier=front", true],
    ["tier==front,env=prod", true],
    ["tier!=front", false],
    ["tier", true],
    ["!tier", false],
    ["missing", false],
    ["env in (prod, staging)", true],
    ["env notin (prod)", false],
    ["env in (dev),tier=front", false],
  ])("%s → %s", (sel, want) => {
    expect(matchesLabelSelector(sel, deploy.metadata.labels)).toBe(want);
  });
});

describe("ignore rule targets", () => {
  it.each([
    [undefined, true],
    [{ kind: "Deployment" }, true],
    [{ kind: "ConfigMap" }, false],
    [{ group: "apps", version: "v1" }, true],
    [{ group: "" }, false],
    [{ name: "web-.*" }, true],
    [{ name: "web" }, false],
    [{ namespace: "apps" }, true],
    [{ labelSelector: "tier=back" }, false],
  ])("%j → %s", (target, want) => {
    expect(selects(target, deploy)).toBe(want);
  });
});

describe("JSON pointers", () => {
  it.each([
    ["/spec/replicas", { template: deploy.spec.template }],
    [
      "/spec/template/spec/containers/1",
      { replicas: 2, template: { spec: { containers: [{ name: "a" }] } } },
    ],
    ["/spec/nothing/here", deploy.spec],
    ["/spec/template/spec/containers/9", deploy.spec],
  ])("%s", (pointer, spec) => {
    expect(removePointer(deploy, pointer).spec).toEqual(spec);
    expect(deploy.spec.replicas).toBe(2); // never mutates
  });
  it("decodes ~1 and ~0", () => {
    const obj = { metadata: { annotations: { "a/b": "1", "c~d": "2", e: "3" } } };
    expect(
      removePointer(removePointer(obj, "/metadata/annotations/a~1b"), "/metadata/annotations/c~0d"),
    ).toEqual({
      metadata: { annotations: { e: "3" } },
    });
  });
  it("applies only the rules whose target selects the object", () => {
    const out = withoutIgnored(deploy, [
      { paths: ["/spec/replicas"], target: { kind: "Deployment" } },
      { paths: ["/metadata/labels"], target: { kind: "Service" } },
    ]);
    expect(out.spec).not.toHaveProperty("replicas");
    expect(out.metadata.labels).toEqual(deploy.metadata.labels);
  });
});

describe("manifests and summaries", () => {
  it("parses a Helm manifest, skipping empty documents", () => {
    const text = "---\n# Source: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n\n";
    expect(manifestObjects(text)).toEqual([{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" } }]);
  });
  it("bounds the summary line", () => {
    const entries = Array.from({ length: 12 }, (_, i) => ({
      object: `ConfigMap/ns/c${i}`,
      change: "changed" as const,
    }));
    expect(driftSummary(entries)).toMatch(/ConfigMap\/ns\/c9 changed and 2 more$/);
  });
});

describe("post-render steps", () => {
  it("keeps Flux's order: each kustomize post-renderer, then commonMetadata", () => {
    const steps = postRenderSteps({
      postRenderers: [
        { kustomize: { images: [{ name: "nginx", newTag: "1.27" }] } },
        { kustomize: {} },
        {
          kustomize: {
            patches: [
              { patch: "x", target: {} },
              { patch: "y", target: { kind: "Service" } },
            ],
          },
        },
      ],
      commonMetadata: { labels: { team: "a" }, annotations: { o: "b" } },
    });
    expect(steps).toEqual([
      { images: [{ name: "nginx", newTag: "1.27" }] },
      { patches: [{ patch: "x" }, { patch: "y", target: { kind: "Service" } }] },
      { labels: [{ pairs: { team: "a" }, includeSelectors: false }], commonAnnotations: { o: "b" } },
    ]);
  });
  it("has no digest without steps, and one that moves with them", () => {
    expect(postRenderersDigest([])).toBeUndefined();
    const a = postRenderersDigest([{ images: [{ name: "x", newTag: "1" }] }]);
    expect(a).toMatch(/^sha256:/);
    expect(postRenderersDigest([{ images: [{ name: "x", newTag: "2" }] }])).not.toBe(a);
  });
});
