import { describe, expect, it } from "vitest";
import { applyUpdates } from "../../src/update/apply.ts";
import { applyUpdatesParallel } from "../../src/update/parallel.ts";

describe("parallel engine", () => {
  it("worker threads: a large tree split over threads gives exactly the single-thread result, in order", async () => {
    const files = Array.from({ length: 3000 }, (_, i) => ({
      path: `apps/app-${i}.yaml`,
      content: `${"# padding line to make the tree large enough for threads\n".repeat(15)}kind: Deployment\nmetadata: {name: app-${i}}\nimage: reg.local/app-${i % 7}:1.0.0 # {"$imagepolicy": "ns:app-${i % 7}"}\n${i % 500 === 0 ? "bad: [\n" : ""}`,
    }));
    const input = {
      selections: new Map(
        Array.from({ length: 7 }, (_, k) => [`ns:app-${k}`, { image: `reg.local/app-${k}`, tag: "2.0.0" }]),
      ),
      policies: [],
    };
    const single = applyUpdates(files, input);
    const parallel = await applyUpdatesParallel(files, input, { threads: 3 });
    expect(parallel).toEqual(single);
    expect(single.files).toHaveLength(2994);
    expect(single.problems.map((p) => p.file)).toEqual([
      "apps/app-0.yaml",
      "apps/app-500.yaml",
      "apps/app-1000.yaml",
      "apps/app-1500.yaml",
      "apps/app-2000.yaml",
      "apps/app-2500.yaml",
    ]);
  });
});
