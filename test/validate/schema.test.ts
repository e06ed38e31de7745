import { describe, expect, it } from "vitest";
import { type CustomResourceDefinition, fluxCrdDir, readCrdDir } from "../../src/validate/crds.ts";
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

const widgetCrd = (group: string, kind: string, versions: string[]): CustomResourceDefinition => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  spec: {
    group,
    names: { kind },
    versions: versions.map((name) => ({
      name,
      served: true,
      schema: {
        openAPIV3Schema: {
          type: "object",
          properties: {
            apiVersion: { type: "string" },
            kind: { type: "string" },
            metadata: { type: "object" },
            spec: {
              type: "object",
              required: ["size"],
              properties: {
                size: { type: "integer" },
                labels: { type: "object", additionalProperties: { type: "string" } },
              },
            },
          },
        },
      },
    })),
  },
});
const widget = (apiVersion: string, spec: Record<string, unknown>, kind = "Widget") => ({
  apiVersion,
  kind,
  metadata: { name: "w" },
  spec,
});

describe("schemas: only built-in groups are known; other kinds need a CRD", () => {
  it.each([
    [
      "a cert-manager Certificate",
      widget("cert-manager.io/v1", { any: 1 }, "Certificate"),
      "no CRD in this tree defines Certificate cert-manager.io/v1, so it is not checked (a chart or controller may install it)",
    ],
    [
      "a Gateway API route (a .k8s.io group Kubernetes does not serve by itself)",
      widget("gateway.networking.k8s.io/v1", {}, "HTTPRoute"),
      "no CRD in this tree defines HTTPRoute gateway.networking.k8s.io/v1, so it is not checked (a chart or controller may install it)",
    ],
    [
      "a Flux kind without its CRD (notification v1beta3 when Flux's CRDs are not at hand)",
      widget("notification.toolkit.fluxcd.io/v1beta3", {}, "Alert"),
      "no schema for Alert notification.toolkit.fluxcd.io/v1beta3 (neither a CRD in this tree nor Flux's CRDs define it), so it is not checked",
    ],
  ])("%s: not checked, a warning", (_rule, object, message) => {
    expect(new SchemaChecker().check(object)).toEqual({ status: "no-schema", message });
  });

  it("a group without a dot is built in (a CRD group must have one): unknown there is an error", () => {
    expect(new SchemaChecker().check(widget("apps/v1", {}, "Deploymnet")).status).toBe("unknown-kind");
  });

  const tree = new SchemaChecker({ tree: [widgetCrd("example.com", "Widget", ["v1", "v2"])] });
  it.each([
    ["a valid object of a CRD in the tree", widget("example.com/v2", { size: 1, labels: { a: "b" } }), "ok"],
    ["a wrong type", widget("example.com/v1", { size: "big" }), "invalid: spec.size: must be integer"],
    [
      "an unknown field (strict, as the API server)",
      widget("example.com/v1", { size: 1, colour: "red" }),
      'invalid: spec: unknown field "colour"',
    ],
    [
      "a version the CRD does not serve",
      widget("example.com/v1beta1", { size: 1 }),
      "unknown-kind: Widget is not served as example.com/v1beta1 (served: example.com/v1, example.com/v2)",
    ],
  ])("CRDs in the tree teach their kinds: %s", (_rule, object, expected) => {
    const v = tree.check(object);
    const got =
      v.status === "invalid"
        ? `invalid: ${v.issues.map((i) => i.message).join("; ")}`
        : v.status === "unknown-kind"
          ? `unknown-kind: ${v.message}`
          : v.status;
    expect(got).toBe(expected);
  });

  it("a CRD in the tree is the truth for its Flux kind (an older gotk-components.yaml serves its own versions)", () => {
    const old = new SchemaChecker({
      tree: [widgetCrd("kustomize.toolkit.fluxcd.io", "Kustomization", ["v1beta2"])],
    });
    expect(old.check(widget("kustomize.toolkit.fluxcd.io/v1beta2", { size: 2 }, "Kustomization"))).toEqual({
      status: "ok",
    });
    expect(old.check(widget("kustomize.toolkit.fluxcd.io/v1", { size: 2 }, "Kustomization"))).toEqual({
      status: "unknown-kind",
      message:
        "Kustomization is not served as kustomize.toolkit.fluxcd.io/v1 (served: kustomize.toolkit.fluxcd.io/v1beta2)",
    });
  });
});

describe("schemas: every Flux kind at every served version, from Flux's CRDs", () => {
  const flux = readCrdDir(fluxCrdDir());
  const checker = new SchemaChecker({ flux });
  it("Flux's CRDs are provisioned (scripts/provision/70-flux-crds.sh)", () => {
    expect(flux.length).toBeGreaterThanOrEqual(15);
  });

  it.each([
    [
      "notification v1beta3 Provider",
      {
        apiVersion: "notification.toolkit.fluxcd.io/v1beta3",
        kind: "Provider",
        spec: { type: "slack", channel: "general", address: "https://slack.example.com" },
      },
    ],
    [
      "notification v1beta3 Alert",
      {
        apiVersion: "notification.toolkit.fluxcd.io/v1beta3",
        kind: "Alert",
        spec: {
          providerRef: { name: "slack" },
          eventSeverity: "info",
          eventSources: [{ kind: "Kustomization", name: "*" }],
        },
      },
    ],
    [
      "notification v1 Receiver",
      {
        apiVersion: "notification.toolkit.fluxcd.io/v1",
        kind: "Receiver",
        spec: {
          type: "github",
          events: ["push"],
          secretRef: { name: "token" },
          resources: [{ kind: "GitRepository", name: "flux-system" }],
        },
      },
    ],
    [
      "source.extensions v1beta1 ArtifactGenerator",
      {
        apiVersion: "source.extensions.fluxcd.io/v1beta1",
        kind: "ArtifactGenerator",
        spec: {
          sources: [{ alias: "repo", kind: "GitRepository", name: "flux-system" }],
          artifacts: [{ name: "apps", copy: [{ from: "@repo/apps/**", to: "@artifact/" }] }],
        },
      },
    ],
    [
      "image v1 ImagePolicy",
      {
        apiVersion: "image.toolkit.fluxcd.io/v1",
        kind: "ImagePolicy",
        spec: { imageRepositoryRef: { name: "app" }, policy: { semver: { range: ">=1.0.0" } } },
      },
    ],
  ])("%s passes its schema", (_rule, object) => {
    expect(checker.check({ metadata: { name: "x", namespace: "flux-system" }, ...object })).toEqual({
      status: "ok",
    });
  });

  it.each([
    [
      "a Provider type outside the enum",
      {
        apiVersion: "notification.toolkit.fluxcd.io/v1beta3",
        kind: "Provider",
        spec: { type: "carrier-pigeon" },
      },
      /^spec\.type: must be one of /,
    ],
    [
      "an unknown ArtifactGenerator field",
      {
        apiVersion: "source.extensions.fluxcd.io/v1beta1",
        kind: "ArtifactGenerator",
        spec: { sources: [], artifacts: [], extra: 1 },
      },
      /^spec: unknown field "extra"$/,
    ],
  ])("%s is invalid", (_rule, object, message) => {
    const v = checker.check({ metadata: { name: "x" }, ...object });
    expect(v.status).toBe("invalid");
    if (v.status === "invalid") expect(v.issues[0]?.message).toMatch(message);
  });

  it("a notification version Flux no longer serves names the one it does", () => {
    expect(
      checker.check({
        apiVersion: "notification.toolkit.fluxcd.io/v1beta2",
        kind: "Alert",
        metadata: { name: "x" },
      }),
    ).toEqual({
      status: "unknown-kind",
      message:
        "Alert is not served as notification.toolkit.fluxcd.io/v1beta2 (served: notification.toolkit.fluxcd.io/v1beta3)",
    });
  });
});
