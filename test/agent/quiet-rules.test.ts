import { describe, expect, it } from "vitest";
import { latestOwnEvent } from "../../src/agent/events.ts";
import { relativeToRoots, withoutKlogHeaders } from "../../src/agent/render.ts";

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

  it.each([
    [
      "klog's header (time, pid, file) goes",
      'E1206 10:57:59.733168    7855 run.go:72] "command failed" err="x"',
      '"command failed" err="x"',
    ],
    ["other lines stay", "Error: accumulating resources", "Error: accumulating resources"],
  ])("%s", (_rule, text, expected) => {
    expect(withoutKlogHeaders(text)).toBe(expected);
  });

  it("a build message names paths from the repository root, whatever the agent's workdir", () => {
    expect(
      relativeToRoots("lstat /tmp/w1/source/broken/missing.yaml: no such file; in /tmp/w1/source", [
        "/tmp/w1/source",
      ]),
    ).toBe("lstat broken/missing.yaml: no such file; in .");
  });
});
