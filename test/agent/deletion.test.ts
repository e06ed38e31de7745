/** spec.deletionPolicy: Flux's table (kustomize-controller's finalizerShouldDeleteResources) as cases. */
import { describe, expect, it } from "vitest";
import { deletionPlan } from "../../src/agent/deletion.ts";

describe("deletionPolicy: what a deleted Kustomization takes with it", () => {
  it.each([
    ["MirrorPrune (default) with prune deletes", { prune: true }, { delete: true, wait: false }],
    ["MirrorPrune (default) without prune orphans", { prune: false }, { delete: false, wait: false }],
    [
      "MirrorPrune spelled out",
      { prune: true, deletionPolicy: "MirrorPrune" },
      { delete: true, wait: false },
    ],
    [
      "Delete deletes even without prune",
      { prune: false, deletionPolicy: "Delete" },
      { delete: true, wait: false },
    ],
    [
      "WaitForTermination deletes and waits",
      { prune: false, deletionPolicy: "WaitForTermination" },
      { delete: true, wait: true },
    ],
    [
      "Orphan leaves even with prune",
      { prune: true, deletionPolicy: "Orphan" },
      { delete: false, wait: false },
    ],
    [
      "suspended: nothing, whatever the policy",
      { prune: true, suspend: true, deletionPolicy: "Delete" },
      { delete: false, wait: false },
    ],
  ])("%s", (_rule, spec, plan) => {
    expect(deletionPlan(spec, 3)).toEqual(plan);
  });

  it("an empty inventory deletes nothing", () => {
    expect(deletionPlan({ prune: true, deletionPolicy: "Delete" }, 0)).toEqual({
      delete: false,
      wait: false,
    });
  });
});
