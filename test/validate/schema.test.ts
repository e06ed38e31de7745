import { describe, expect, it } from "vitest";
import { SchemaChecker } from "../../src/validate/schema.ts";

const checker = new SchemaChecker();
const deployment = (spec: Record<string, unknown>) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web" },
  spec: {
    selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" } },
      spec: { containers: [{ name: "web", image: "nginx" }] },
    },
    ...spec,
  },
});
const container = (extra: Record<string, unknown>) =>
  deployment({
    template: { spec: { containers: [{ name: "web", image: "nginx", ...extra }] } },
  });

describe("schemas: what the API server would accept", () => {
  it.each([
    ["a minimal Deployment", deployment({})],
    [
      "int-or-string as a number",
      container({ ports: [{ containerPort: 80 }], readinessProbe: { httpGet: { port: 80 } } }),
    ],
    ["int-or-string as a name", container({ readinessProbe: { httpGet: { port: "http" } } })],
    ["quantities as numbers and strings", container({ resources: { limits: { cpu: 1, memory: "128Mi" } } })],
    ["empty YAML values (null) as unset", deployment({ replicas: null, strategy: null })],
    [
      "HelmRelease values of any shape",
      {
        apiVersion: "helm.toolkit.fluxcd.io/v2",
        kind: "HelmRelease",
        metadata: { name: "x" },
        spec: {
          interval: "1m",
          chart: { spec: { chart: "x", sourceRef: { kind: "HelmRepository", name: "x" } } },
          values: { any: { thing: [1, "two"] } },
        },
      },
    ],
    [
      "a field named like a schema keyword (PriorityClass description)",
      {
        apiVersion: "scheduling.k8s.io/v1",
        kind: "PriorityClass",
        metadata: { name: "high" },
        value: 1000,
        description: "for critical workloads",
      },
    ],
    [
      "a CRD whose schema uses x-kubernetes extensions",
      {
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: "widgets.example.com" },
        spec: {
          group: "example.com",
          names: { kind: "Widget", plural: "widgets" },
          scope: "Namespaced",
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: "object",
                  "x-kubernetes-preserve-unknown-fields": true,
                  description: "a widget",
                  properties: { size: { "x-kubernetes-int-or-string": true, default: 1 } },
                },
              },
            },
          ],
        },
      },
    ],
    ["kubectl's List wrapper", { apiVersion: "v1", kind: "List", items: [] }],
    [
      "a custom resource we have no schema for",
      {
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: { name: "x" },
        spec: { whatever: true },
      },
    ],
    [
      "kustomize's own configuration",
      { apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", resources: [] },
    ],
  ])("accepts %s", (_rule, object) => {
    expect(["ok", "unchecked"]).toContain(checker.check(object).status);
  });

  it.each([
    ["a string where an integer belongs", deployment({ replicas: "3" }), ["spec.replicas: must be integer"]],
    [
      "an unknown field",
      container({ imagePullPolcy: "Always" }),
      ['spec.template.spec.containers[0]: unknown field "imagePullPolcy"'],
    ],
    [
      "a missing required field",
      deployment({ selector: undefined }),
      ['spec: missing required field "selector"'],
    ],
    [
      "an int-or-string that is neither",
      container({ readinessProbe: { httpGet: { port: true } } }),
      ["spec.template.spec.containers[0].readinessProbe.httpGet.port: must be string or integer"],
    ],
    [
      "a value outside an enum (Flux CRD)",
      {
        apiVersion: "source.toolkit.fluxcd.io/v1",
        kind: "HelmRepository",
        metadata: { name: "x" },
        spec: { url: "oci://x", type: "git" },
      },
      ['spec.type: must be one of "default", "oci"'],
    ],
  ])("rejects %s", (_rule, object, messages) => {
    const verdict = checker.check(JSON.parse(JSON.stringify(object)));
    expect(verdict.status).toBe("invalid");
    if (verdict.status === "invalid") expect(verdict.issues.map((i) => i.message)).toEqual(messages);
  });

  it.each([
    [
      "a removed built-in apiVersion",
      { apiVersion: "extensions/v1beta1", kind: "Ingress" },
      "Ingress is not served as extensions/v1beta1 (served: networking.k8s.io/v1)",
    ],
    [
      "a Flux apiVersion no longer served",
      { apiVersion: "image.toolkit.fluxcd.io/v1beta1", kind: "ImagePolicy" },
      "ImagePolicy is not served as image.toolkit.fluxcd.io/v1beta1 (served: image.toolkit.fluxcd.io/v1)",
    ],
    ["a kind Kubernetes does not have", { apiVersion: "v1", kind: "Pdo" }, "unknown kind Pdo in v1"],
  ])("flags %s", (_rule, object, message) => {
    expect(checker.check({ metadata: { name: "x" }, ...object })).toEqual({
      status: "unknown-kind",
      message,
    });
  });

  it("the issue path points at the offending key, for finding its line", () => {
    const verdict = checker.check(container({ imagePullPolcy: "Always" }));
    expect(verdict.status === "invalid" && verdict.issues[0]?.path).toEqual([
      "spec",
      "template",
      "spec",
      "containers",
      0,
      "imagePullPolcy",
    ]);
  });

  it("covers the Flux kinds a fleet uses", () => {
    const known = SchemaChecker.knownKinds();
    for (const k of [
      "source.toolkit.fluxcd.io/v1/GitRepository",
      "source.toolkit.fluxcd.io/v1/HelmRepository",
      "source.toolkit.fluxcd.io/v1/OCIRepository",
      "kustomize.toolkit.fluxcd.io/v1/Kustomization",
      "helm.toolkit.fluxcd.io/v2/HelmRelease",
      "image.toolkit.fluxcd.io/v1/ImageRepository",
      "image.toolkit.fluxcd.io/v1/ImagePolicy",
      "image.toolkit.fluxcd.io/v1/ImageUpdateAutomation",
      "apps/v1/Deployment",
      "networking.k8s.io/v1/Ingress",
      "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
    ])
      expect(known).toContain(k);
  });
});
