/**
 * Versions and range constraints with the semantics of Masterminds/semver v3.4
 * (what Flux's image-reflector-controller links), re-implemented from its
 * documented behaviour and test tables rather than with the npm `semver`
 * package, whose ranges differ (`1.0` means `=1.0.0` there, `~1` and `>1.1`
 * differ for partial versions, prereleases are scoped to one patch there).
 *
 * Tags are parsed the way Flux's `version.ParseVersion` does: an optional
 * leading `v`, then a strict semantic version (`1.0`, `1.0.0.1` and `1.0.0p`
 * are not versions). Range operands are coerced the way `NewVersion` does
 * (`1.0` → `1.0.0`, `x`/`*` wildcards).
 */

/** A uint64 segment: a number while exact, a bigint beyond 2^53. */
type Segment = number | bigint;

export interface SemVersion {
  major: Segment;
  minor: Segment;
  patch: Segment;
  /** Prerelease without the leading `-`; `""` when there is none. */
  pre: string;
  /** The text that was parsed, e.g. `v1.2.3`. */
  original: string;
}

const UINT64_MAX = 18446744073709551615n;

function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** `strconv.ParseUint(s, 10, 64)`: non-empty digits, at most 2^64-1. */
function parseUint(s: string): Segment | undefined {
  const n = s.length;
  if (n === 0) return undefined;
  if (n <= 15) {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return undefined;
      v = v * 10 + c;
    }
    return v;
  }
  for (let i = 0; i < n; i++) if (!isDigitCode(s.charCodeAt(i))) return undefined;
  const b = BigInt(s);
  if (b > UINT64_MAX) return undefined;
  return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

function onlyDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isDigitCode(s.charCodeAt(i))) return false;
  return true;
}

/** Dot-separated, non-empty identifiers of `[0-9A-Za-z-]` (semver §9, §10). */
function validIdentifiers(s: string): boolean {
  if (s.length === 0) return false;
  let partLen = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (partLen === 0) return false;
      partLen = 0;
      continue;
    }
    const ok = isDigitCode(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45;
    if (!ok) return false;
    partLen++;
  }
  return partLen > 0;
}

/** Semver §9: identifiers as above, numeric ones without leading zeros. */
function validPrerelease(s: string): boolean {
  if (!validIdentifiers(s)) return false;
  for (const part of s.split(".")) {
    if (part.length > 1 && part.charCodeAt(0) === 48 && onlyDigits(part)) return false;
  }
  return true;
}

/**
 * Split `CORE[-PRE][+META]`: metadata is cut at the first `+` (it may contain
 * `-`), then the prerelease at the first `-`. Both must be valid identifiers.
 */
function splitVersion(s: string): { segments: string[]; pre: string } | undefined {
  let core = s;
  const plus = core.indexOf("+");
  if (plus >= 0) {
    if (!validIdentifiers(core.slice(plus + 1))) return undefined;
    core = core.slice(0, plus);
  }
  let pre = "";
  const dash = core.indexOf("-");
  if (dash >= 0) {
    pre = core.slice(dash + 1);
    if (!validPrerelease(pre)) return undefined;
    core = core.slice(0, dash);
  }
  return { segments: core.split("."), pre };
}

/** Masterminds `StrictNewVersion`: exactly `MAJOR.MINOR.PATCH[-PRE][+META]`, no leading zeros. */
export function parseStrictVersion(text: string, original = text): SemVersion | undefined {
  const parts = splitVersion(text);
  if (parts?.segments.length !== 3) return undefined;
  const nums: Segment[] = [];
  for (const seg of parts.segments) {
    if (seg.length > 1 && seg.charCodeAt(0) === 48) return undefined;
    const v = parseUint(seg);
    if (v === undefined) return undefined;
    nums.push(v);
  }
  return { major: nums[0]!, minor: nums[1]!, patch: nums[2]!, pre: parts.pre, original };
}

/**
 * Flux `version.ParseVersion`: a tag is a version when, without one leading
 * `v`, it is a strict semantic version. The original text is kept so the
 * selected tag is returned exactly as the registry lists it.
 */
export function parseTagVersion(tag: string): SemVersion | undefined {
  const first = tag.charCodeAt(0);
  // Cheap rejection before any slicing: every version starts with a digit or `v`.
  if (isDigitCode(first)) return parseStrictVersion(tag, tag);
  if (first === 118 /* v */ && isDigitCode(tag.charCodeAt(1))) return parseStrictVersion(tag.slice(1), tag);
  return undefined;
}

/**
 * Masterminds `NewVersion` (coercing): optional `v`, one to three numeric
 * segments (missing ones are 0, leading zeros allowed), prerelease, metadata.
 */
export function parseLooseVersion(text: string): SemVersion | undefined {
  const parts = splitVersion(text.startsWith("v") ? text.slice(1) : text);
  if (!parts || parts.segments.length > 3) return undefined;
  const nums: Segment[] = [];
  for (const seg of parts.segments) {
    const v = parseUint(seg);
    if (v === undefined) return undefined;
    nums.push(v);
  }
  return { major: nums[0] ?? 0, minor: nums[1] ?? 0, patch: nums[2] ?? 0, pre: parts.pre, original: text };
}

function cmpSeg(a: Segment, b: Segment): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Equality across number and bigint segments. */
function same(a: Segment, b: Segment): boolean {
  return cmpSeg(a, b) === 0;
}

/** A prerelease identifier counts as numeric when `ParseUint` accepts it. */
function numericIdentifier(s: string): Segment | undefined {
  return s.length > 0 && onlyDigits(s) ? parseUint(s) : undefined;
}

function comparePrePart(s: string, o: string): number {
  if (s === o) return 0;
  if (s === "") return -1;
  if (o === "") return 1;
  const sn = numericIdentifier(s);
  const on = numericIdentifier(o);
  if (sn === undefined && on === undefined) return s > o ? 1 : -1;
  if (on === undefined) return -1;
  if (sn === undefined) return 1;
  return sn > on ? 1 : -1;
}

/** Semver §11 precedence of two prereleases (more identifiers rank higher when the rest is equal). */
export function comparePrerelease(a: string, b: string): number {
  const as = a.split(".");
  const bs = b.split(".");
  const n = Math.max(as.length, bs.length);
  for (let i = 0; i < n; i++) {
    const d = comparePrePart(as[i] ?? "", bs[i] ?? "");
    if (d !== 0) return d;
  }
  return 0;
}

/** Precedence; build metadata is ignored, a prerelease ranks below its release. */
export function compareVersions(a: SemVersion, b: SemVersion): number {
  const d = cmpSeg(a.major, b.major) || cmpSeg(a.minor, b.minor) || cmpSeg(a.patch, b.patch);
  if (d !== 0) return d;
  if (a.pre === b.pre) return 0;
  if (a.pre === "") return 1;
  if (b.pre === "") return -1;
  return comparePrerelease(a.pre, b.pre);
}

type Operator = "" | "=" | "!=" | ">" | "<" | ">=" | "=>" | "<=" | "=<" | "~" | "~>" | "^";
const OPERATORS = new Set<string>(["", "=", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^"]);

interface Comparator {
  op: Operator;
  con: SemVersion;
  /** The operand had a wildcard or missing segment (`1`, `1.x`, `*`). */
  dirty: boolean;
  minorDirty: boolean;
  patchDirty: boolean;
}

interface AndGroup {
  comparators: Comparator[];
  /** A prerelease operand anywhere in the group admits prereleases to the whole group (Masterminds 3.4). */
  includePrerelease: boolean;
}

export interface SemverConstraint {
  readonly range: string;
  /** Whether some group of the range admits prerelease versions. */
  readonly admitsPrereleases: boolean;
  check(v: SemVersion): boolean;
}

export class SemverRangeError extends Error {
  override name = "SemverRangeError";
}

// Go's `\s` is exactly these five characters.
const WS = "[\\t\\n\\f\\r ]";
const CV_SRC =
  "v?([0-9|xX*]+)(\\.[0-9|xX*]+)?(\\.[0-9|xX*]+)?(-[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?";
const CV_NC = CV_SRC.replace(/\((?!\?)/g, "(?:");
const OPERAND = new RegExp(`^${CV_SRC}$`);
const HYPHEN_RANGE = new RegExp(`${WS}*(${CV_NC})${WS}+-${WS}+(${CV_NC})${WS}*`, "g");
const WS_CHARS = new Set(["\t", "\n", "\f", "\r", " "]);
const OP_CHARS = new Set(["=", "!", "<", ">", "~", "^"]);
// Ranges come from configuration; the bound keeps every regex above trivially cheap.
const MAX_RANGE_LENGTH = 512;

function isX(s: string): boolean {
  return s === "x" || s === "X" || s === "*";
}

/** `1.2 - 1.4.5` → `>= 1.2, <= 1.4.5 ` (each match replaces its first occurrence, as Masterminds does). */
function rewriteHyphenRanges(range: string): string {
  let out = range;
  for (const m of range.matchAll(HYPHEN_RANGE)) {
    const replacement = `>= ${m[1]}, <= ${m[2]} `;
    out = out.replace(m[0], () => replacement);
  }
  return out;
}

function parseComparator(op: Operator, operand: string, whole: string): Comparator {
  const m = OPERAND.exec(operand);
  if (!m) throw new SemverRangeError(`improper constraint: ${whole}`);
  const [, major = "", minorPart = "", patchPart = "", prePart = ""] = m;
  let ver = operand;
  let dirty = false;
  let minorDirty = false;
  let patchDirty = false;
  if (isX(major)) {
    ver = `0.0.0${prePart}`;
    dirty = true;
  } else if (minorPart === "" || isX(minorPart.slice(1))) {
    ver = `${major}.0.0${prePart}`;
    dirty = minorDirty = true;
  } else if (patchPart === "" || isX(patchPart.slice(1))) {
    ver = `${major}${minorPart}.0${prePart}`;
    dirty = patchDirty = true;
  }
  const con = parseLooseVersion(ver);
  if (!con) throw new SemverRangeError(`improper constraint: ${whole}`);
  return { op, con, dirty, minorDirty, patchDirty };
}

/** One `||` alternative: items separated by whitespace or a comma, each `[op] [ws] operand`. */
function parseAndGroup(text: string): AndGroup {
  const comparators: Comparator[] = [];
  const fail = (): never => {
    throw new SemverRangeError(`improper constraint: ${text}`);
  };
  let i = 0;
  const skipWs = () => {
    while (i < text.length && WS_CHARS.has(text[i]!)) i++;
  };
  skipWs();
  for (;;) {
    const opStart = i;
    while (i < text.length && OP_CHARS.has(text[i]!)) i++;
    const op = text.slice(opStart, i);
    if (!OPERATORS.has(op)) fail();
    skipWs();
    const operandStart = i;
    while (i < text.length && !WS_CHARS.has(text[i]!) && text[i] !== ",") i++;
    const operand = text.slice(operandStart, i);
    if (operand === "") fail();
    comparators.push(parseComparator(op as Operator, operand, text.slice(opStart, i)));
    const itemEnd = i;
    skipWs();
    if (i >= text.length) break;
    if (text[i] === ",") {
      i++;
      skipWs();
      if (i >= text.length) fail();
    } else if (i === itemEnd) {
      fail();
    }
  }
  return { comparators, includePrerelease: comparators.some((c) => c.con.pre !== "") };
}

/** Masterminds `NewConstraint`: `||` alternatives of AND groups; hyphen ranges rewritten first. */
export function parseSemverRange(range: string): SemverConstraint {
  if (range.length > MAX_RANGE_LENGTH)
    throw new SemverRangeError(`range is longer than ${MAX_RANGE_LENGTH} characters`);
  const groups = rewriteHyphenRanges(range).split("||").map(parseAndGroup);
  return {
    range,
    admitsPrereleases: groups.some((g) => g.includePrerelease),
    check(v: SemVersion): boolean {
      for (const g of groups) {
        if (v.pre !== "" && !g.includePrerelease) continue;
        let all = true;
        for (const c of g.comparators) {
          if (!satisfies(v, c)) {
            all = false;
            break;
          }
        }
        if (all) return true;
      }
      return false;
    },
  };
}

function tilde(v: SemVersion, c: Comparator): boolean {
  const con = c.con;
  if (compareVersions(v, con) < 0) return false;
  // `~0.0.0` and `~*` accept everything.
  if (same(con.major, 0) && same(con.minor, 0) && same(con.patch, 0) && !c.minorDirty && !c.patchDirty)
    return true;
  if (!same(v.major, con.major)) return false;
  if (!same(v.minor, con.minor) && !c.minorDirty) return false;
  return true;
}

function satisfies(v: SemVersion, c: Comparator): boolean {
  const con = c.con;
  switch (c.op) {
    case "":
    case "=":
      return c.dirty ? tilde(v, c) : compareVersions(v, con) === 0;
    case "!=":
      if (c.dirty) {
        if (!same(con.major, v.major)) return true;
        if (!same(con.minor, v.minor) && !c.minorDirty) return true;
        if (c.minorDirty) return false;
        if (!same(con.patch, v.patch) && !c.patchDirty) return true;
        if (c.patchDirty) {
          if (v.pre !== "" || con.pre !== "") return comparePrerelease(v.pre, con.pre) !== 0;
          return false;
        }
      }
      return compareVersions(v, con) !== 0;
    case ">":
      if (!c.dirty) return compareVersions(v, con) > 0;
      if (v.major > con.major) return true;
      if (v.major < con.major) return false;
      // `>11` needs 12 or higher; `>11.1` needs 11.2 or higher.
      if (c.minorDirty) return false;
      if (c.patchDirty) return v.minor > con.minor;
      return compareVersions(v, con) > 0;
    case "<":
      return compareVersions(v, con) < 0;
    case ">=":
    case "=>":
      return compareVersions(v, con) >= 0;
    case "<=":
    case "=<":
      if (!c.dirty) return compareVersions(v, con) <= 0;
      if (v.major > con.major) return false;
      if (same(v.major, con.major) && v.minor > con.minor && !c.minorDirty) return false;
      return true;
    case "~":
    case "~>":
      return tilde(v, c);
    case "^":
      if (compareVersions(v, con) < 0) return false;
      if (con.major > 0 || c.minorDirty) return same(v.major, con.major);
      if (v.major > 0) return false;
      if (con.minor > 0 || c.patchDirty) return same(v.minor, con.minor);
      if (v.minor > 0) return false;
      return same(v.patch, con.patch);
  }
}
