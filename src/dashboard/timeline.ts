/**
 * An app's versions in one environment over a window (30 days), as bars on a
 * time axis: computed from its git history (./repo.ts `history`: commits
 * newest first, each with the versions it moved). Pure and free of imports
 * but types, so the browser bundle renders the same picture the server did.
 */
import type { HistoryEntry } from "./types.ts";

export const TIMELINE_DAYS = 30;
const DAY = 86_400_000;

export interface Segment {
  /** The pinned version (`tag`, or `tag@sha256:…` shortened to 12 hex digits). */
  version: string;
  /** Milliseconds since the epoch, within the window. */
  from: number;
  to: number;
}

export interface Timeline {
  start: number;
  end: number;
  /** Oldest first; none before `known` when the fetched history does not reach the window's start. */
  segments: Segment[];
  /** Since when the versions are known (the window's start, or the oldest commit fetched). */
  known: number;
}

/** `1.2.0@sha256:abcdef…` → `1.2.0@abcdef012345`. */
export function shortPin(version: string): string {
  return version.replace(/@sha256:([0-9a-f]{12})[0-9a-f]*/, "@$1");
}

/**
 * The versions of `image` (the first image an entry moved, when not given)
 * from `now - days` to `now`. `complete`: the entries are every commit that
 * touched the folder (not cut at a limit), so the version before the oldest
 * one ran since the window's start (and `current`, when no commit in the
 * window moved the image, ran all along).
 */
export function timelineOf(
  entries: readonly HistoryEntry[],
  opts: { image?: string; now: number; days?: number; complete: boolean; current?: string },
): Timeline {
  const end = opts.now;
  const start = end - (opts.days ?? TIMELINE_DAYS) * DAY;
  const image = opts.image ?? entries.find((e) => e.moves.length)?.moves[0]?.image;
  const backwards: Segment[] = [];
  let to = end;
  let known = start;
  let reached = false;
  let before: string | undefined;
  for (const e of entries) {
    const m = e.moves.find((x) => x.image === image);
    const t = Date.parse(e.time);
    if (!m || Number.isNaN(t)) continue;
    if (t <= start) {
      if (m.to) backwards.push({ version: shortPin(m.to), from: start, to });
      reached = true;
      break;
    }
    if (m.to && t < to) backwards.push({ version: shortPin(m.to), from: t, to });
    to = Math.min(to, t);
    before = m.from;
  }
  if (!reached) {
    const earlier = backwards.length ? before : (before ?? opts.current);
    if (opts.complete && earlier) backwards.push({ version: shortPin(earlier), from: start, to });
    else if (!opts.complete) known = backwards.length ? to : end;
  }
  // Adjacent bars of one version (a commit that moved another image) are one bar.
  const segments: Segment[] = [];
  for (const s of backwards.reverse()) {
    const last = segments[segments.length - 1];
    if (last && last.version === s.version && last.to === s.from) last.to = s.to;
    else segments.push({ ...s });
  }
  return { start, end, segments, known };
}

/** The picture in words, for the SVG's accessible name: `1.0.0 from 2026-11-06 to 2026-11-20; 1.1.0 since 2026-11-20`. */
export function describeTimeline(t: Timeline): string {
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const parts = t.segments.map((s) =>
    s.to >= t.end ? `${s.version} since ${day(s.from)}` : `${s.version} from ${day(s.from)} to ${day(s.to)}`,
  );
  if (t.known > t.start) parts.unshift(`unknown before ${day(t.known)}`);
  return parts.length ? parts.join("; ") : "no version in the window";
}
