/**
 * Regular expressions with Go `regexp` semantics (RE2 syntax, leftmost-first
 * matching, `(?P<name>…)`) in linear time through re2js, so no tag and no
 * pattern can make a scan backtrack catastrophically.
 */
import { RE2JS, RE2JSException } from "re2js";

/** Submatch positions as Go's `FindStringSubmatchIndex` gives them (UTF-16 offsets here); -1 when unset. */
export type SubmatchIndex = readonly number[];

export interface GoRegexp {
  readonly source: string;
  /** `MatchString`: does the pattern match anywhere in `s`? */
  test(s: string): boolean;
  /** `FindStringSubmatchIndex`, or `undefined` without a match. */
  exec(s: string): SubmatchIndex | undefined;
  /** Capture group index by `(?P<name>…)` name. */
  readonly groupNames: ReadonlyMap<string, number>;
  readonly groupCount: number;
}

export class RegexSyntaxError extends Error {
  override name = "RegexSyntaxError";
}

interface Re2Engine {
  findSubmatchIndex(s: string): number[] | null;
  match(s: string): boolean;
}

/** Go `regexp.Compile`. Throws RegexSyntaxError with Go's wording (`error parsing regexp: …`). */
export function compileGoRegexp(pattern: string): GoRegexp {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(pattern);
  } catch (err) {
    if (err instanceof RE2JSException) throw new RegexSyntaxError(err.message);
    throw err;
  }
  // The engine's Go-style entry points skip the Java-style Matcher allocation per
  // call, which is most of the cost when 100,000 tags go through one pattern.
  const engine = compiled.re2() as unknown as Re2Engine;
  const groupNames = new Map(Object.entries(compiled.namedGroups()));
  return {
    source: pattern,
    groupNames,
    groupCount: compiled.groupCount(),
    test: (s) => engine.match(s),
    exec: (s) => engine.findSubmatchIndex(s) ?? undefined,
  };
}

type TemplatePart = string | { group: number } | { name: string };

/** A `Regexp.Expand` template, parsed once. */
export interface ExpandTemplate {
  readonly source: string;
  /** Names and numbers the template refers to, for validation against the pattern. */
  readonly references: readonly (string | number)[];
  expand(input: string, match: SubmatchIndex): string;
}

const NAME_CHAR = /[\p{L}\p{Nd}_]/u;

/**
 * Go `Regexp.Expand`: `$name` and `${name}` take the longest run of letters,
 * digits and `_` (`$1x` means `${1x}`), a purely numeric name is a group
 * number, `$$` is `$`, a malformed reference is literal text, and a group that
 * does not exist or did not take part in the match expands to nothing.
 */
export function parseExpandTemplate(template: string, re: GoRegexp): ExpandTemplate {
  const parts: TemplatePart[] = [];
  const references: (string | number)[] = [];
  let literal = "";
  let i = 0;
  while (i < template.length) {
    const dollar = template.indexOf("$", i);
    if (dollar < 0) {
      literal += template.slice(i);
      break;
    }
    literal += template.slice(i, dollar);
    i = dollar + 1;
    if (template[i] === "$") {
      literal += "$";
      i++;
      continue;
    }
    const brace = template[i] === "{";
    let j = brace ? i + 1 : i;
    const nameStart = j;
    for (const ch of template.slice(nameStart)) {
      if (!NAME_CHAR.test(ch)) break;
      j += ch.length;
    }
    const name = template.slice(nameStart, j);
    if (name === "" || (brace && template[j] !== "}")) {
      literal += "$";
      continue;
    }
    i = brace ? j + 1 : j;
    if (literal) parts.push(literal);
    literal = "";
    let num = -1;
    if (/^[0-9]+$/.test(name) && !(name.length > 1 && name[0] === "0") && name.length <= 9)
      num = Number(name);
    if (num >= 0) {
      parts.push({ group: num });
      references.push(num);
    } else {
      parts.push({ name });
      references.push(name);
    }
  }
  if (literal) parts.push(literal);
  const resolved = parts.map((p) =>
    typeof p === "string" || "group" in p ? p : { group: re.groupNames.get(p.name) ?? -1 },
  );
  return {
    source: template,
    references,
    expand(input, match) {
      let out = "";
      for (const p of resolved) {
        if (typeof p === "string") {
          out += p;
          continue;
        }
        const start = match[2 * p.group];
        const end = match[2 * p.group + 1];
        if (p.group >= 0 && start !== undefined && end !== undefined && start >= 0)
          out += input.slice(start, end);
      }
      return out;
    },
  };
}
