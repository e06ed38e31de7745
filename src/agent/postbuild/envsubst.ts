/**
 * Flux's post-build variable substitution language (fluxcd/pkg/envsubst, a
 * fork of drone/envsubst), reimplemented from its documented and observed
 * behaviour so a manifest means the same under shipmate as under Flux:
 *
 *  - `${var}` is replaced; a plain `$var` is text; `$$` is a literal `$`,
 *    so `$${var}` comes out as `${var}`;
 *  - `${var:=word}`, `${var:-word}`, `${var=word}` (and the parsed but
 *    default-like `:?`, `:+`): the word when the value is empty or unset;
 *    the word may hold further `${…}`;
 *  - `${#var}`, `${var^}`, `${var^^}`, `${var,}`, `${var,,}`,
 *    `${var:offset}`, `${var:offset:length}`, `${var#glob}`, `${var##glob}`,
 *    `${var%glob}`, `${var%%glob}`, `${var/old/new}`, `${var//old/new}`,
 *    `${var/#old/new}`, `${var/%old/new}` as Flux evaluates them (lengths and
 *    offsets in bytes, replacements literal, globs as Go's path.Match);
 *  - strict mode (kustomize-controller's default since v1.9): a variable that
 *    is not set and has no default operator is an error naming it.
 *
 * Substitution is one pass: a value is inserted as it is and never scanned
 * again, so variables that refer to each other cannot loop. Nesting is
 * bounded so a hostile manifest cannot exhaust the stack.
 */

export class SubstitutionError extends Error {
  override name = "SubstitutionError";
}

/** How deep `${a:=${b:=${c}}}` may nest. */
export const MAX_NESTING = 32;

type Node = string | Expansion;
interface Expansion {
  /** The operator as written: "" for `${var}`, ":=", "#", "//", "^^"… */
  op: string;
  name: string;
  args: Node[];
}

const IDENT = /[\p{L}\p{Nd}_]/u;
const DEFAULT_OPS = new Set(["-", "+", "=", "?", ":-", ":+", ":=", ":?"]);

class Parser {
  private readonly src: string;
  private pos = 0;

  constructor(src: string) {
    this.src = src;
  }

  private peek(offset = 0): string | undefined {
    return this.src[this.pos + offset];
  }

  private atOpen(): boolean {
    return this.src[this.pos] === "$" && this.src[this.pos + 1] === "{";
  }

  /** The whole text: literal runs (with `$$` → `$`) and `${…}` expansions. */
  parseText(): Node[] {
    const nodes: Node[] = [];
    let text = "";
    while (this.pos < this.src.length) {
      if (this.atOpen()) {
        if (text) nodes.push(text);
        text = "";
        this.pos += 2;
        nodes.push(this.parseExpansion(1));
        continue;
      }
      const c = this.src[this.pos] as string;
      if (c === "$" && this.src[this.pos + 1] === "$") {
        text += "$";
        this.pos += 2;
        continue;
      }
      text += c;
      this.pos++;
    }
    if (text) nodes.push(text);
    return nodes;
  }

  /** After `${`. */
  private parseExpansion(depth: number): Expansion {
    if (depth > MAX_NESTING)
      throw new SubstitutionError(`substitutions nested more than ${MAX_NESTING} deep`);
    if (this.peek() === "#") {
      this.pos++;
      const name = this.ident();
      if (!name) throw new SubstitutionError("bad substitution");
      this.closing("bad substitution");
      return { op: "#", name, args: [] };
    }
    const name = this.ident();
    if (!name) throw new SubstitutionError("unable to parse variable name");
    switch (this.peek()) {
      case ":": {
        const next = this.peek(1);
        if (next === "=" || next === "-" || next === "?" || next === "+") {
          this.pos += 2;
          return this.parseDefault(name, `:${next}`, depth);
        }
        this.pos++;
        return this.parseSubstring(name, depth);
      }
      case "=":
        this.pos++;
        return this.parseDefault(name, "=", depth);
      case ",":
      case "^":
        return this.parseCase(name);
      case "/":
        return this.parseReplace(name, depth);
      case "#":
      case "%":
        return this.parseRemove(name, this.peek() as string, depth);
      case "}":
        this.pos++;
        return { op: "", name, args: [] };
      default:
        throw new SubstitutionError("missing closing brace");
    }
  }

  private ident(): string {
    const start = this.pos;
    for (;;) {
      const cp = this.src.codePointAt(this.pos);
      if (cp === undefined) break;
      const ch = String.fromCodePoint(cp);
      if (!IDENT.test(ch)) break;
      this.pos += ch.length;
    }
    return this.src.slice(start, this.pos);
  }

  private closing(message: string): void {
    if (this.peek() !== "}") throw new SubstitutionError(message);
    this.pos++;
  }

  /**
   * One argument: a nested `${…}`, or a run of text the `accept` test lets
   * through, stopping before `${`. With `escapes`, `$$`, `\/` and `\\` keep
   * their second character literally (the pattern and replacement of `/`).
   */
  private param(accept: (c: string) => boolean, escapes: boolean, depth: number): Node {
    if (this.atOpen()) {
      this.pos += 2;
      return this.parseExpansion(depth + 1);
    }
    let text = "";
    let first = true;
    while (this.pos < this.src.length) {
      if (!first && this.atOpen()) break;
      const c = this.src[this.pos] as string;
      const n = this.src[this.pos + 1];
      if (escapes && ((c === "$" && n === "$") || (c === "\\" && (n === "/" || n === "\\")))) {
        text += n;
        this.pos += 2;
        first = false;
        continue;
      }
      if (!accept(c)) break;
      text += c;
      this.pos++;
      first = false;
    }
    if (first) throw new SubstitutionError("unable to parse substitution within function");
    return text;
  }

  private parseDefault(name: string, op: string, depth: number): Expansion {
    const args: Node[] = [];
    while (this.peek() !== "}") args.push(this.param((c) => c !== "}", false, depth));
    this.pos++;
    return { op, name, args };
  }

  private parseSubstring(name: string, depth: number): Expansion {
    const args: Node[] = [this.param((c) => c !== ":" && c !== "}", false, depth)];
    if (this.peek() === "}") {
      this.pos++;
      return { op: ":", name, args };
    }
    if (this.peek() !== ":") throw new SubstitutionError("bad substitution");
    while (this.peek() === ":") this.pos++;
    args.push(this.param((c) => c !== "}", false, depth));
    this.closing("bad substitution");
    return { op: ":", name, args };
  }

  private parseCase(name: string): Expansion {
    let op = "";
    while (op.length < 2 && (this.peek() === "," || this.peek() === "^")) op += this.src[this.pos++];
    this.closing("bad substitution");
    return { op, name, args: [] };
  }

  private parseRemove(name: string, mark: string, depth: number): Expansion {
    let op = "";
    while (op.length < 2 && this.peek() === mark) op += this.src[this.pos++];
    const args = [this.param((c) => c !== "}", false, depth)];
    this.closing("bad substitution");
    return { op, name, args };
  }

  private parseReplace(name: string, depth: number): Expansion {
    let op = "/";
    this.pos++;
    const second = this.peek();
    if (second === "/" || second === "#" || second === "%") {
      op += second;
      this.pos++;
    }
    const args: Node[] = [this.param((c) => c !== "/", true, depth)];
    if (this.peek() !== "/") throw new SubstitutionError("bad substitution");
    while (this.peek() === "/") this.pos++;
    if (this.peek() === "}") {
      this.pos++;
      return { op, name, args };
    }
    args.push(this.param((c) => c !== "}", true, depth));
    this.closing("bad substitution");
    return { op, name, args };
  }
}

/** A variable's value, or undefined when it is not set. */
export type Lookup = (name: string) => string | undefined;

export interface EnvsubstOptions {
  /** Unset variables without a default operator are errors (Flux's default); otherwise they are empty. */
  strict: boolean;
}

/** Expands every `${…}` in `text`; throws SubstitutionError with Flux's reason. */
export function envsubst(text: string, lookup: Lookup, opts: EnvsubstOptions): string {
  const nodes = new Parser(text).parseText();
  let out = "";
  for (const n of nodes) out += evaluate(n, lookup, opts);
  return out;
}

function evaluate(node: Node, lookup: Lookup, opts: EnvsubstOptions): string {
  if (typeof node === "string") return node;
  // Arguments are expanded first, whether or not the value will need them (as Flux does).
  const args = node.args.map((a) => evaluate(a, lookup, opts));
  let value = lookup(node.name);
  if (value === undefined) {
    if (opts.strict && !DEFAULT_OPS.has(node.op))
      throw new SubstitutionError(`variable not set (strict mode): "${node.name}"`);
    value = "";
  }
  return apply(node.op, value, args);
}

const bytes = (s: string) => Buffer.from(s, "utf8");

/** Go's strconv.Atoi: an optional sign and decimal digits, nothing else. */
function atoi(s: string): number | undefined {
  return /^[+-]?\d+$/.test(s) ? Number(s) : undefined;
}

function apply(op: string, s: string, args: string[]): string {
  switch (op) {
    case ",":
      return s ? firstChar(s, (c) => c.toLowerCase()) : s;
    case ",,":
      return s.toLowerCase();
    case "^":
      return s ? firstChar(s, (c) => c.toUpperCase()) : s;
    case "^^":
      return s.toUpperCase();
    case "#":
      return args.length === 0 ? String(bytes(s).length) : trimPrefix(s, args[0] as string, false);
    case "##":
      return trimPrefix(s, args[0] as string, true);
    case "%":
      return trimSuffix(s, args[0] as string, false);
    case "%%":
      return trimSuffix(s, args[0] as string, true);
    case ":":
      return substring(s, args);
    case "/":
      return args.length === 0 ? s : replaceFirst(s, args[0] as string, args[1] ?? "");
    case "//":
      return args.length === 0 ? s : s.split(args[0] as string).join(args[1] ?? "");
    case "/#":
      if (args.length !== 2) return s;
      return s.startsWith(args[0] as string) ? replaceFirst(s, args[0] as string, args[1] as string) : s;
    case "/%":
      if (args.length !== 2) return s;
      return s.endsWith(args[0] as string) ? s.slice(0, s.length - (args[0] as string).length) + args[1] : s;
    default:
      // `${var}`, every default operator, and operator spellings Flux parses but does not define.
      return s === "" && args.length > 0 ? args.join("") : s;
  }
}

function firstChar(s: string, f: (c: string) => string): string {
  const c = String.fromCodePoint(s.codePointAt(0) as number);
  return f(c) + s.slice(c.length);
}

function replaceFirst(s: string, old: string, repl: string): string {
  const i = s.indexOf(old);
  return i < 0 ? s : s.slice(0, i) + repl + s.slice(i + old.length);
}

/** `${var:offset}` / `${var:offset:length}` on bytes, with bash's negative offsets and lengths. */
function substring(s: string, args: string[]): string {
  const b = bytes(s);
  const len = b.length;
  let pos = atoi(args[0] ?? "");
  if (pos === undefined) return s;
  if (pos < 0) pos = Math.max(0, len + pos);
  if (args.length === 1) return pos < len ? b.subarray(pos).toString("utf8") : "";
  const length = atoi(args[1] as string);
  if (length === undefined) return s;
  if (length < 0) {
    const end = len + length;
    return end < pos ? "" : b.subarray(pos, end).toString("utf8");
  }
  if (pos + length >= len) return pos < len ? b.subarray(pos).toString("utf8") : "";
  return b.subarray(pos, pos + length).toString("utf8");
}

/**
 * Go's path.Match as a RegExp: `*` any run of non-`/`, `?` one non-`/`
 * character, `[…]` / `[^…]` classes with ranges, `\` escapes. Undefined for a
 * malformed pattern (Flux then leaves the value alone).
 */
export function globToRegExp(glob: string): RegExp | undefined {
  const chars = [...glob];
  let re = "";
  const esc = (c: string) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] as string;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\") {
      i++;
      if (i >= chars.length) return undefined;
      re += esc(chars[i] as string);
    } else if (c === "[") {
      i++;
      let cls = "";
      if (chars[i] === "^") {
        cls += "^";
        i++;
      }
      let ranges = 0;
      for (;;) {
        if (i >= chars.length) return undefined;
        if (chars[i] === "]" && ranges > 0) break;
        const lo = chars[i] === "\\" ? chars[++i] : chars[i];
        if (lo === undefined || lo === "-" || lo === "]") return undefined;
        i++;
        let part = esc(lo);
        if (chars[i] === "-") {
          i++;
          const hi = chars[i] === "\\" ? chars[++i] : chars[i];
          if (hi === undefined || hi === "]" || hi === "-") return undefined;
          i++;
          part += `-${esc(hi)}`;
        }
        cls += part;
        ranges++;
      }
      re += `[${cls}]`;
    } else re += esc(c);
  }
  return new RegExp(`^${re}$`, "su");
}

/** Strips the shortest (or longest) non-empty prefix matching the glob. */
function trimPrefix(s: string, glob: string, longest: boolean): string {
  const re = globToRegExp(glob);
  if (!re) return s;
  const cps = [...s];
  let match = "";
  for (let n = cps.length; n >= 1; n--) {
    const prefix = cps.slice(0, n).join("");
    if (re.test(prefix)) {
      match = prefix;
      if (longest) break;
    }
  }
  return match ? s.slice(match.length) : s;
}

/** Flux reverses the value and the pattern and strips a prefix; so does this. */
function trimSuffix(s: string, glob: string, longest: boolean): string {
  const rev = (t: string) => [...t].reverse().join("");
  return rev(trimPrefix(rev(s), rev(glob), longest));
}
