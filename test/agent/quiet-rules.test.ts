import { describe, expect, it } from "vitest";
import { latestOwnEvent } from "../../src/agent/events.ts";

const ev = (reason: string, at: string, rv: string, component = "shipmate-agent") => ({
  metadata: { resourceVersion: rv },
  type: "Warning",
  reason,
  message: reason,
  source: { component },
  lastTimestamp: at,
});

describe("quiet when steady: what makes a repeat look new", () => {
  it.each([
    [
      "the newest event wins",
      [ev("A", "2026-01-01T00:00:00Z", "5"), ev("B", "2026-01-01T00:00:01Z", "3")],
      "B",
    ],
    [
      "in the same second, the later write (resourceVersion) wins",
      [ev("A", "2026-01-01T00:00:00Z", "9"), ev("B", "2026-01-01T00:00:00Z", "10")],
      "B",
    ],
    [
      "events of other components are not ours to compare with",
      [ev("A", "2026-01-01T00:00:00Z", "1"), ev("X", "2026-01-01T00:00:09Z", "2", "kustomize-controller")],
      "A",
    ],
    ["no event of ours: nothing to compare with", [ev("X", "2026-01-01T00:00:09Z", "2", "other")], undefined],
  ])("%s", (_rule, items, expected) => {
    expect(latestOwnEvent(items)?.reason).toBe(expected);
  });
});
