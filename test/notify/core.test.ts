/**
 * The pure core of notifications, as tables: which events a Flux Alert
 * takes, what it adds, the dedupe window, the per-provider rate and the
 * retry schedule, and how events become commit statuses.
 */
import { describe, expect, it } from "vitest";
import { alertMatches, compileAlert, decorate, needsLabels } from "../../src/notify/alert.ts";
import { commitOf, eventKey, type NotifyEvent, revisionOf } from "../../src/notify/event.ts";
import { backoffMs, Deduper, RateLimiter } from "../../src/notify/limits.ts";
import { commitStatusFor, describeReason } from "../../src/notify/providers/commitstatus.ts";

const SHA = "0123456789abcdef0123456789abcdef01234567";

function event(
  over: Partial<NotifyEvent> & { kind?: string; name?: string; namespace?: string } = {},
): NotifyEvent {
  const { kind = "Kustomization", name = "apps", namespace = "flux-system", ...rest } = over;
  return {
    involvedObject: { apiVersion: "kustomize.toolkit.fluxcd.io/v1", kind, name, namespace },
    severity: "info",
    timestamp: "2026-01-01T00:00:00Z",
    message: "ConfigMap/default/a configured",
    reason: "ReconciliationSucceeded",
    metadata: { revision: `main@sha1:${SHA}` },
    reportingController: "kustomize-controller",
    ...rest,
  };
}

function rule(spec: Record<string, unknown>, namespace = "flux-system") {
  const compiled = compileAlert(namespace, "on-call", { providerRef: { name: "slack" }, ...spec });
  if (!("rule" in compiled)) throw new Error(compiled.refusal.message);
  return compiled.rule;
}

describe("Alert matching (Flux v1beta3 semantics)", () => {
  const cases: [string, Record<string, unknown>, NotifyEvent, boolean, Record<string, string>?][] = [
    [
      "eventSources: kind and name",
      { eventSources: [{ kind: "Kustomization", name: "apps" }] },
      event(),
      true,
    ],
    [
      "eventSources: another name",
      { eventSources: [{ kind: "Kustomization", name: "infra" }] },
      event(),
      false,
    ],
    ["eventSources: another kind", { eventSources: [{ kind: "HelmRelease", name: "*" }] }, event(), false],
    [
      "eventSources: * takes every name",
      { eventSources: [{ kind: "Kustomization", name: "*" }] },
      event(),
      true,
    ],
    [
      "namespace defaults to the Alert's",
      { eventSources: [{ kind: "Kustomization", name: "*" }] },
      event({ namespace: "apps" }),
      false,
    ],
    [
      "namespace given: other namespaces",
      { eventSources: [{ kind: "Kustomization", name: "*", namespace: "apps" }] },
      event({ namespace: "apps" }),
      true,
    ],
    [
      "matchLabels with *: labels match",
      { eventSources: [{ kind: "Kustomization", name: "*", matchLabels: { team: "a" } }] },
      event(),
      true,
      { team: "a", other: "x" },
    ],
    [
      "matchLabels with *: labels differ",
      { eventSources: [{ kind: "Kustomization", name: "*", matchLabels: { team: "a" } }] },
      event(),
      false,
      { team: "b" },
    ],
    [
      "matchLabels with *: labels unknown",
      { eventSources: [{ kind: "Kustomization", name: "*", matchLabels: { team: "a" } }] },
      event(),
      false,
    ],
    [
      "eventSeverity error: an info event is dropped",
      { eventSeverity: "error", eventSources: [{ kind: "Kustomization", name: "*" }] },
      event(),
      false,
    ],
    [
      "eventSeverity error: an error event passes",
      { eventSeverity: "error", eventSources: [{ kind: "Kustomization", name: "*" }] },
      event({ severity: "error", reason: "HealthCheckFailed" }),
      true,
    ],
    [
      "inclusionList: message must match one",
      { inclusionList: ["^Deployment/"], eventSources: [{ kind: "Kustomization", name: "*" }] },
      event(),
      false,
    ],
    [
      "inclusionList: a match passes",
      {
        inclusionList: ["^Deployment/", "configured$"],
        eventSources: [{ kind: "Kustomization", name: "*" }],
      },
      event(),
      true,
    ],
    [
      "exclusionList: a match drops",
      { exclusionList: ["ConfigMap/"], eventSources: [{ kind: "Kustomization", name: "*" }] },
      event(),
      false,
    ],
    [
      "suspend: nothing passes",
      { suspend: true, eventSources: [{ kind: "Kustomization", name: "*" }] },
      event(),
      false,
    ],
  ];
  it.each(cases)("%s", (_name, spec, ev, want, labels) => {
    expect(alertMatches(rule(spec), ev, labels)).toBe(want);
  });

  it("needsLabels: only a * source with matchLabels that selects the object", () => {
    expect(needsLabels(rule({ eventSources: [{ kind: "Kustomization", name: "*" }] }), event())).toBe(false);
    const r = rule({ eventSources: [{ kind: "Kustomization", name: "*", matchLabels: { a: "b" } }] });
    expect(needsLabels(r, event())).toBe(true);
    expect(needsLabels(r, event({ kind: "HelmRelease" }))).toBe(false);
  });

  it("summary and eventMetadata become metadata; the emitter's keys are kept", () => {
    const r = rule({
      summary: "cluster eu-1",
      eventMetadata: { env: "prod", revision: "forged" },
      eventSources: [{ kind: "Kustomization", name: "*" }],
    });
    expect(decorate(r, event()).metadata).toEqual({
      summary: "cluster eu-1",
      env: "prod",
      revision: `main@sha1:${SHA}`,
    });
  });

  const refusals: [string, Record<string, unknown>, string][] = [
    [
      "an unknown field is refused by name",
      { eventSources: [], exclusionlist: ["x"] },
      "refused rather than ignored: spec.exclusionlist (not a field this agent knows)",
    ],
    [
      "an unknown source field",
      { eventSources: [{ kind: "Kustomization", name: "*", labels: { a: "b" } }] },
      "spec.eventSources.labels",
    ],
    [
      "a bad regex names the list and entry",
      { eventSources: [], inclusionList: ["("] },
      "spec.inclusionList[0]: error parsing regexp",
    ],
    ["a bad severity", { eventSources: [], eventSeverity: "warning" }, "spec.eventSeverity"],
  ];
  it.each(refusals)("%s", (_name, spec, text) => {
    const compiled = compileAlert("ns", "a", { providerRef: { name: "p" }, ...spec });
    expect("refusal" in compiled && compiled.refusal.message).toContain(text);
    expect("refusal" in compiled && compiled.refusal.message).toMatch(/^Alert ns\/a: /);
  });
});

describe("events", () => {
  it.each([
    [`main@sha1:${SHA}`, SHA],
    [`sha1:${SHA}`, SHA],
    [`main/${SHA}`, SHA],
    [SHA, SHA],
    ["v1.2.3@sha256:abc", undefined],
    ["main", undefined],
  ])("commitOf(%s)", (rev, want) => expect(commitOf(rev)).toBe(want));

  it("revision is read under a group prefix too (older Flux events)", () => {
    expect(revisionOf(event({ metadata: { "kustomize.toolkit.fluxcd.io/revision": "r1" } }))).toBe("r1");
  });

  it("the dedupe key: same object, severity, reason, message and revision", () => {
    const base = eventKey(event());
    expect(eventKey(event({ timestamp: "2027-01-01T00:00:00Z" }))).toBe(base);
    expect(eventKey(event({ message: "other" }))).not.toBe(base);
    expect(eventKey(event({ metadata: { revision: "main@sha1:ff" } }))).not.toBe(base);
    expect(eventKey(event({ severity: "error" }))).not.toBe(base);
  });
});

describe("pacing", () => {
  it("dedupe: the same key within 5 minutes is seen once", () => {
    let t = 0;
    const d = new Deduper(300_000, () => t);
    expect(d.seen("k")).toBe(false);
    t = 299_999;
    expect(d.seen("k")).toBe(true);
    expect(d.seen("other")).toBe(false);
    t = 300_000;
    expect(d.seen("k")).toBe(false);
  });

  it("rate: a burst goes at once, then one slot per 60/perMinute seconds, per provider", () => {
    let t = 0;
    const r = new RateLimiter({ burst: 2, perMinute: 6 }, () => t);
    expect([r.reserve("a"), r.reserve("a"), r.reserve("a"), r.reserve("a")]).toEqual([0, 0, 10_000, 20_000]);
    expect(r.reserve("b")).toBe(0);
    t = 60_000;
    expect(r.reserve("a")).toBe(0);
  });

  it.each([
    [2, 1000],
    [3, 2000],
    [4, 4000],
    [5, 8000],
    [9, 10_000],
  ])("backoff before attempt %i: %i ms (capped)", (n, ms) => {
    expect(backoffMs(n, { attempts: 10, baseMs: 1000, maxMs: 10_000 })).toBe(ms);
  });
});

describe("commit statuses as Flux sets them", () => {
  it.each([
    ["ReconciliationSucceeded", "info", "success", "reconciliation succeeded"],
    ["HealthCheckFailed", "error", "failure", "health check failed"],
    ["BuildFailed", "error", "failure", "build failed"],
  ] as const)("%s → %s", (reason, severity, state, description) => {
    const s = commitStatusFor(event({ reason, severity }), "6f1c2a9e-1111-2222-3333-444444444444");
    expect(s).toEqual({ state, description, context: "kustomization/apps/6f1c2a9e" });
  });
  it("Progressing sets none", () =>
    expect(commitStatusFor(event({ reason: "Progressing" }))).toBeUndefined());
  it("describeReason splits acronyms too", () =>
    expect(describeReason("OCIPullFailed")).toBe("oci pull failed"));
});
