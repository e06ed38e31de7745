/**
 * A fast reader for the YAML that fleet repositories are made of: block
 * mappings and sequences indented with spaces, one-line plain and quoted
 * scalars, one-line flow collections, comments and `---` separators. It
 * builds exactly the view `parseFile` builds from the yaml package's parser
 * and composer, about ten times sooner, and declines (returns undefined)
 * anything else: anchors, aliases, tags, block scalars, multi-line scalars,
 * escapes, complex or non-string keys, tabs, CR, directives, and anything it
 * is not sure is valid. A declined file takes the full parse, so the fast
 * reader decides speed, never meaning; a differential property test holds it
 * to that (test/update/fast.property.test.ts).
 */
import {
  identify,
  type MapNode,
  type ParsedFile,
  type ScalarNode,
  type SeqNode,
  type YDocument,
  type YNode,
} from "./view.ts";

/** Thrown (never escaping this module) when the text is outside the subset. */
const DECLINE = { declined: true };

const SPACE = 32;
const HASH = 35;
const COLON = 58;
const DASH = 45;
const SQUOTE = 39;
const DQUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const LBRACE = 123;
const RBRACE = 125;
const LBRACKET = 91;
const RBRACKET = 93;

/** Characters that cannot start a plain scalar here (indicators, and the reserved `@` and backtick). */
function indicatorStart(c: number): boolean {
  switch (c) {
    case 63: // ?
    case COLON:
    case COMMA:
    case LBRACKET:
    case RBRACKET:
    case LBRACE:
    case RBRACE:
    case HASH:
    case 38: // &
    case 42: // *
    case 33: // !
    case 124: // |
    case 62: // >
    case 37: // %
    case 64: // @
    case 96: // `
      return true;
    default:
      return false;
  }
}

/** Plain keys the subset takes: identifiers, dotted and slashed (`app.kubernetes.io/name`), never a word YAML reads as a boolean or null. */
function plainKeyEnd(src: string, p: number, end: number): number {
  const c = src.charCodeAt(p);
  if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95)) return -1;
  let i = p + 1;
  while (i < end) {
    const d = src.charCodeAt(i);
    if (
      (d >= 65 && d <= 90) ||
      (d >= 97 && d <= 122) ||
      (d >= 48 && d <= 57) ||
      d === 95 ||
      d === 46 ||
      d === 47 ||
      d === DASH
    )
      i++;
    else break;
  }
  return i;
}

const NOT_STRING_KEYS = new Set(["true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL"]);

class Reader {
  private readonly src: string;
  /** Start offset of each line, and its end (the `\n`, or the end of the text). */
  private readonly starts: number[];
  private readonly ends: number[];
  /** Leading spaces of each line; -1 for a line without content (blank or comment only). */
  private readonly indents: number[];
  /** The current line. */
  private li = 0;
  private last = 0;

  constructor(src: string, starts: number[], ends: number[], indents: number[]) {
    this.src = src;
    this.starts = starts;
    this.ends = ends;
    this.indents = indents;
  }

  /** Parses the lines [from, to) as one document's root node. */
  document(from: number, to: number): YNode | undefined {
    this.li = from;
    this.last = to;
    this.skipEmpty();
    if (this.li >= to) return undefined;
    const indent = this.indents[this.li] as number;
    const root = this.block(indent);
    this.skipEmpty();
    if (this.li < to) throw DECLINE;
    return root;
  }

  private skipEmpty(): void {
    while (this.li < this.last && (this.indents[this.li] as number) < 0) this.li++;
  }

  /** The indentation of the next line with content, or -1 at the end. */
  private nextIndent(): number {
    this.skipEmpty();
    return this.li < this.last ? (this.indents[this.li] as number) : -1;
  }

  private isDashAt(p: number): boolean {
    if (this.src.charCodeAt(p) !== DASH) return false;
    const n = p + 1;
    return n >= (this.ends[this.li] as number) || this.src.charCodeAt(n) === SPACE;
  }

  /** A block collection starting on the current line at column `indent`. */
  private block(indent: number): MapNode | SeqNode {
    const p = (this.starts[this.li] as number) + indent;
    if (this.isDashAt(p)) return this.seq(indent);
    return this.map(p, indent);
  }

  /** The key starting at `p` (a plain or quoted scalar followed by `: ` or `:` at the end of the line), if one does. */
  private keyAt(p: number, end: number): { value: string; end: number } | undefined {
    const src = this.src;
    const c = src.charCodeAt(p);
    let keyEnd: number;
    let value: string;
    if (c === DQUOTE || c === SQUOTE) {
      const q = this.quoted(p, end);
      keyEnd = q.end;
      value = q.value;
    } else {
      keyEnd = plainKeyEnd(src, p, end);
      if (keyEnd < 0) return undefined;
      value = src.slice(p, keyEnd);
    }
    if (src.charCodeAt(keyEnd) !== COLON) return undefined;
    if (keyEnd + 1 < end && src.charCodeAt(keyEnd + 1) !== SPACE) return undefined;
    if (c !== DQUOTE && c !== SQUOTE && NOT_STRING_KEYS.has(value)) throw DECLINE;
    if (keyEnd - p > 1000) throw DECLINE;
    return { value, end: keyEnd };
  }

  /** A block mapping whose first key starts at offset `p` of the current line, at column `col`. */
  private map(p: number, col: number): MapNode {
    const src = this.src;
    const entries: MapNode["entries"] = [];
    const seen = new Set<string>();
    for (;;) {
      const end = this.ends[this.li] as number;
      const key = this.keyAt(p, end);
      if (!key || seen.has(key.value)) throw DECLINE;
      seen.add(key.value);
      let v = key.end + 1;
      while (v < end && src.charCodeAt(v) === SPACE) v++;
      let value: YNode | undefined;
      if (v >= end || src.charCodeAt(v) === HASH) {
        this.li++;
        const next = this.nextIndent();
        if (next > col) value = this.block(next);
        else if (next === col && this.isDashAt((this.starts[this.li] as number) + col)) value = this.seq(col);
      } else {
        value = this.inline(v, end);
        this.li++;
        if (this.nextIndent() > col) throw DECLINE;
      }
      entries.push({ key: key.value, value });
      const next = this.nextIndent();
      if (next !== col) {
        if (next > col) throw DECLINE;
        return { kind: "map", entries };
      }
      p = (this.starts[this.li] as number) + col;
    }
  }

  /** A block sequence whose dashes stand at column `col`, starting on the current line. */
  private seq(col: number): SeqNode {
    const src = this.src;
    const items: SeqNode["items"] = [];
    for (;;) {
      const start = this.starts[this.li] as number;
      const end = this.ends[this.li] as number;
      let p = start + col + 1;
      while (p < end && src.charCodeAt(p) === SPACE) p++;
      if (p >= end || src.charCodeAt(p) === HASH) {
        this.li++;
        const next = this.nextIndent();
        items.push(next > col ? this.block(next) : undefined);
      } else if (this.isDashAt(p)) {
        throw DECLINE;
      } else if (this.keyAt(p, end)) {
        items.push(this.map(p, p - start));
      } else {
        items.push(this.inline(p, end));
        this.li++;
        if (this.nextIndent() > col) throw DECLINE;
      }
      const next = this.nextIndent();
      if (next === col && this.isDashAt((this.starts[this.li] as number) + col)) continue;
      if (next > col) throw DECLINE;
      return { kind: "seq", items };
    }
  }

  /** A quoted scalar on one line starting at `p`; declines one that does not close on the line or holds an escape. */
  private quoted(p: number, end: number): { value: string; end: number } {
    const src = this.src;
    const q = src.charCodeAt(p);
    if (q === DQUOTE) {
      const close = src.indexOf('"', p + 1);
      if (close < 0 || close >= end) throw DECLINE;
      const body = src.slice(p + 1, close);
      if (body.includes("\\")) throw DECLINE;
      return { value: body, end: close + 1 };
    }
    let i = p + 1;
    for (;;) {
      const close = src.indexOf("'", i);
      if (close < 0 || close >= end) throw DECLINE;
      if (src.charCodeAt(close + 1) === SQUOTE && close + 1 < end) {
        i = close + 2;
        continue;
      }
      return { value: src.slice(p + 1, close).replaceAll("''", "'"), end: close + 1 };
    }
  }

  private scalar(
    value: string,
    style: ScalarNode["style"],
    start: number,
    end: number,
    inFlow: boolean,
  ): ScalarNode {
    const node: ScalarNode = { kind: "scalar", value, style, start, end, inFlow };
    if (inFlow) return node;
    // The rest of the line: nothing, or white space and a comment.
    const src = this.src;
    const lineEnd = this.ends[this.li] as number;
    let i = end;
    while (i < lineEnd && src.charCodeAt(i) === SPACE) i++;
    if (i < lineEnd) {
      if (i === end || src.charCodeAt(i) !== HASH) throw DECLINE;
      node.comment = src.slice(i + 1, lineEnd);
    }
    return node;
  }

  /** A value on the current line from `p`: a one-line scalar or flow collection, then at most a comment. */
  private inline(p: number, end: number): YNode {
    const src = this.src;
    const c = src.charCodeAt(p);
    if (c === DQUOTE || c === SQUOTE) {
      const q = this.quoted(p, end);
      return this.scalar(q.value, c === DQUOTE ? "double" : "single", p, q.end, false);
    }
    if (c === LBRACE || c === LBRACKET) {
      const flow = this.flow(p, end);
      let i = flow.end;
      while (i < end && src.charCodeAt(i) === SPACE) i++;
      if (i < end && (i === flow.end || src.charCodeAt(i) !== HASH)) throw DECLINE;
      return flow.node;
    }
    if (indicatorStart(c) || (c === DASH && (p + 1 >= end || src.charCodeAt(p + 1) === SPACE))) throw DECLINE;
    // A plain scalar runs to ` #` or the end of the line; `: ` inside would make it a key.
    let stop = end;
    const hash = src.indexOf(" #", p);
    if (hash >= 0 && hash < end) stop = hash;
    let last = stop;
    while (last > p && src.charCodeAt(last - 1) === SPACE) last--;
    for (let i = src.indexOf(":", p); i >= 0 && i < last; i = src.indexOf(":", i + 1))
      if (i + 1 === last || src.charCodeAt(i + 1) === SPACE) throw DECLINE;
    return this.scalar(src.slice(p, last), "plain", p, last, false);
  }

  /** A flow collection closing on the same line: `{k: v, …}` or `[a, …]` of one-line scalars and collections. */
  private flow(p: number, end: number): { node: MapNode | SeqNode; end: number } {
    const src = this.src;
    const isMap = src.charCodeAt(p) === LBRACE;
    const close = isMap ? RBRACE : RBRACKET;
    const skip = (i: number) => {
      while (i < end && src.charCodeAt(i) === SPACE) i++;
      return i;
    };
    let i = skip(p + 1);
    const entries: MapNode["entries"] = [];
    const items: SeqNode["items"] = [];
    const seen = new Set<string>();
    if (src.charCodeAt(i) === close)
      return { node: isMap ? { kind: "map", entries } : { kind: "seq", items }, end: i + 1 };
    for (;;) {
      if (isMap) {
        const key = this.flowScalar(i, end);
        if (src.charCodeAt(key.end) !== COLON || src.charCodeAt(key.end + 1) !== SPACE) throw DECLINE;
        if (key.node.style === "plain" && plainKeyEnd(src, key.node.start, key.node.end) !== key.node.end)
          throw DECLINE;
        if (NOT_STRING_KEYS.has(key.node.value) && key.node.style === "plain") throw DECLINE;
        if (seen.has(key.node.value)) throw DECLINE;
        seen.add(key.node.value);
        const v = this.flowValue(skip(key.end + 1), end);
        entries.push({ key: key.node.value, value: v.node });
        i = skip(v.end);
      } else {
        const v = this.flowValue(i, end);
        items.push(v.node);
        i = skip(v.end);
        if (src.charCodeAt(i) === COLON) throw DECLINE;
      }
      const c = src.charCodeAt(i);
      if (i >= end) throw DECLINE;
      if (c === close) return { node: isMap ? { kind: "map", entries } : { kind: "seq", items }, end: i + 1 };
      if (c !== COMMA) throw DECLINE;
      i = skip(i + 1);
      if (i >= end || src.charCodeAt(i) === close) throw DECLINE;
    }
  }

  private flowValue(p: number, end: number): { node: YNode; end: number } {
    const c = this.src.charCodeAt(p);
    if (c === LBRACE || c === LBRACKET) return this.flow(p, end);
    return this.flowScalar(p, end);
  }

  /** A scalar inside a flow collection: quoted, or plain without `:`, `#` or flow indicators. */
  private flowScalar(p: number, end: number): { node: ScalarNode; end: number } {
    const src = this.src;
    if (p >= end) throw DECLINE;
    const c = src.charCodeAt(p);
    if (c === DQUOTE || c === SQUOTE) {
      const q = this.quoted(p, end);
      return { node: this.scalar(q.value, c === DQUOTE ? "double" : "single", p, q.end, true), end: q.end };
    }
    if (indicatorStart(c) || c === DASH) throw DECLINE;
    let i = p;
    while (i < end) {
      const d = src.charCodeAt(i);
      if (d === COMMA || d === RBRACE || d === RBRACKET || d === COLON) break;
      if (d === HASH || d === LBRACE || d === LBRACKET || d === DQUOTE || d === SQUOTE || d === BACKSLASH)
        throw DECLINE;
      i++;
    }
    let last = i;
    while (last > p && src.charCodeAt(last - 1) === SPACE) last--;
    if (last === p) throw DECLINE;
    return { node: this.scalar(src.slice(p, last), "plain", p, last, true), end: last };
  }
}

/** The text's characters are all ones the subset takes: no CR, tab, other control characters, BOM or Unicode line separators. */
function plainText(src: string): boolean {
  for (let i = 0; i < src.length; i++) {
    const c = src.charCodeAt(i);
    if (c < 32) {
      if (c !== 10) return false;
    } else if (
      c >= 127 &&
      (c <= 159 || c === 0xfeff || c === 0x2028 || c === 0x2029 || (c >= 0xd800 && c <= 0xdfff))
    )
      return false;
  }
  return true;
}

/** The light view of `src` when it is in the subset; undefined when it must take the full parse. */
export function fastParse(src: string): ParsedFile | undefined {
  if (!plainText(src)) return undefined;
  const starts: number[] = [];
  const ends: number[] = [];
  const indents: number[] = [];
  /** Indexes of the `---` lines. */
  const separators: number[] = [];
  for (let s = 0; s <= src.length; ) {
    let e = src.indexOf("\n", s);
    if (e < 0) e = src.length;
    let i = s;
    while (i < e && src.charCodeAt(i) === SPACE) i++;
    const c = src.charCodeAt(i);
    if (i === s && (c === DASH || c === 46) && src.startsWith(c === DASH ? "---" : "...", s)) {
      if (c === 46) return undefined;
      const after = s + 3;
      if (after < e) {
        if (src.charCodeAt(after) !== SPACE) {
          // `---x` is text, not a separator: outside the subset at the start of a line.
          return undefined;
        }
        let j = after;
        while (j < e && src.charCodeAt(j) === SPACE) j++;
        if (j < e && src.charCodeAt(j) !== HASH) return undefined;
      }
      separators.push(starts.length);
    } else if (i === s && c === 37) return undefined; // a directive
    starts.push(s);
    ends.push(e);
    indents.push(i >= e || c === HASH ? -1 : i - s);
    if (e === src.length) break;
    s = e + 1;
  }
  for (const sep of separators) indents[sep] = -1;
  const reader = new Reader(src, starts, ends, indents);
  const documents: YDocument[] = [];
  try {
    const bounds = [-1, ...separators, starts.length];
    for (let k = 0; k + 1 < bounds.length; k++) {
      const from = (bounds[k] as number) + 1;
      const to = bounds[k + 1] as number;
      const root = reader.document(from, to);
      // Before the first `---`, only content makes a document.
      if (k === 0 && root === undefined) continue;
      documents.push({ root, id: identify(root) });
    }
  } catch (err) {
    if (err === DECLINE) return undefined;
    throw err;
  }
  return { documents };
}
