/**
 * Validation and compilation of a SelectionPolicy, done once (at config load)
 * so that selection itself never fails on the policy and stays cheap.
 */
import { PolicySpecError } from "./errors.ts";
import {
  compileGoRegexp,
  type ExpandTemplate,
  type GoRegexp,
  parseExpandTemplate,
  RegexSyntaxError,
} from "./regex.ts";
import { parseSemverRange, type SemverConstraint, SemverRangeError } from "./semver.ts";
import type { SelectionPolicy } from "./types.ts";

/** Flux ImageRepository's default `exclusionList` (cosign signature tags). */
export const DEFAULT_EXCLUSION_LIST: readonly string[] = ["^.*\\.sig$"];

/** What selection needs from the compiled form; not part of the public surface. */
export interface CompiledInternals {
  exclusions: readonly TagMatcher[];
  filter: GoRegexp | undefined;
  extract: ExpandTemplate | undefined;
  semver: SemverConstraint | undefined;
}

/** A boolean tag test; literal suffix patterns skip the regex engine entirely. */
export interface TagMatcher {
  readonly source: string;
  test(tag: string): boolean;
}

const internals = new WeakMap<CompiledSelectionPolicy, CompiledInternals>();

export interface CompiledSelectionPolicy {
  readonly spec: Readonly<SelectionPolicy>;
  /**
   * Selection needs image build times: newestBuild, or any strategy with
   * minAgeMs. Feed tags to a selector, enrich its `candidates()` with `created`,
   * then call `selectLatest`.
   */
  readonly needsBuildTimes: boolean;
  /** digest strategy: the one tag followed; its digest can be resolved without listing tags. */
  readonly followTag: string | undefined;
}

export function internalsOf(compiled: CompiledSelectionPolicy): CompiledInternals {
  const i = internals.get(compiled);
  if (!i) throw new TypeError("not a policy compiled by compileSelectionPolicy");
  return i;
}

export function isCompiled(x: CompiledSelectionPolicy | SelectionPolicy): x is CompiledSelectionPolicy {
  return internals.has(x as CompiledSelectionPolicy);
}

// `^.*\.sig$`-style patterns (Flux's default exclusion) are "ends with a literal";
// testing that directly is exact (`.` excludes only `\n`, checked too) and cheap.
const LITERAL_SUFFIX = /^\^\.\*((?:\\\.|[A-Za-z0-9_-])+)\$$/;

function compileMatcher(pattern: string, field: (string | number)[]): TagMatcher {
  const literal = LITERAL_SUFFIX.exec(pattern);
  let re: GoRegexp;
  try {
    re = compileGoRegexp(pattern);
  } catch (err) {
    if (err instanceof RegexSyntaxError)
      throw new PolicySpecError(field, `invalid regular expression: ${err.message}`);
    throw err;
  }
  if (literal?.[1]) {
    const suffix = literal[1].replaceAll("\\.", ".");
    return { source: pattern, test: (tag) => tag.endsWith(suffix) && !tag.includes("\n") };
  }
  return { source: pattern, test: (tag) => re.test(tag) };
}

/**
 * Check every part of a policy and prepare it for selection. Throws
 * PolicySpecError naming the field (`filter.pattern`, `strategy.range`, …).
 */
export function compileSelectionPolicy(spec: SelectionPolicy): CompiledSelectionPolicy {
  const strategy = spec.strategy;
  let semver: SemverConstraint | undefined;
  switch (strategy.kind) {
    case "semver":
      try {
        semver = parseSemverRange(strategy.range);
      } catch (err) {
        if (err instanceof SemverRangeError)
          throw new PolicySpecError(
            ["strategy", "range"],
            `invalid semver range "${strategy.range}": ${err.message}`,
          );
        throw err;
      }
      break;
    case "alphabetical":
    case "numerical":
      if (strategy.order !== "asc" && strategy.order !== "desc")
        throw new PolicySpecError(
          ["strategy", "order"],
          `order must be asc or desc, not "${String(strategy.order)}"`,
        );
      break;
    case "digest":
      if (!strategy.tag)
        throw new PolicySpecError(["strategy", "tag"], "the digest strategy needs the tag to follow");
      if (spec.filter)
        throw new PolicySpecError(
          ["filter"],
          "filterTags has no meaning with the digest strategy (it follows one tag)",
        );
      break;
    case "newestBuild":
      break;
    default:
      throw new PolicySpecError(
        ["strategy", "kind"],
        `unknown strategy "${String((strategy as { kind: unknown }).kind)}" (semver, alphabetical, numerical, newestBuild, digest)`,
      );
  }

  const exclusions = (spec.exclusionList ?? []).map((p, i) => compileMatcher(p, ["exclusionList", i]));

  let filter: GoRegexp | undefined;
  let extract: ExpandTemplate | undefined;
  if (spec.filter) {
    try {
      filter = compileGoRegexp(spec.filter.pattern);
    } catch (err) {
      if (err instanceof RegexSyntaxError)
        throw new PolicySpecError(["filter", "pattern"], `invalid regular expression: ${err.message}`);
      throw err;
    }
    if (spec.filter.extract) {
      extract = parseExpandTemplate(spec.filter.extract, filter);
      // Flux expands a missing group to "" and then finds nothing; say so up front instead.
      for (const ref of extract.references) {
        const missing = typeof ref === "number" ? ref > filter.groupCount : !filter.groupNames.has(ref);
        if (missing) {
          throw new PolicySpecError(
            ["filter", "extract"],
            typeof ref === "number"
              ? `extract refers to group $${ref} but the pattern has ${filter.groupCount} group(s)`
              : /^[0-9]/.test(ref)
                ? `extract '$${ref}' names the group "${ref}" (Go reads the longest name); write \${${ref.replace(/^([0-9]+).*/, "$1")}}${ref.replace(/^[0-9]+/, "")} for a group number followed by text`
                : `extract refers to \${${ref}} but the pattern has no group (?P<${ref}>…)`,
          );
        }
      }
    }
  }

  if (spec.minAgeMs !== undefined && !(Number.isFinite(spec.minAgeMs) && spec.minAgeMs >= 0))
    throw new PolicySpecError(
      ["minAgeMs"],
      `minimum age must be a non-negative duration, not ${spec.minAgeMs}`,
    );

  const compiled: CompiledSelectionPolicy = Object.freeze({
    spec,
    needsBuildTimes: strategy.kind === "newestBuild" || (spec.minAgeMs !== undefined && spec.minAgeMs > 0),
    followTag: strategy.kind === "digest" ? strategy.tag : undefined,
  });
  internals.set(compiled, { exclusions, filter, extract, semver });
  return compiled;
}
