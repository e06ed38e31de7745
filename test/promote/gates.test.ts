import { describe, expect, it } from "vitest";
import type { CommitChecks } from "../../src/forge/types.ts";
import { evaluateGates, formatDuration, overall } from "../../src/promote/gates.ts";

const REV = "0123456789abcdef0123456789abcdef01234567";
const now = new Date("2026-06-01T12:00:00Z");
const checks = (state: CommitChecks["state"], ...names: [string, "success" | "pending" | "failure"][]) => ({
  sha: REV,
  state,
  checks: names.map(([name, s]) => ({ name, state: s })),
});

describe("promotion gates", () => {
  it.each([
    [
      "checks green → passed",
      { checks: checks("success", ["ci", "success"]) },
      "passed",
      "1 checks green on 0123456789ab",
    ],
    [
      "checks running → waiting, naming them",
      { checks: checks("pending", ["ci", "pending"], ["lint", "success"]) },
      "waiting",
      "checks still running on 0123456789ab: ci",
    ],
    [
      "no check reported yet → waiting",
      { checks: checks("none") },
      "waiting",
      "no check has reported on 0123456789ab yet",
    ],
    [
      "a failed check → failed, naming it",
      { checks: checks("failure", ["e2e", "failure"], ["ci", "success"]) },
      "failed",
      "checks failed on 0123456789ab: e2e",
    ],
  ] as const)("checks: %s", (_, ev, state, message) => {
    expect(evaluateGates({ checks: true }, { from: "staging", revision: REV, now, ...ev })).toEqual([
      { gate: "checks", state, message },
    ]);
  });

  it.each([
    [
      "healthy at the revision → passed",
      { healthy: true, atRevision: true, revision: `main@sha1:${REV}`, unready: [] },
      "passed",
    ],
    [
      "healthy elsewhere → waiting",
      { healthy: true, atRevision: false, revision: "main@sha1:ffff", unready: [] },
      "waiting",
    ],
    [
      "unhealthy → failed",
      { healthy: false, atRevision: false, revision: undefined, unready: ["flux-system/apps (timeout)"] },
      "failed",
    ],
  ] as const)("health: %s", (_, health, state) => {
    const [v] = evaluateGates(
      { health: true },
      { from: "staging", revision: REV, now, health: { ...health, unready: [...health.unready] } },
    );
    expect(v?.state).toBe(state);
  });

  it.each([
    [
      "ran longer than the soak → passed",
      new Date("2026-05-31T10:00:00Z"),
      "passed",
      "staging has run these versions for 26h (≥ 24h)",
    ],
    [
      "younger than the soak → waiting with the time left",
      new Date("2026-06-01T10:30:00Z"),
      "waiting",
      "staging has run these versions for 1h30m; soak needs 24h (22h30m left)",
    ],
    [
      "unknown (shallow clone) → failed with what to do",
      undefined,
      "failed",
      "cannot tell how long staging has run its versions (shallow clone?): promote from a full checkout or drop the soak gate",
    ],
  ] as const)("soak: %s", (_, changedAt, state, message) => {
    expect(
      evaluateGates(
        { soak: "24h" },
        { from: "staging", revision: REV, now, ...(changedAt ? { changedAt } : {}) },
      ),
    ).toEqual([{ gate: "soak", state, message }]);
  });

  it("no gate configured → nothing to check, promotion passes", () => {
    expect(overall(evaluateGates({}, { from: "staging", revision: REV, now }))).toBe("passed");
  });

  it.each([
    [["passed", "waiting"], "waiting"],
    [["waiting", "failed"], "failed"],
    [["passed", "passed"], "passed"],
  ] as const)("overall of %j is %s (the worst wins)", (states, want) => {
    expect(overall(states.map((state) => ({ gate: "checks" as const, state, message: "" })))).toBe(want);
  });

  it.each([
    [45 * 60_000, "45m"],
    [90 * 60_000, "1h30m"],
    [48 * 3_600_000, "48h"],
  ])("formatDuration(%i) = %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
