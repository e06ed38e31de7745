/**
 * An app's versions over 30 days from its git history (src/dashboard/timeline.ts):
 * bars per version, where the window starts, what is unknown, and the words
 * that stand for the picture.
 */
import { describe, expect, it } from "vitest";
import { describeTimeline, shortPin, timelineOf } from "../../src/dashboard/timeline.ts";
import type { HistoryEntry } from "../../src/dashboard/types.ts";

const NOW = Date.parse("2026-12-01T00:00:00Z");
const daysAgo = (d: number) => new Date(NOW - d * 86_400_000).toISOString();
const entry = (d: number, moves: [string, string, string][]): HistoryEntry => ({
  commit: `c${d}`,
  author: "bot",
  email: "bot@x",
  bot: true,
  time: daysAgo(d),
  subject: "bump",
  moves: moves.map(([image, from, to]) => ({ image, from, to })),
});
const bars = (t: ReturnType<typeof timelineOf>) =>
  t.segments.map(
    (s) => `${s.version} ${Math.round((NOW - s.from) / 86_400_000)}→${Math.round((NOW - s.to) / 86_400_000)}`,
  );

describe("timeline", () => {
  const cases: {
    name: string;
    entries: HistoryEntry[];
    complete: boolean;
    current?: string;
    image?: string;
    want: string[];
    words: string;
  }[] = [
    {
      name: "two moves in the window: three bars, the oldest from the window's start",
      entries: [entry(5, [["web", "1.1.0", "1.2.0"]]), entry(20, [["web", "1.0.0", "1.1.0"]])],
      complete: true,
      want: ["1.0.0 30→20", "1.1.0 20→5", "1.2.0 5→0"],
      words:
        "1.0.0 from 2026-11-01 to 2026-11-11; 1.1.0 from 2026-11-11 to 2026-11-26; 1.2.0 since 2026-11-26",
    },
    {
      name: "a move before the window sets the version at its start",
      entries: [entry(10, [["web", "1.1.0", "1.2.0"]]), entry(45, [["web", "1.0.0", "1.1.0"]])],
      complete: false,
      want: ["1.1.0 30→10", "1.2.0 10→0"],
      words: "1.1.0 from 2026-11-01 to 2026-11-21; 1.2.0 since 2026-11-21",
    },
    {
      name: "history cut at its limit inside the window: unknown before the oldest commit fetched",
      entries: [entry(3, [["web", "1.1.0", "1.2.0"]]), entry(8, [["web", "1.0.0", "1.1.0"]])],
      complete: false,
      want: ["1.1.0 8→3", "1.2.0 3→0"],
      words: "unknown before 2026-11-23; 1.1.0 from 2026-11-23 to 2026-11-28; 1.2.0 since 2026-11-28",
    },
    {
      name: "nothing moved in the window: the current version all along",
      entries: [],
      complete: true,
      current: "2.0.0",
      want: ["2.0.0 30→0"],
      words: "2.0.0 since 2026-11-01",
    },
    {
      name: "added in the window: nothing before it",
      entries: [entry(12, [["web", "", "1.0.0"]])],
      complete: true,
      want: ["1.0.0 12→0"],
      words: "1.0.0 since 2026-11-19",
    },
    {
      name: "commits that moved another image or nothing leave the bar whole; digests are shortened",
      entries: [
        entry(2, [["sidecar", "1", "2"]]),
        entry(4, []),
        entry(6, [["web", "1.0.0", `1.1.0@sha256:${"ab".repeat(32)}`]]),
      ],
      image: "web",
      complete: true,
      want: ["1.0.0 30→6", "1.1.0@abababababab 6→0"],
      words: "1.0.0 from 2026-11-01 to 2026-11-25; 1.1.0@abababababab since 2026-11-25",
    },
    {
      name: "removed in the window: no bar after the removal",
      entries: [entry(7, [["web", "1.0.0", ""]])],
      complete: true,
      want: ["1.0.0 30→7"],
      words: "1.0.0 from 2026-11-01 to 2026-11-24",
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const t = timelineOf(c.entries, {
        now: NOW,
        complete: c.complete,
        ...(c.image ? { image: c.image } : {}),
        ...(c.current ? { current: c.current } : {}),
      });
      expect(bars(t)).toEqual(c.want);
      expect(describeTimeline(t)).toBe(c.words);
    });

  it("shortPin keeps a tag and 12 hex digits of a digest", () => {
    expect(shortPin(`1.0@sha256:${"0123456789abcdef".repeat(4)}`)).toBe("1.0@0123456789ab");
    expect(shortPin("1.0")).toBe("1.0");
  });
});
