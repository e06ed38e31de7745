/** The agent's pure rules, one table per rule. */
import { describe, expect, it } from "vitest";
import { assessHealth } from "../../src/agent/health.ts";
import {
  conditionsFor,
  dueReason,
  orderByDependencies,
  parseDuration,
  readyAt,
  setCondition,
} from "../../src/agent/kustomization.ts";
import { microTime } from "../../src/agent/leader.ts";
import { needsOverlay, overlayDocument, resolvePath } from "../../src/agent/render.ts";
import { conflictManagers, onlyImperative } from "../../src/kube/apply.ts";
import { ApiError } from "../../src/kube/client.ts";
import {
  formatKustomizationRows as formatRows,
  healthyAt,
  type KustomizationRow,
} from "../../src/kube/control.ts";
import {
  applyRank,
  canonicalJson,
  inventoryId,
  isStageZero,
  parseInventoryId,
  pruneDisabled,
  sameObject,
  stateHash,
} from "../../src/kube/objects.ts";
import type { Condition } from "../../src/kube/schema.ts";

describe("durations are Go durations as Flux writes them", () => {
  it.each([
    ["30s", 30_000],
    ["1m", 60_000],
    ["1h30m", 5_400_000],
    ["500ms", 500],
    ["1.5s", 1500],
  ])("%s = %d ms", (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(["", "5", "1d", "m5", "1m ", "-1s"])("rejects %j", (text) =>
    expect(() => parseDuration(text)).toThrow(),
  );
});

describe("dependsOn: dependencies come first; cycles and missing dependencies are blocked", () => {
  const k = (name: string, ...deps: string[]) => ({
    name,
    namespace: "ns",
    dependsOn: deps.map((d) => ({ name: d, namespace: "ns" })),
  });
  it.each([
    ["independent keep input order", [k("a"), k("b")], ["a", "b"], []],
    ["a dependency moves ahead", [k("apps", "infra"), k("infra")], ["infra", "apps"], []],
    ["chains resolve transitively", [k("c", "b"), k("b", "a"), k("a")], ["a", "b", "c"], []],
    ["a cycle blocks its members", [k("a", "b"), k("b", "a"), k("c")], ["c"], ["a", "b"]],
    ["a missing dependency blocks the dependent", [k("a", "ghost"), k("b")], ["b"], ["a"]],
    ["dependents of a blocked one are blocked", [k("a", "ghost"), k("b", "a")], [], ["a", "b"]],
  ])("%s", (_rule, items, order, blocked) => {
    const res = orderByDependencies(items);
    expect(res.order.map((i) => i.name)).toEqual(order);
    expect(res.blocked.map((b) => b.item.name).sort()).toEqual(blocked);
  });
  it("names the cycle in the reason", () => {
    const res = orderByDependencies([k("a", "b"), k("b", "a")]);
    expect(res.blocked[0]?.reason).toMatch(/dependency cycle: .*a.*b/);
  });
});

describe("conditions follow the API conventions and Flux's vocabulary", () => {
  const t0 = "2024-01-01T00:00:00Z";
  const t1 = "2024-01-01T00:05:00Z";
  it("transition time moves only when the status flips", () => {
    const first = setCondition([], { type: "Ready", status: "True", reason: "A", message: "m" }, t0);
    const same = setCondition(first, { type: "Ready", status: "True", reason: "B", message: "n" }, t1);
    expect(same[0]?.lastTransitionTime).toBe(t0);
    expect(same[0]?.reason).toBe("B");
    const flipped = setCondition(same, { type: "Ready", status: "False", reason: "C", message: "o" }, t1);
    expect(flipped[0]?.lastTransitionTime).toBe(t1);
  });
  const types = (c: Condition[]) => Object.fromEntries(c.map((x) => [x.type, `${x.status}/${x.reason}`]));
  it.each([
    [
      "progressing: Ready Unknown and Reconciling True",
      { kind: "progressing", message: "m" },
      false,
      { Reconciling: "True/Progressing", Ready: "Unknown/Progressing" },
    ],
    [
      "success: Ready True, no Reconciling/Stalled",
      { kind: "succeeded", message: "m" },
      false,
      { Ready: "True/ReconciliationSucceeded" },
    ],
    [
      "success with health: Healthy True",
      { kind: "succeeded", message: "m" },
      true,
      { Ready: "True/ReconciliationSucceeded", Healthy: "True/Succeeded" },
    ],
    [
      "retryable failure: not Stalled",
      { kind: "failed", reason: "BuildFailed", message: "m" },
      false,
      { Ready: "False/BuildFailed" },
    ],
    [
      "terminal failure: Stalled",
      { kind: "failed", reason: "InvalidSpec", message: "m", stalled: true },
      false,
      { Ready: "False/InvalidSpec", Stalled: "True/InvalidSpec" },
    ],
    [
      "health failure: Healthy False",
      { kind: "failed", reason: "HealthCheckFailed", message: "m", health: "failed" },
      true,
      { Ready: "False/HealthCheckFailed", Healthy: "False/HealthCheckFailed" },
    ],
  ] as const)("%s", (_rule, outcome, health, expected) => {
    const start = conditionsFor([], { kind: "progressing", message: "x" }, 1, t0, health);
    const c = outcome.kind === "progressing" ? start : conditionsFor(start, outcome, 2, t1, health);
    expect(types(c)).toEqual(expected);
    expect(c.every((x) => x.observedGeneration === (outcome.kind === "progressing" ? 1 : 2))).toBe(true);
  });
  it("readyAt needs Ready=True at the very revision", () => {
    const status = {
      lastAppliedRevision: "main@sha1:abc",
      conditions: setCondition([], { type: "Ready", status: "True", reason: "r", message: "" }, t0),
    };
    expect(readyAt(status, "main@sha1:abc")).toBe(true);
    expect(readyAt(status, "main@sha1:def")).toBe(false);
    expect(readyAt({ ...status, conditions: [] }, "main@sha1:abc")).toBe(false);
  });
});

describe("a Kustomization is due when something changed or its interval passed", () => {
  const base = {
    now: 100_000,
    lastRun: 90_000,
    lastFailed: false,
    intervalMs: 60_000,
    retryIntervalMs: 5_000,
    revision: "r2",
    status: { lastAttemptedRevision: "r2", observedGeneration: 3, lastHandledReconcileAt: "t1" },
    generation: 3,
    requestedAt: "t1",
  };
  it.each([
    ["nothing changed: not due", {}, undefined],
    ["never run since start", { lastRun: undefined }, "first reconcile since start"],
    ["new revision", { revision: "r3" }, "new revision r3"],
    ["spec edited (generation moved)", { generation: 4 }, "spec changed"],
    ["reconcile requested by annotation", { requestedAt: "t2" }, "reconcile requested"],
    ["interval elapsed", { now: 150_001 }, "interval elapsed"],
    ["failed: retried after retryInterval", { lastFailed: true, now: 95_000 }, "retry after failure"],
    ["failed: not before retryInterval", { lastFailed: true, now: 94_000 }, undefined],
  ])("%s", (_rule, change, expected) => expect(dueReason({ ...base, ...change })).toBe(expected));
});

describe("health: workloads are Ready when rolled out, Jobs when complete, others by their Ready condition", () => {
  const dep = (spec: object, status: object, generation = 2) => ({
    kind: "Deployment",
    metadata: { generation },
    spec,
    status,
  });
  it.each([
    [
      "deployment rolled out",
      dep({ replicas: 2 }, { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }),
      "Current",
    ],
    [
      "deployment not yet observed",
      dep({ replicas: 2 }, { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }),
      "InProgress",
    ],
    ["deployment without status yet", dep({ replicas: 1 }, {}), "InProgress"],
    [
      "deployment updating",
      dep({ replicas: 2 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 2 }),
      "InProgress",
    ],
    [
      "deployment old replicas terminating",
      dep({ replicas: 2 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 2, availableReplicas: 2 }),
      "InProgress",
    ],
    [
      "deployment progress deadline exceeded",
      dep(
        { replicas: 1 },
        {
          observedGeneration: 2,
          conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded" }],
        },
      ),
      "Failed",
    ],
    ["deployment scaled to zero", dep({ replicas: 0 }, { observedGeneration: 2 }), "Current"],
    [
      "statefulset ready at the update revision",
      {
        kind: "StatefulSet",
        metadata: { generation: 1 },
        spec: { replicas: 2 },
        status: {
          observedGeneration: 1,
          readyReplicas: 2,
          updatedReplicas: 2,
          currentRevision: "a",
          updateRevision: "a",
        },
      },
      "Current",
    ],
    [
      "statefulset mid-rollout",
      {
        kind: "StatefulSet",
        metadata: { generation: 1 },
        spec: { replicas: 2 },
        status: {
          observedGeneration: 1,
          readyReplicas: 2,
          updatedReplicas: 2,
          currentRevision: "a",
          updateRevision: "b",
        },
      },
      "InProgress",
    ],
    [
      "daemonset available everywhere",
      {
        kind: "DaemonSet",
        metadata: { generation: 1 },
        status: {
          observedGeneration: 1,
          desiredNumberScheduled: 3,
          updatedNumberScheduled: 3,
          numberAvailable: 3,
        },
      },
      "Current",
    ],
    [
      "daemonset updating",
      {
        kind: "DaemonSet",
        metadata: { generation: 1 },
        status: {
          observedGeneration: 1,
          desiredNumberScheduled: 3,
          updatedNumberScheduled: 1,
          numberAvailable: 3,
        },
      },
      "InProgress",
    ],
    [
      "job complete",
      { kind: "Job", status: { conditions: [{ type: "Complete", status: "True" }] } },
      "Current",
    ],
    [
      "job failed",
      {
        kind: "Job",
        status: { conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded" }] },
      },
      "Failed",
    ],
    ["job running", { kind: "Job", status: { active: 1 } }, "InProgress"],
    [
      "custom resource Ready=True",
      { kind: "Widget", status: { conditions: [{ type: "Ready", status: "True" }] } },
      "Current",
    ],
    [
      "custom resource Ready=False",
      { kind: "Widget", status: { conditions: [{ type: "Ready", status: "False", message: "waiting" }] } },
      "InProgress",
    ],
    [
      "custom resource Stalled",
      { kind: "Widget", status: { conditions: [{ type: "Stalled", status: "True" }] } },
      "Failed",
    ],
    [
      "custom resource behind its generation",
      {
        kind: "Widget",
        metadata: { generation: 2 },
        status: { observedGeneration: 1, conditions: [{ type: "Ready", status: "True" }] },
      },
      "InProgress",
    ],
    [
      "CRD established",
      { kind: "CustomResourceDefinition", status: { conditions: [{ type: "Established", status: "True" }] } },
      "Current",
    ],
    ["PVC pending", { kind: "PersistentVolumeClaim", status: { phase: "Pending" } }, "InProgress"],
    ["statusless object exists", { kind: "ConfigMap" }, "Current"],
  ])("%s", (_rule, obj, expected) => expect(assessHealth(obj).status).toBe(expected));
});

describe("inventory ids are Flux's ns_name_group_kind", () => {
  it.each([
    [{ namespace: "apps", name: "web", group: "apps", kind: "Deployment" }, "apps_web_apps_Deployment"],
    [{ namespace: "", name: "apps", group: "", kind: "Namespace" }, "_apps__Namespace"],
    [{ namespace: "default", name: "cfg", group: "", kind: "ConfigMap" }, "default_cfg__ConfigMap"],
  ])("%j -> %s", (ref, id) => {
    expect(inventoryId(ref)).toBe(id);
    expect(parseInventoryId(id, "v1")).toEqual({ ...ref, version: "v1" });
  });
  it("rejects ids that are not four fields", () => expect(parseInventoryId("a_b_c", "v1")).toBeUndefined());
});

describe("apply order: CRDs and Namespaces first (stage 0), webhooks last", () => {
  it("ranks", () => {
    const kinds = [
      "ValidatingWebhookConfiguration",
      "Deployment",
      "Service",
      "ConfigMap",
      "Namespace",
      "CustomResourceDefinition",
      "Widget",
    ];
    expect([...kinds].sort((a, b) => applyRank(a) - applyRank(b))).toEqual([
      "CustomResourceDefinition",
      "Namespace",
      "ConfigMap",
      "Service",
      "Deployment",
      "Widget",
      "ValidatingWebhookConfiguration",
    ]);
    expect(["CustomResourceDefinition", "Namespace", "ConfigMap"].map(isStageZero)).toEqual([
      true,
      true,
      false,
    ]);
  });
});

describe("state hash: the same desired object with the same owned fields hashes the same", () => {
  const obj = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" }, data: { x: "1" } };
  const fields = { "f:data": { "f:x": {} } };
  it("is independent of key order", () => {
    const reordered = { data: { x: "1" }, metadata: { name: "a" }, kind: "ConfigMap", apiVersion: "v1" };
    expect(stateHash(reordered, fields)).toBe(stateHash(obj, fields));
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
  });
  it.each([
    ["desired object changed", { ...obj, data: { x: "2" } }, fields],
    ["a field was taken by another writer", obj, { "f:data": {} }],
  ])("differs when the %s", (_rule, o, f) => expect(stateHash(o, f)).not.toBe(stateHash(obj, fields)));
  it("is absent when shipmate owns nothing", () => expect(stateHash(obj, undefined)).toBeUndefined());
  it("dry-run comparison ignores managedFields timestamps only", () => {
    const live = { ...obj, metadata: { name: "a", managedFields: [{ manager: "shipmate", time: "t1" }] } };
    expect(
      sameObject(live, {
        ...live,
        metadata: { ...live.metadata, managedFields: [{ manager: "shipmate", time: "t2" }] },
      }),
    ).toBe(true);
    expect(sameObject(live, { ...live, data: { x: "2" } })).toBe(false);
  });
  it("dry-run comparison ignores what another writer changed between the two reads: resourceVersion, status", () => {
    const live = { ...obj, metadata: { name: "a", resourceVersion: "7" }, status: { ready: true } };
    const dryRun = { ...obj, metadata: { name: "a", resourceVersion: "6" }, status: { ready: false } };
    expect(sameObject(live, dryRun)).toBe(true);
    // …unless the desired object sets a status itself: then it is the apply's to write.
    expect(sameObject(live, dryRun, true)).toBe(false);
    expect(sameObject(live, { ...dryRun, data: { x: "2" } })).toBe(false);
  });
});

describe("prune is disabled by Flux's or shipmate's annotation", () => {
  it.each([
    [{ "kustomize.toolkit.fluxcd.io/prune": "disabled" }, true],
    [{ "shipmate.io/prune": "disabled" }, true],
    [{ "kustomize.toolkit.fluxcd.io/prune": "enabled" }, false],
    [undefined, false],
  ])("%j -> %s", (annotations, disabled) => expect(pruneDisabled(annotations)).toBe(disabled));
});

describe("conflicts: imperative writers are drift, server-side appliers are rivals", () => {
  const conflict = new ApiError("apply", 409, {
    message: 'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas',
    reason: "Conflict",
    details: {
      causes: [
        {
          type: "FieldManagerConflict",
          message: 'conflict with "kubectl-edit" using apps/v1',
          field: ".spec.replicas",
        },
      ],
    },
  });
  it("reads the managers from the Status", () =>
    expect(conflictManagers(conflict)).toEqual(["kubectl-edit"]));
  const meta = (entries: { manager: string; operation: string }[]) => ({ managedFields: entries });
  it.each([
    ["only Update entries: drift", meta([{ manager: "kubectl-edit", operation: "Update" }]), true],
    ["an Apply entry: a rival owner", meta([{ manager: "kubectl-edit", operation: "Apply" }]), false],
    [
      "both: a rival owner",
      meta([
        { manager: "kubectl-edit", operation: "Update" },
        { manager: "kubectl-edit", operation: "Apply" },
      ]),
      false,
    ],
    ["unknown manager: not forced", meta([]), false],
  ])("%s", (_rule, live, expected) => expect(onlyImperative(["kubectl-edit"], live)).toBe(expected));
});

describe("render: the spec's transformations become a kustomize overlay", () => {
  it("no overlay when the spec transforms nothing", () => expect(needsOverlay({})).toBe(false));
  it("maps Flux fields to kustomize fields", () => {
    const spec = {
      targetNamespace: "prod",
      namePrefix: "p-",
      patches: [{ patch: "- op: replace", target: { kind: "Deployment" } }],
      images: [{ name: "nginx", newTag: "1.27" }],
      components: ["../components/x"],
      commonMetadata: { labels: { team: "a" }, annotations: { note: "b" } },
    };
    expect(needsOverlay(spec)).toBe(true);
    expect(overlayDocument("../src/apps", spec)).toEqual({
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      resources: ["../src/apps"],
      namespace: "prod",
      namePrefix: "p-",
      components: ["../src/components/x"],
      patches: [{ patch: "- op: replace", target: { kind: "Deployment" } }],
      images: [{ name: "nginx", newTag: "1.27" }],
      labels: [{ pairs: { team: "a" }, includeSelectors: false }],
      commonAnnotations: { note: "b" },
    });
  });
  it.each([
    ["./apps/prod", "/r/apps/prod"],
    ["apps", "/r/apps"],
    [undefined, "/r"],
    ["./", "/r"],
  ])("path %j resolves inside the checkout", (path, full) => expect(resolvePath("/r", path)).toBe(full));
  it.each(["../etc", "/etc", "apps/../../x"])("path %j escaping the checkout is refused", (path) =>
    expect(() => resolvePath("/r", path)).toThrow(/escapes/),
  );
});

describe("get output and the promotion gate's report", () => {
  const row = (
    name: string,
    ready: KustomizationRow["ready"],
    rev: string,
    suspended = false,
  ): KustomizationRow => ({
    namespace: "shipmate-system",
    name,
    ready,
    reason: "",
    message: `msg ${name}`,
    suspended,
    lastAppliedRevision: rev,
    lastAttemptedRevision: rev,
    inventory: 3,
    since: "",
  });
  it("prints a flux-like table", () => {
    expect(formatRows([row("apps", "True", "main@sha1:abc")])).toEqual([
      "NAMESPACE        NAME  REVISION       SUSPENDED  READY  OBJECTS  MESSAGE",
      "shipmate-system  apps  main@sha1:abc  False      True   3        msg apps",
    ]);
  });
  const sha = "0123456789abcdef0123456789abcdef01234567";
  const report = (rows: KustomizationRow[]) => ({
    healthy: rows.every((r) => r.ready === "True" && !r.suspended),
    revision: undefined,
    kustomizations: rows,
    checkedAt: "",
  });
  it.each([
    ["all ready at the commit", [row("a", "True", `main@sha1:${sha}`)], sha, true],
    ["abbreviated commit", [row("a", "True", `main@sha1:${sha}`)], sha.slice(0, 7), true],
    ["too short a prefix proves nothing", [row("a", "True", `main@sha1:${sha}`)], "0123", false],
    [
      "one not ready",
      [row("a", "True", `main@sha1:${sha}`), row("b", "False", `main@sha1:${sha}`)],
      sha,
      false,
    ],
    [
      "one at another revision",
      [row("a", "True", `main@sha1:${sha}`), row("b", "True", "main@sha1:ffff")],
      sha,
      false,
    ],
    ["one suspended", [row("a", "True", `main@sha1:${sha}`, true)], sha, false],
  ])("healthyAt: %s", (_rule, rows, commit, expected) =>
    expect(healthyAt(report(rows), commit)).toBe(expected),
  );
});

describe("lease times are MicroTime", () => {
  it("has six fractional digits", () =>
    expect(microTime(new Date("2024-05-06T07:08:09.123Z"))).toBe("2024-05-06T07:08:09.123000Z"));
});
