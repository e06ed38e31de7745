/** Which watch events wake the agent (./src/agent/watch.ts): spec changes and requests, never status writes. */
import { describe, expect, it } from "vitest";
import { eventDue, type WatchedObject } from "../../src/agent/watch.ts";

const obj = (meta: WatchedObject["metadata"]): WatchedObject => ({
  metadata: { namespace: "ns", name: "app", generation: 1, ...meta },
});

describe("eventDue", () => {
  const cases: [string, [string, WatchedObject][], boolean[]][] = [
    ["a new object", [["ADDED", obj({})]], [true]],
    [
      "the same object replayed",
      [
        ["ADDED", obj({})],
        ["ADDED", obj({})],
      ],
      [true, false],
    ],
    [
      "a status write (same generation)",
      [
        ["ADDED", obj({})],
        ["MODIFIED", obj({})],
      ],
      [true, false],
    ],
    [
      "a spec change",
      [
        ["ADDED", obj({})],
        ["MODIFIED", obj({ generation: 2 })],
      ],
      [true, true],
    ],
    [
      "a reconcile request",
      [
        ["ADDED", obj({})],
        ["MODIFIED", obj({ annotations: { "reconcile.fluxcd.io/requestedAt": "t1" } })],
        ["MODIFIED", obj({ annotations: { "reconcile.fluxcd.io/requestedAt": "t1", other: "x" } })],
      ],
      [true, true, false],
    ],
    [
      "a forced reconcile",
      [
        ["ADDED", obj({})],
        ["MODIFIED", obj({ annotations: { "reconcile.fluxcd.io/forceAt": "t" } })],
      ],
      [true, true],
    ],
    [
      "deletion started, then gone",
      [
        ["ADDED", obj({})],
        ["MODIFIED", obj({ deletionTimestamp: "2026-01-01T00:00:00Z" })],
        ["DELETED", obj({ deletionTimestamp: "2026-01-01T00:00:00Z" })],
        ["DELETED", obj({})],
      ],
      [true, true, true, false],
    ],
    ["a bookmark or an unknown type", [["BOOKMARK", obj({})]], [false]],
  ];
  it.each(cases)("%s", (_, events, want) => {
    const known = new Map<string, string>();
    expect(events.map(([type, o]) => eventDue(known, type, o))).toEqual(want);
  });
});
