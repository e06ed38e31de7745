/**
 * The status the agent writes for the kinds it serves beside Kustomizations
 * (src/agent/status.ts): Flux's Ready/Stalled from one outcome, the handled
 * request, and nothing to write when nothing changes.
 */
import { describe, expect, it } from "vitest";
import { nextStatus, type StatusObject } from "../../src/agent/status.ts";

const T = "2026-12-06T19:00:00Z";
const obj = (status?: StatusObject["status"], annotations?: Record<string, string>): StatusObject => ({
  metadata: { namespace: "apps", name: "a", generation: 3, ...(annotations ? { annotations } : {}) },
  ...(status ? { status } : {}),
});
const types = (s: Record<string, unknown> | undefined) =>
  ((s?.conditions ?? []) as { type: string; status: string; reason: string }[]).map(
    (c) => `${c.type}=${c.status}/${c.reason}`,
  );

describe("status from one outcome", () => {
  it.each([
    ["success: Ready=True Succeeded", {}, { message: "ok" }, ["Ready=True/Succeeded"]],
    [
      "failure: Ready=False with the reason",
      {},
      { message: "no", reason: "ScanFailed" },
      ["Ready=False/ScanFailed"],
    ],
    [
      "failure that retrying cannot mend: Stalled too",
      {},
      { message: "bad", reason: "InvalidSpec", stalled: true },
      ["Ready=False/InvalidSpec", "Stalled=True/InvalidSpec"],
    ],
  ])("%s", (_rule, _x, outcome, expected) => {
    const next = nextStatus(obj(), outcome, {}, T, { handlesRequests: true });
    expect(types(next).sort()).toEqual(expected.sort());
    expect(next?.observedGeneration).toBe(3);
  });

  it("a success after a stall clears Stalled and Reconciling", () => {
    const stalled = nextStatus(obj(), { message: "bad", reason: "InvalidSpec", stalled: true }, {}, T, {
      handlesRequests: true,
    });
    const withReconciling = {
      ...stalled,
      conditions: [
        ...((stalled?.conditions ?? []) as object[]),
        { type: "Reconciling", status: "True", reason: "Progressing", message: "", lastTransitionTime: T },
      ],
    } as StatusObject["status"];
    expect(
      types(nextStatus(obj(withReconciling), { message: "ok" }, {}, T, { handlesRequests: true })),
    ).toEqual(["Ready=True/Succeeded"]);
  });

  it("the same outcome again writes nothing", () => {
    const first = nextStatus(obj(), { message: "ok" }, { tagCount: 2 }, T, { handlesRequests: true });
    expect(
      nextStatus(obj(first as StatusObject["status"]), { message: "ok" }, { tagCount: 2 }, T, {
        handlesRequests: true,
      }),
    ).toBeUndefined();
    expect(
      nextStatus(obj(first as StatusObject["status"]), { message: "ok" }, { tagCount: 3 }, T, {
        handlesRequests: true,
      })?.tagCount,
    ).toBe(3);
  });

  it("the reconcile request is echoed only by kinds that handle requests", () => {
    const requested = obj(undefined, { "reconcile.fluxcd.io/requestedAt": "r1" });
    expect(
      nextStatus(requested, { message: "ok" }, {}, T, { handlesRequests: true })?.lastHandledReconcileAt,
    ).toBe("r1");
    expect(nextStatus(requested, { message: "ok" }, {}, T, { handlesRequests: false })).not.toHaveProperty(
      "lastHandledReconcileAt",
    );
  });
});
