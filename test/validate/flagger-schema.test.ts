/**
 * Flagger's kinds in the committed schema bundle (from github.com/fluxcd/flagger's
 * artifacts/flagger/crd.yaml, scripts/gen-flagger-schemas.ts): what Flagger's
 * CRDs accept is accepted, what they reject is one issue naming the field.
 */
import { describe, expect, it } from "vitest";
import { SchemaChecker } from "../../src/validate/schema.ts";
import bundle from "../../src/validate/schemas.json" with { type: "json" };

const checker = new SchemaChecker();
const canary = (spec: Record<string, unknown>, apiVersion = "flagger.app/v1beta1") => ({
  apiVersion,
  kind: "Canary",
  metadata: { name: "web", namespace: "web" },
  spec: {
    provider: "kubernetes",
    targetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
    service: { port: 80, targetPort: "http" },
    analysis: {
      interval: "1m",
      threshold: 5,
      iterations: 10,
      metrics: [
        { name: "request-success-rate", thresholdRange: { min: 99 }, interval: "1m" },
        { name: "request-duration", thresholdRange: { max: 500 }, interval: "1m" },
      ],
      webhooks: [{ name: "load-test", type: "rollout", url: "http://flagger-loadtester.test/" }],
    },
    ...spec,
  },
});

describe("validate: Flagger kinds against Flagger's published CRDs", () => {
  it("the bundle names the Flagger release its schemas come from", () => {
    expect(bundle.sources).toContain("github.com/fluxcd/flagger@v1.36.1 artifacts/flagger/crd.yaml");
  });

  it.each([
    ["a blue/green Canary", canary({})],
    [
      "a weighted Canary",
      canary({
        provider: "nginx",
        analysis: { interval: "1m", threshold: 5, maxWeight: 50, stepWeight: 10 },
      }),
    ],
    [
      "a MetricTemplate",
      {
        apiVersion: "flagger.app/v1beta1",
        kind: "MetricTemplate",
        metadata: { name: "errors" },
        spec: { provider: { type: "prometheus", address: "http://prometheus:9090" }, query: "sum(up)" },
      },
    ],
    [
      "an AlertProvider",
      {
        apiVersion: "flagger.app/v1beta1",
        kind: "AlertProvider",
        metadata: { name: "slack" },
        spec: { type: "slack", channel: "alerts", secretRef: { name: "slack-url" } },
      },
    ],
  ])("accepted: %s", (_name, object) => {
    expect(checker.check(object)).toEqual({ status: "ok" });
  });

  it.each([
    ["a Canary without targetRef", canary({ targetRef: undefined }), 'missing required field "targetRef"'],
    [
      "an unknown analysis field",
      canary({ analysis: { interval: "1m", stepWieght: 10 } }),
      'unknown field "stepWieght"',
    ],
    [
      "a webhook type Flagger does not know",
      canary({ analysis: { webhooks: [{ name: "x", type: "later", url: "http://x/" }] } }),
      "must be one of",
    ],
    [
      "a MetricTemplate provider type Flagger does not know",
      {
        apiVersion: "flagger.app/v1beta1",
        kind: "MetricTemplate",
        metadata: { name: "m" },
        spec: { provider: { type: "grafana" }, query: "q" },
      },
      "must be one of",
    ],
  ])("rejected: %s", (_name, object, message) => {
    const verdict = checker.check(JSON.parse(JSON.stringify(object)));
    expect(verdict.status).toBe("invalid");
    if (verdict.status === "invalid")
      expect(verdict.issues.map((i) => i.message).join("\n")).toContain(message);
  });

  it("a version Flagger does not serve names the one it does", () => {
    expect(checker.check(canary({}, "flagger.app/v1alpha3"))).toEqual({
      status: "unknown-kind",
      message: "Canary is not served as flagger.app/v1alpha3 (served: flagger.app/v1beta1)",
    });
  });
});
