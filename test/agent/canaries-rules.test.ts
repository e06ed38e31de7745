/** Which Canary phase changes the agent reports, and how (./src/agent/canaries.ts): transitions only, one line each. */
import { describe, expect, it } from "vitest";
import { type CanaryStatus, canariesByNamespace, canaryTransition } from "../../src/agent/canaries.ts";

const START = Date.parse("2026-01-01T10:00:00Z");
const BEFORE = "2026-01-01T09:59:00Z";
const AFTER = "2026-01-01T10:01:00Z";
const FAILED_CONDITION = {
  type: "Promoted",
  status: "False",
  reason: "Failed",
  message: "Canary analysis failed, Deployment scaled to zero.",
};
const failed = (over: Partial<CanaryStatus> = {}): CanaryStatus => ({
  phase: "Failed",
  failedChecks: 5,
  lastTransitionTime: AFTER,
  conditions: [FAILED_CONDITION],
  ...over,
});
const succeeded: CanaryStatus = {
  phase: "Succeeded",
  failedChecks: 0,
  lastTransitionTime: AFTER,
  conditions: [
    {
      type: "Promoted",
      status: "True",
      message: "Canary analysis completed successfully, promotion finished.",
    },
  ],
};
const FAILED_EVENT = {
  type: "Warning",
  reason: "CanaryFailed",
  message: "Canary apps/web failed: Canary analysis failed, Deployment scaled to zero. (5 failed checks)",
};

describe("canaryTransition", () => {
  const cases: [string, string | undefined, CanaryStatus | undefined, unknown][] = [
    ["Progressing to Failed", "Progressing", failed(), FAILED_EVENT],
    ["no phase yet to Failed", "", failed(), FAILED_EVENT],
    ["Failed seen again", "Failed", failed(), undefined],
    ["Progressing seen again", "Progressing", { phase: "Progressing" }, undefined],
    ["Initialized to Progressing", "Initialized", { phase: "Progressing" }, undefined],
    ["no status", undefined, undefined, undefined],
    [
      "first seen Failed before the agent started",
      undefined,
      failed({ lastTransitionTime: BEFORE }),
      undefined,
    ],
    [
      "first seen Failed with no transition time",
      undefined,
      failed({ lastTransitionTime: undefined }),
      undefined,
    ],
    ["first seen Failed after the agent started", undefined, failed(), FAILED_EVENT],
    [
      "one failed check, a multi-line message",
      "Progressing",
      failed({
        failedChecks: 1,
        conditions: [{ type: "Promoted", message: "Canary analysis failed,\n  Deployment scaled to zero." }],
      }),
      { ...FAILED_EVENT, message: FAILED_EVENT.message.replace("5 failed checks", "1 failed check") },
    ],
    [
      "no condition, no count",
      "Progressing",
      failed({ failedChecks: undefined, conditions: undefined }),
      { ...FAILED_EVENT, message: "Canary apps/web failed: analysis failed. (0 failed checks)" },
    ],
    [
      "Promoting to Succeeded",
      "Promoting",
      succeeded,
      {
        type: "Normal",
        reason: "CanarySucceeded",
        message: "Canary apps/web succeeded: Canary analysis completed successfully, promotion finished.",
      },
    ],
    [
      "first seen Succeeded before the agent started",
      undefined,
      { ...succeeded, lastTransitionTime: BEFORE },
      undefined,
    ],
  ];
  it.each(cases)("%s", (_, previous, status, expected) => {
    expect(canaryTransition({ namespace: "apps", name: "web" }, previous, status, START)).toEqual(expected);
  });
});

describe("canariesByNamespace", () => {
  it("groups the Canaries of the inventories by namespace, each with the first owner", () => {
    const got = canariesByNamespace([
      {
        owner: "apps",
        entries: [
          { id: "apps_web_flagger.app_Canary", v: "v1beta1" },
          { id: "apps_web_apps_Deployment", v: "v1" },
          { id: "db_pg_flagger.app_Canary", v: "v1beta1" },
        ],
      },
      { owner: "other", entries: [{ id: "apps_web_flagger.app_Canary", v: "v1beta1" }] },
      { owner: "infra", entries: [{ id: "_flagger_flagger.app_MetricTemplate", v: "v1beta1" }] },
    ]);
    expect([...got].map(([ns, names]) => [ns, [...names]])).toEqual([
      ["apps", [["web", "apps"]]],
      ["db", [["pg", "apps"]]],
    ]);
  });

  it("no inventory holds a Canary: nothing to read", () => {
    expect(
      canariesByNamespace([{ owner: "a", entries: [{ id: "apps_web_apps_Deployment", v: "v1" }] }]).size,
    ).toBe(0);
  });
});
