/**
 * spec.healthCheckExprs as kustomize-controller evaluates them, with the
 * examples of Flux's Kustomization docs ("Health check expressions") and
 * the CEL cheatsheet's has() guard as cases.
 */
import { describe, expect, it } from "vitest";
import { CelHealth, dependencyReadyByExpr } from "../../src/agent/celhealth.ts";

// Flux docs: the SealedSecret example.
const sealedSecret = {
  apiVersion: "bitnami.com/v1alpha1",
  kind: "SealedSecret",
  failed: "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')",
  current: "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')",
};
const sealed = (status: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "bitnami.com/v1alpha1",
  kind: "SealedSecret",
  metadata: { name: "s", generation: 1 },
  status: { observedGeneration: 1, conditions: [{ type: "Synced", status }], ...extra },
});

describe("healthCheckExprs: Flux's CEL health checks", () => {
  const cel = new CelHealth([sealedSecret]);

  it.each([
    ["docs SealedSecret: Synced=True is Current", sealed("True"), "Current"],
    ["docs SealedSecret: Synced=False is Failed", sealed("False"), "Failed"],
    ["docs SealedSecret: Synced=Unknown matches nothing: InProgress", sealed("Unknown"), "InProgress"],
    [
      "a stale observedGeneration is InProgress before any expression",
      { ...sealed("True"), metadata: { name: "s", generation: 2 } },
      "InProgress",
    ],
    [
      "docs: a field that is not there yet is an evaluation error: InProgress (the wait times out)",
      { apiVersion: "bitnami.com/v1alpha1", kind: "SealedSecret", metadata: { name: "s" } },
      "InProgress",
    ],
  ])("%s", (_rule, obj, status) => {
    expect(cel.assess(obj)?.status).toBe(status);
  });

  it("docs: the version of apiVersion is ignored, only the group matches", () => {
    expect(cel.assess({ ...sealed("True"), apiVersion: "bitnami.com/v1" })?.status).toBe("Current");
  });

  it("kinds no entry covers are left to kstatus (undefined)", () => {
    expect(cel.assess({ apiVersion: "apps/v1", kind: "Deployment", metadata: {} })).toBeUndefined();
    expect(cel.assess({ ...sealed("True"), kind: "Other" })).toBeUndefined();
  });

  it("docs: the order is inProgress, failed, current; the first true decides", () => {
    const all = new CelHealth([
      { apiVersion: "example.com/v1", kind: "W", inProgress: "true", failed: "true", current: "true" },
      { apiVersion: "example.com/v1", kind: "X", failed: "true", current: "true" },
    ]);
    const obj = (kind: string) => ({ apiVersion: "example.com/v1", kind, metadata: {} });
    expect(all.assess(obj("W"))?.status).toBe("InProgress");
    expect(all.assess(obj("X"))?.status).toBe("Failed");
  });

  it("docs: an entry without kind covers its whole group; an entry with the kind wins", () => {
    const c = new CelHealth([
      { apiVersion: "example.com/v1", current: "true" },
      { apiVersion: "example.com/v1", kind: "Special", current: "false", failed: "true" },
    ]);
    expect(c.assess({ apiVersion: "example.com/v2", kind: "Any", metadata: {} })?.status).toBe("Current");
    expect(c.assess({ apiVersion: "example.com/v1", kind: "Special", metadata: {} })?.status).toBe("Failed");
  });

  it("cheatsheet: has() guards a field that may not exist yet; integers compare as CEL ints", () => {
    const c = new CelHealth([
      {
        apiVersion: "example.com/v1",
        kind: "Pool",
        inProgress: "!has(status.readyReplicas)",
        current: "status.readyReplicas == spec.replicas && status.readyReplicas >= 1",
      },
    ]);
    const pool = (status: Record<string, unknown>) => ({
      apiVersion: "example.com/v1",
      kind: "Pool",
      metadata: {},
      spec: { replicas: 3 },
      status,
    });
    expect(c.assess(pool({}))?.status).toBe("InProgress");
    expect(c.assess(pool({ readyReplicas: 2 }))?.status).toBe("InProgress");
    expect(c.assess(pool({ readyReplicas: 3 }))?.status).toBe("Current");
  });

  it("the strings extension Flux enables is there", () => {
    const c = new CelHealth([
      {
        apiVersion: "example.com/v1",
        kind: "V",
        current: "metadata.labels['app/version'].startsWith('v1.')",
      },
    ]);
    const v = (version: string) => ({
      apiVersion: "example.com/v1",
      kind: "V",
      metadata: { labels: { "app/version": version } },
    });
    expect(c.assess(v("v1.2.3"))?.status).toBe("Current");
    expect(c.assess(v("v2.0.0"))?.status).toBe("InProgress");
  });

  it.each([
    [
      "an expression that does not parse",
      [{ apiVersion: "a/v1", kind: "K", current: "status.(" }],
      /^healthCheckExprs\[0\]\.current: /,
    ],
    ["current is required", [{ apiVersion: "a/v1", kind: "K" }], /^healthCheckExprs\[0\]\.current: /],
    [
      "two entries for one group and kind",
      [
        { apiVersion: "a/v1", kind: "K", current: "true" },
        { apiVersion: "a/v2", kind: "K", current: "false" },
      ],
      /^duplicate custom health check for K of group "a" at healthCheckExprs\[1\]$/,
    ],
    [
      "optional field syntax (not in this CEL engine)",
      [{ apiVersion: "a/v1", current: "status.?x.orValue(1) == 1" }],
      /^healthCheckExprs\[0\]\.current: /,
    ],
  ])("configuration error: %s", (_rule, entries, message) => {
    expect(() => new CelHealth(entries)).toThrow(message);
  });
});

describe("dependsOn[].readyExpr: Flux's docs example", () => {
  // Flux docs, "Dependency Ready Expression": a lockstep upgrade.
  const expr = `dep.metadata.labels['app/version'] == self.metadata.labels['app/version'] &&
dep.status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True') &&
dep.metadata.generation == dep.status.observedGeneration`;
  const ks = (version: string, ready = "True", generation = 1, observed = 1) => ({
    apiVersion: "kustomize.toolkit.fluxcd.io/v1",
    kind: "Kustomization",
    metadata: { name: "x", namespace: "apps", labels: { "app/version": version }, generation },
    status: { observedGeneration: observed, conditions: [{ type: "Ready", status: ready }] },
  });

  it.each([
    ["same version, ready, observed: ready", ks("v1.2.3"), true],
    ["another version: not ready", ks("v1.2.2"), false],
    ["not Ready: not ready", ks("v1.2.3", "False"), false],
    ["generation not observed yet: not ready", ks("v1.2.3", "True", 2, 1), false],
  ])("%s", (_rule, dep, ready) => {
    expect(dependencyReadyByExpr(expr, ks("v1.2.3"), dep, "apps/app-backend").ready).toBe(ready);
  });

  it("the message names the dependency", () => {
    expect(dependencyReadyByExpr(expr, ks("v1.2.3"), ks("v0"), "apps/app-backend")).toEqual({
      ready: false,
      message: "dependency 'apps/app-backend' is not ready according to readyExpr eval",
    });
  });

  it("an evaluation error is not ready, with the reason", () => {
    const v = dependencyReadyByExpr("dep.status.nothing == 1", ks("v1"), ks("v1"), "apps/b");
    expect(v.ready).toBe(false);
  });

  it("an expression that does not compile is a configuration error", () => {
    expect(() => dependencyReadyByExpr("dep.(", ks("v1"), ks("v1"), "apps/b")).toThrow(
      /^failed to evaluate dependency apps\/b: readyExpr: /,
    );
  });
});
