/**
 * Properties over generated inputs (fast-check): the hand-written version parser
 * agrees with the semver.org grammar, precedence agrees with the npm `semver`
 * package on strict versions (both implement semver §11), and the streaming
 * selector gives the same answer however the tag list is paged.
 */
import fc from "fast-check";
import semverNpm from "semver";
import { describe, expect, it } from "vitest";
import {
  compileSelectionPolicy,
  createSelector,
  type SelectionPolicy,
  selectLatest,
} from "../../src/policy/index.ts";
import { compareVersions, parseStrictVersion } from "../../src/policy/semver.ts";

// The regular expression published at semver.org for a valid version.
const SEMVER_ORG =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

const identifier = fc.oneof(
  fc.nat({ max: 30 }).map(String),
  fc.constantFrom("alpha", "beta", "rc", "a-1", "0a", "x"),
);
const strictVersion = fc
  .tuple(
    fc.nat({ max: 20 }),
    fc.nat({ max: 20 }),
    fc.nat({ max: 20 }),
    fc.array(identifier, { maxLength: 3 }),
    fc.option(fc.constantFrom("build.1", "sha-abc"), { nil: undefined }),
  )
  .map(
    ([a, b, c, pre, meta]) =>
      `${a}.${b}.${c}${pre.length ? `-${pre.join(".")}` : ""}${meta ? `+${meta}` : ""}`,
  );

/** Valid versions, near misses (one character inserted, removed or replaced) and noise. */
const versionish = fc.oneof(
  strictVersion,
  fc
    .tuple(
      strictVersion,
      fc.nat(),
      fc.constantFrom(..."0123456789.-+_avV"),
      fc.constantFrom("insert", "delete", "replace"),
    )
    .map(([v, at, ch, op]) => {
      const i = at % (v.length + 1);
      if (op === "insert") return v.slice(0, i) + ch + v.slice(i);
      if (op === "delete") return v.slice(0, i) + v.slice(i + 1);
      return v.slice(0, i) + ch + v.slice(i + 1);
    }),
  fc.stringMatching(/^[0-9.\-+a-cA-C]{1,16}$/),
);

describe("semver: properties", () => {
  it("semver: a strict version is exactly what the semver.org grammar accepts", () => {
    fc.assert(
      fc.property(versionish, (s) => {
        expect(parseStrictVersion(s) !== undefined).toBe(SEMVER_ORG.test(s));
      }),
      { numRuns: 3000 },
    );
  });
  it("semver: precedence agrees with the npm semver package (semver §11)", () => {
    fc.assert(
      fc.property(strictVersion, strictVersion, (a, b) => {
        expect(compareVersions(parseStrictVersion(a)!, parseStrictVersion(b)!)).toBe(semverNpm.compare(a, b));
      }),
      { numRuns: 3000 },
    );
  });
});

describe("selector: properties", () => {
  const tag = fc.oneof(
    strictVersion,
    strictVersion.map((v) => `v${v}`),
    fc.nat({ max: 99 }).map(String),
    fc.constantFrom("latest", "main", "x.sig"),
  );
  const policies: SelectionPolicy[] = [
    { strategy: { kind: "semver", range: ">=1.0.0-0" }, exclusionList: ["^.*\\.sig$"] },
    { strategy: { kind: "alphabetical", order: "desc" } },
    { strategy: { kind: "numerical", order: "asc" }, filter: { pattern: "^[0-9]+$" } },
  ];
  it.each(policies.map((p) => [p.strategy.kind, p] as const))(
    "selector: %s gives the same selection whatever the page sizes",
    (_kind, policy) => {
      const compiled = compileSelectionPolicy(policy);
      fc.assert(
        fc.property(fc.array(tag, { maxLength: 60 }), fc.integer({ min: 1, max: 7 }), (tags, page) => {
          const sel = createSelector(compiled);
          for (let i = 0; i < tags.length; i += page) sel.add(tags.slice(i, i + page));
          expect(sel.result()).toEqual(selectLatest(tags, compiled));
        }),
        { numRuns: 300 },
      );
    },
  );
});
