/**
 * Tag selection with Flux ImagePolicy semantics, as a reducer: tags arrive in
 * pages (registry order) and only the best candidate so far is kept, unless the
 * policy needs build times, in which case the surviving candidates are kept for
 * the scanner to enrich.
 *
 * Flux facts this follows (image-reflector-controller `internal/policy`):
 * - exclusionList removes tags before anything else (they never reach Flux's database);
 * - filterTags keeps tags the pattern matches anywhere (unanchored, like Go's
 *   `FindStringSubmatchIndex`); with `extract`, the expansion is what the policy
 *   compares, and the original tag is returned; two tags with the same
 *   extraction: the later one wins (Flux keeps a map from extraction to tag);
 * - semver: tags that are not versions are skipped; the highest version in range
 *   wins; among equal versions written differently (`v1.0.0`, `1.0.0`) the first
 *   listed wins (Flux compares with a strict "greater than");
 * - alphabetical asc picks the greatest string (byte order), desc the smallest;
 * - numerical: every candidate must parse as a Go float or the whole policy
 *   fails; asc picks the largest, desc the smallest; on equal values the later wins.
 */
import { type CompiledSelectionPolicy, compileSelectionPolicy, internalsOf, isCompiled } from "./compile.ts";
import { parseGoFloat } from "./numeric.ts";
import { compareVersions, parseTagVersion, type SemVersion } from "./semver.ts";
import type { NoSelectionReason, Selection, SelectionPolicy, TagCandidate } from "./types.ts";

/** How many tags went where, for messages and metrics. */
export interface SelectorStats {
  /** Tags fed in. */
  seen: number;
  /** Removed by exclusionList. */
  excluded: number;
  /** Left after filterTags (all non-excluded tags when there is no filter). */
  matched: number;
  /** Acceptable to the strategy: in range (semver), numbers (numerical), all others. */
  candidates: number;
}

export interface TagSelector {
  /** Feed one page of tags in registry order; pages may be as small or large as convenient. */
  add(tags: Iterable<string>): void;
  readonly stats: Readonly<SelectorStats>;
  /**
   * The decision from tag names. A policy that needs build times answers
   * `no-build-time` here once its candidates are known: enrich `candidates()`
   * and call `selectLatest` instead.
   */
  result(): Selection;
  /**
   * The tags that can still win, best first by the policy's order (registry
   * order for newestBuild). Kept only when the policy needs build times;
   * otherwise just the current best.
   */
  candidates(): string[];
}

interface Scored {
  tag: string;
  /** What the strategy compares: the tag, or its extraction. */
  key: string;
  version: SemVersion | undefined;
  number: number;
  index: number;
}

/** Go compares strings byte-wise in UTF-8; UTF-16 code units disagree only around surrogates. */
export function compareGoStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
      y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
    }
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

function plural(n: number, word: string): string {
  return `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;
}

/** `72h`, `90m`, `1h30m`, `45s`: the unit people wrote minAge in. */
export function formatDuration(ms: number): string {
  if (ms % 1000 !== 0 || ms < 1000) return `${ms}ms`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${s ? `${s}s` : ""}`;
}

function fail(reason: NoSelectionReason, message: string): Selection {
  return { ok: false, reason, message };
}

class Selector implements TagSelector {
  readonly stats: SelectorStats = { seen: 0, excluded: 0, matched: 0, candidates: 0 };
  private readonly compiled: CompiledSelectionPolicy;
  private readonly retainAll: boolean;
  private best: Scored | undefined;
  private retained: Scored[] = [];
  private notVersions = 0;
  private highestOutside: SemVersion | undefined;
  private notNumber: { tag: string; key: string } | undefined;
  private followedSeen = false;

  constructor(compiled: CompiledSelectionPolicy, retainAll: boolean) {
    this.compiled = compiled;
    this.retainAll = retainAll || compiled.needsBuildTimes;
  }

  add(tags: Iterable<string>): void {
    const { exclusions, filter, extract, semver } = internalsOf(this.compiled);
    const strategy = this.compiled.spec.strategy;
    const stats = this.stats;
    const follow = this.compiled.followTag;
    outer: for (const tag of tags) {
      const index = stats.seen++;
      for (const ex of exclusions) {
        if (ex.test(tag)) {
          stats.excluded++;
          continue outer;
        }
      }
      let key = tag;
      if (filter) {
        const m = filter.exec(tag);
        if (!m) continue;
        if (extract) key = extract.expand(tag, m);
      }
      stats.matched++;
      let version: SemVersion | undefined;
      let number = 0;
      switch (strategy.kind) {
        case "semver": {
          version = parseTagVersion(key);
          if (!version) {
            this.notVersions++;
            continue;
          }
          if (!semver!.check(version)) {
            if (!this.highestOutside || compareVersions(version, this.highestOutside) > 0)
              this.highestOutside = version;
            continue;
          }
          break;
        }
        case "numerical": {
          const n = parseGoFloat(key);
          if (n === undefined) {
            this.notNumber ??= { tag, key };
            continue;
          }
          number = n;
          break;
        }
        case "digest":
          if (tag !== follow) continue;
          this.followedSeen = true;
          break;
        default:
          break;
      }
      stats.candidates++;
      const scored: Scored = { tag, key, version, number, index };
      if (this.retainAll) this.retained.push(scored);
      if (!this.best || this.prefer(scored, this.best)) this.best = scored;
    }
  }

  /** Stream rule: does `a`, met after `b`, take `b`'s place? */
  private prefer(a: Scored, b: Scored): boolean {
    const s = this.compiled.spec.strategy;
    switch (s.kind) {
      case "semver": {
        const c = compareVersions(a.version!, b.version!);
        return c > 0 || (c === 0 && a.key === b.key);
      }
      case "alphabetical": {
        const c = compareGoStrings(a.key, b.key);
        return s.order === "desc" ? c <= 0 : c >= 0;
      }
      case "numerical":
        // Flux's loop, NaN included: skip only when strictly worse.
        return !(s.order === "desc" ? a.number > b.number : a.number < b.number);
      default:
        return false;
    }
  }

  /** Sort rule: negative when `a` ranks before `b`; consistent with `prefer`. */
  private rank(a: Scored, b: Scored): number {
    const s = this.compiled.spec.strategy;
    const later = b.index - a.index;
    switch (s.kind) {
      case "semver": {
        const c = compareVersions(b.version!, a.version!);
        if (c !== 0) return c;
        return a.key === b.key ? later : -later;
      }
      case "alphabetical": {
        const c = compareGoStrings(a.key, b.key);
        return c === 0 ? later : s.order === "desc" ? c : -c;
      }
      case "numerical": {
        const an = Number.isNaN(a.number);
        const bn = Number.isNaN(b.number);
        if (an || bn) return an && bn ? later : an ? 1 : -1;
        if (a.number === b.number) return later;
        return (s.order === "desc" ? a.number < b.number : a.number > b.number) ? -1 : 1;
      }
      default:
        return -later;
    }
  }

  ranked(): Scored[] {
    const list = this.retainAll ? [...this.retained] : this.best ? [this.best] : [];
    if (this.compiled.spec.strategy.kind !== "newestBuild") list.sort((a, b) => this.rank(a, b));
    return list;
  }

  candidates(): string[] {
    return this.ranked().map((s) => s.tag);
  }

  /** Why nothing can be selected from names alone, or undefined when something can. */
  nameFailure(): Selection | undefined {
    const { seen, excluded, matched } = this.stats;
    const spec = this.compiled.spec;
    const strategy = spec.strategy;
    if (seen - excluded === 0) {
      return fail(
        "no-tags",
        seen === 0
          ? "the repository has no tags"
          : `all ${plural(seen, "tag")} are excluded by exclusionList (${(spec.exclusionList ?? []).join(", ")})`,
      );
    }
    if (spec.filter && matched === 0) {
      return fail(
        "none-matched-filter",
        `none of ${plural(seen - excluded, "tag")} matches filterTags.pattern '${spec.filter.pattern}'`,
      );
    }
    if (strategy.kind === "numerical" && this.notNumber) {
      const { tag, key } = this.notNumber;
      const what = key === tag ? `tag '${tag}'` : `'${key}' (extracted from tag '${tag}')`;
      return fail(
        "not-a-number",
        `${what} is not a number; a numerical policy needs every candidate to be one (narrow filterTags.pattern)`,
      );
    }
    if (strategy.kind === "semver" && !this.best) {
      const details: string[] = [];
      if (this.highestOutside)
        details.push(`highest version outside the range: ${this.highestOutside.original}`);
      if (this.notVersions) details.push(`${plural(this.notVersions, "candidate")} not a version`);
      return fail(
        "none-in-range",
        `none of ${plural(matched, "candidate tag")} is a version in range '${strategy.range}'` +
          (details.length ? ` (${details.join("; ")})` : ""),
      );
    }
    if (strategy.kind === "digest" && !this.followedSeen) {
      return fail("tag-not-found", `tag '${strategy.tag}' not found among ${plural(seen - excluded, "tag")}`);
    }
    return undefined;
  }

  result(): Selection {
    const failure = this.nameFailure();
    if (failure) return failure;
    if (this.compiled.needsBuildTimes) {
      return fail(
        "no-build-time",
        `${this.compiled.spec.strategy.kind === "newestBuild" ? "newestBuild" : "minAge"} needs image build times for ${plural(this.stats.candidates, "candidate")}`,
      );
    }
    return { ok: true, tag: this.best!.tag };
  }
}

/** A streaming selector for one policy; feed it the registry's tag pages as they arrive. */
export function createSelector(compiled: CompiledSelectionPolicy): TagSelector {
  return new Selector(compiled, false);
}

function toDate(d: Date | number): number {
  return typeof d === "number" ? d : d.getTime();
}

/**
 * The newest tag the policy allows among `candidates`. Build times (`created`)
 * are used by newestBuild and minAgeMs, which need `now` (no clock is read here).
 * A plain SelectionPolicy is compiled on the fly (and may throw PolicySpecError).
 */
export function selectLatest(
  candidates: Iterable<string | TagCandidate>,
  policy: CompiledSelectionPolicy | SelectionPolicy,
  now?: Date | number,
): Selection {
  const compiled = isCompiled(policy) ? policy : compileSelectionPolicy(policy);
  // Positions, not a tag → candidate map: the selector reports each survivor's index.
  const items = Array.isArray(candidates)
    ? (candidates as readonly (string | TagCandidate)[])
    : [...candidates];
  const selector = new Selector(compiled, compiled.needsBuildTimes);
  const allNames = items.every((c) => typeof c === "string");
  selector.add(
    allNames ? (items as readonly string[]) : items.map((c) => (typeof c === "string" ? c : c.tag)),
  );
  const failure = selector.nameFailure();
  if (failure) return failure;

  const withInfo = (s: Scored): Selection => {
    const c = items[s.index];
    const out: Extract<Selection, { ok: true }> = { ok: true, tag: s.tag };
    if (typeof c === "object") {
      if (c.digest) out.digest = c.digest;
      if (c.created) out.created = c.created;
    }
    return out;
  };
  const createdAt = (s: Scored): number | undefined => {
    const c = items[s.index];
    const t = typeof c === "object" ? c.created?.getTime() : undefined;
    return t === undefined || Number.isNaN(t) ? undefined : t;
  };
  const ranked = selector.ranked();
  if (!compiled.needsBuildTimes) return withInfo(ranked[0]!);

  const minAge = compiled.spec.minAgeMs ?? 0;
  if (minAge > 0 && now === undefined) throw new TypeError("selectLatest: minAgeMs needs `now`");
  const cutoff = minAge > 0 ? toDate(now!) - minAge : Number.POSITIVE_INFINITY;
  let timed = 0;
  let chosen: { scored: Scored; created: number } | undefined;
  for (const scored of ranked) {
    const created = createdAt(scored);
    if (created === undefined) continue;
    timed++;
    if (created > cutoff) continue;
    if (compiled.spec.strategy.kind !== "newestBuild") {
      chosen = { scored, created };
      break;
    }
    if (
      !chosen ||
      created > chosen.created ||
      (created === chosen.created && compareGoStrings(scored.tag, chosen.scored.tag) > 0)
    ) {
      chosen = { scored, created };
    }
  }
  if (chosen) return withInfo(chosen.scored);
  if (timed === 0) {
    return fail(
      "no-build-time",
      `none of ${plural(ranked.length, "candidate")} has a build time (image config 'created')`,
    );
  }
  return fail(
    "all-too-young",
    `all ${plural(timed, "candidate")} with a build time were built less than ${formatDuration(minAge)} ago (minAge)`,
  );
}
