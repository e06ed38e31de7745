// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Go expand templates are written ${name}
/**
 * Selection rules, one table per rule. Cases marked "Flux" come from
 * image-reflector-controller's own tests (internal/policy/*_test.go and
 * internal/controller/policy_test.go); the rest pin behaviour Flux's code has
 * but does not test, or shipmate's additions (newestBuild, digest, minAge).
 */
import { describe, expect, it } from "vitest";
import {
  compileSelectionPolicy,
  createSelector,
  DEFAULT_EXCLUSION_LIST,
  PolicySpecError,
  type SelectionPolicy,
  selectLatest,
  type TagCandidate,
} from "../../src/policy/index.ts";

const semver = (range: string, extra: Partial<SelectionPolicy> = {}): SelectionPolicy => ({
  strategy: { kind: "semver", range },
  ...extra,
});
const alphabetical = (
  order: "asc" | "desc" = "asc",
  extra: Partial<SelectionPolicy> = {},
): SelectionPolicy => ({
  strategy: { kind: "alphabetical", order },
  ...extra,
});
const numerical = (order: "asc" | "desc" = "asc", extra: Partial<SelectionPolicy> = {}): SelectionPolicy => ({
  strategy: { kind: "numerical", order },
  ...extra,
});

function selected(tags: string[], policy: SelectionPolicy): string | undefined {
  const s = selectLatest(tags, policy);
  return s.ok ? s.tag : undefined;
}

function reason(tags: string[], policy: SelectionPolicy, now?: number): string | undefined {
  const s = selectLatest(tags, policy, now);
  return s.ok ? undefined : s.reason;
}

describe("semver: the highest version in range wins (Flux TestSemVer_Latest)", () => {
  it.each([
    ["Flux: regular", "1.0.x", ["1.0.0", "1.0.0.1", "1.0.0p", "1.0.1", "1.2.0", "0.1.0"], "1.0.1"],
    ["Flux: with v prefix, returned as written", "1.0.x", ["v1.2.3", "v1.0.0", "v0.1.0"], "v1.0.0"],
    [
      "Flux: controller case",
      "1.0.x",
      ["0.1.0", "0.1.1", "0.2.0", "1.0.0", "1.0.1", "1.0.2", "1.1.0-alpha"],
      "1.0.2",
    ],
    ["caret", "^1.0", ["1.0.0", "1.9.3", "2.0.0", "0.9.9"], "1.9.3"],
    ["tilde", "~1.0", ["1.0.0", "1.0.7", "1.1.0"], "1.0.7"],
    ["comma means AND", ">0,<2.0", ["0.5.0", "1.9.9", "2.0.0"], "1.9.9"],
    ["OR", "<1.0 || >=3.0", ["0.9.0", "2.0.0", "3.1.0"], "3.1.0"],
    ["build metadata is ignored in ordering", ">=1.0.0", ["1.0.0+b2", "1.0.1+b1"], "1.0.1+b1"],
    [
      "numeric prerelease identifiers compare as numbers",
      "^1.x-0",
      ["1.0.0-rc.9", "1.0.0-rc.10"],
      "1.0.0-rc.10",
    ],
    ["a release outranks its prereleases", "^1.x-0", ["1.0.0-rc.1", "1.0.0"], "1.0.0"],
    ["tags that are not versions are skipped", "*", ["latest", "main", "1.2.3", "sha-abc"], "1.2.3"],
    ["two-part tags are not versions", ">=1.0", ["1.5", "1.4.0"], "1.4.0"],
  ])("semver: %s", (_rule, range, tags, expected) => {
    expect(selected(tags, semver(range))).toBe(expected);
  });
});

describe("semver: prerelease tags only when the range has a prerelease", () => {
  it.each([
    ["^1.0", ["1.0.0", "1.1.0-rc.1"], "1.0.0"],
    ["^1.x-0", ["1.0.0", "1.1.0-rc.1"], "1.1.0-rc.1"],
    [">=1.0.0-0 <2.0.0", ["1.0.0", "1.1.0-rc.1"], "1.1.0-rc.1"],
    // Masterminds precedence: 2.0.0-rc.1 < 2.0.0, so it is inside "<2.0.0".
    [">=1.0.0-0 <2.0.0", ["1.1.0-rc.1", "2.0.0-rc.1", "2.0.0"], "2.0.0-rc.1"],
    ["*", ["1.0.0", "2.0.0-alpha"], "1.0.0"],
    ["*-0", ["1.0.0", "2.0.0-alpha"], "2.0.0-alpha"],
  ])("semver: range %j over %j selects %s", (range, tags, expected) => {
    expect(selected(tags, semver(range))).toBe(expected);
  });
});

describe("semver: equal versions written differently: the first listed wins (Flux's strict greater-than)", () => {
  it.each([
    [["v1.0.0", "1.0.0"], "v1.0.0"],
    [["1.0.0", "v1.0.0"], "1.0.0"],
    [["1.0.0+a", "1.0.0+b"], "1.0.0+a"],
  ])("semver: %j selects %s", (tags, expected) => {
    expect(selected(tags, semver(">=1.0.0"))).toBe(expected);
  });
});

describe("semver: nothing selectable says why", () => {
  it.each([
    ["Flux: empty list", [], "no-tags"],
    ["Flux: invalid prefix", ["b1.2.3", "b1.0.0", "b0.1.0"], "none-in-range"],
    ["Flux: non-matching version list", ["1.2.0"], "none-in-range"],
  ])("semver: %s", (_rule, tags, expected) => {
    expect(reason(tags, semver("1.0.x"))).toBe(expected);
  });
  it("semver: the message names the range and the highest version outside it", () => {
    const s = selectLatest(["1.2.0", "latest"], semver("1.0.x"));
    expect(s).toMatchObject({ ok: false, reason: "none-in-range" });
    expect(!s.ok && s.message).toMatch(/range '1\.0\.x'.*1\.2\.0/);
  });
});

describe("alphabetical: asc picks the greatest, desc the smallest (Flux TestAlphabetical_Latest)", () => {
  it.each([
    ["Flux: Ubuntu CalVer", "asc", ["16.04", "16.04.1", "16.10", "20.04", "20.10"], "20.10"],
    ["Flux: Ubuntu CalVer descending", "desc", ["16.04", "16.04.1", "16.10", "20.04", "20.10"], "16.04"],
    ["Flux: Ubuntu code names", "asc", ["xenial", "yakkety", "zesty", "artful", "bionic"], "zesty"],
    [
      "Flux: Ubuntu code names descending",
      "desc",
      ["xenial", "yakkety", "zesty", "artful", "bionic"],
      "artful",
    ],
    [
      "Flux: timestamps",
      "asc",
      ["1606234201", "1606364286", "1606334092", "1606334284", "1606334201"],
      "1606364286",
    ],
    [
      "Flux: timestamps desc",
      "desc",
      ["1606234201", "1606364286", "1606334092", "1606334284", "1606334201"],
      "1606234201",
    ],
    [
      "Flux: timestamps with prefix",
      "asc",
      ["rel-1606234201", "rel-1606364286", "rel-1606334092"],
      "rel-1606364286",
    ],
    ["byte order: uppercase sorts before lowercase", "asc", ["a", "B"], "a"],
    ["byte order: a prefix sorts first", "asc", ["v1", "v10", "v9"], "v9"],
  ] as const)("alphabetical: %s", (_rule, order, tags, expected) => {
    expect(selected([...tags], alphabetical(order))).toBe(expected);
  });
  it("alphabetical: Flux: an empty list selects nothing", () => {
    expect(reason([], alphabetical())).toBe("no-tags");
  });
});

describe("numerical: every candidate is a Go float; asc picks the largest (Flux TestNumerical_Latest)", () => {
  it.each([
    [
      "Flux: integers ascending",
      "asc",
      ["-62", "-88", "73", "72", "15", "16", "15", "29", "-33", "-91"],
      "73",
    ],
    [
      "Flux: integers descending",
      "desc",
      ["5", "-8", "-78", "25", "70", "-4", "80", "92", "-20", "-24"],
      "-78",
    ],
    [
      "Flux: floats ascending",
      "asc",
      ["47.40896403322944", "-27.8520927455902", "53.47333823144817", "3.2008658570411086"],
      "53.47333823144817",
    ],
    [
      "Flux: floats descending",
      "desc",
      ["-65.27202780220686", "57.82948329142309", "-90.29082099756083"],
      "-90.29082099756083",
    ],
    ["Flux: unix timestamps ascending", "asc", ["1606234201", "1606364286", "1606334092"], "1606364286"],
    ["Flux: unix timestamps descending", "desc", ["1606234201", "1606364286", "1606334092"], "1606234201"],
    ["Flux: single value ascending", "asc", ["1"], "1"],
    ["Flux: single value descending", "desc", ["1"], "1"],
    ["equal values: the later listed wins", "asc", ["1.0", "1", "0.5"], "1"],
    ["exponents and hex floats are numbers", "asc", ["1e3", "0x1p11", "999"], "0x1p11"],
  ] as const)("numerical: %s", (_rule, order, tags, expected) => {
    expect(selected([...tags], numerical(order))).toBe(expected);
  });
  it.each([
    ["Flux: invalid numerical value", ["0", "1a", "b"], "not-a-number"],
    ["Flux: empty version list", [], "no-tags"],
    ["one tag that is not a number fails the whole list", ["1", "2", "latest"], "not-a-number"],
    ["out of float64 range is not a number", ["1", "1e400"], "not-a-number"],
  ])("numerical: %s", (_rule, tags, expected) => {
    expect(reason(tags, numerical())).toBe(expected);
  });
  it("numerical: the message names the offending tag and suggests a filter", () => {
    const s = selectLatest(["1", "latest"], numerical());
    expect(!s.ok && s.message).toMatch(/'latest' is not a number.*filterTags/);
  });
});

describe("filterTags: pattern keeps matching tags (Flux TestRegexFilter, TestImagePolicyReconciler_filterTags)", () => {
  const flux = ["test-0.1.0", "test-0.1.1", "dev-0.2.0", "1.0.0", "1.0.1", "1.0.2", "1.1.0-alpha"];
  it.each([
    [
      "Flux: extract a group, the original tag is returned",
      flux,
      semver(">=0.x", { filter: { pattern: "^test-(.*)$", extract: "$1" } }),
      "test-0.1.1",
    ],
    [
      "Flux: pattern only",
      ["ver1", "ver2", "ver3", "rel1"],
      alphabetical("asc", { filter: { pattern: "^ver" } }),
      "ver3",
    ],
    [
      "Flux: numbered group",
      ["ver1", "ver2", "ver13", "rel99"],
      numerical("asc", { filter: { pattern: "ver(\\d+)", extract: "$1" } }),
      "ver13",
    ],
    [
      "named group with $name",
      ["main-abc123-1700000000", "main-def456-1800000000", "pr-1-1900000000"],
      numerical("asc", { filter: { pattern: "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", extract: "$ts" } }),
      "main-def456-1800000000",
    ],
    [
      "named group with ${name} and literal text",
      ["app-1.2.3-linux", "app-1.10.0-linux", "app-2.0.0-windows"],
      semver("^1", { filter: { pattern: "^app-(?P<v>[0-9.]+)-linux$", extract: "${v}" } }),
      "app-1.10.0-linux",
    ],
    [
      "the pattern is unanchored, like Go's FindStringSubmatchIndex",
      ["a-rc", "b-rc", "c"],
      alphabetical("asc", { filter: { pattern: "rc" } }),
      "b-rc",
    ],
    [
      "(?<name>) groups are accepted as in Go 1.22+",
      ["x-1", "x-2"],
      numerical("asc", { filter: { pattern: "x-(?<n>\\d)", extract: "$n" } }),
      "x-2",
    ],
    [
      "same extraction twice: the later tag wins (Flux's map)",
      ["a-1", "b-1", "c-0"],
      numerical("asc", { filter: { pattern: "-(\\d)$", extract: "$1" } }),
      "b-1",
    ],
    [
      "same extraction twice under semver: the later tag wins",
      ["build1-1.0.0", "build2-1.0.0"],
      semver("*", { filter: { pattern: "-(.+)$", extract: "$1" } }),
      "build2-1.0.0",
    ],
  ])("filterTags: %s", (_rule, tags, policy, expected) => {
    expect(selected(tags, policy)).toBe(expected);
  });
  it("filterTags: no tag matches the pattern → none-matched-filter naming the pattern", () => {
    const s = selectLatest(["1.0.0", "latest"], semver("*", { filter: { pattern: "^main-" } }));
    expect(s).toMatchObject({ ok: false, reason: "none-matched-filter" });
    expect(!s.ok && s.message).toContain("'^main-'");
  });
});

describe("filterTags.extract: the expansion, not the tag, is what the policy compares", () => {
  it("extract: alphabetical order of the extraction decides", () => {
    // By tag z-1 > a-9; by extraction 9 > 1.
    expect(
      selected(["z-1", "a-9"], alphabetical("asc", { filter: { pattern: "-(\\d)$", extract: "$1" } })),
    ).toBe("a-9");
  });
  it("extract: literal text around the reference takes part", () => {
    expect(
      selected(
        ["a1b", "a2b"],
        alphabetical("desc", { filter: { pattern: "^a(?P<d>\\d)b$", extract: "x${d}z" } }),
      ),
    ).toBe("a1b");
  });
});

describe("exclusionList: matching tags are never considered (Flux ImageRepository)", () => {
  it.each([
    [
      "the default excludes cosign signatures",
      [...DEFAULT_EXCLUSION_LIST],
      ["sha256-abc.sig", "1.0.0"],
      "1.0.0",
    ],
    ["any regex, unanchored", ["rc"], ["1.1.0-rc1", "1.0.0"], "1.0.0"],
    ["several patterns", ["^sha-", "\\.att$"], ["sha-1", "x.att", "z"], "z"],
  ])("exclusionList: %s", (_rule, exclusionList, tags, expected) => {
    expect(selected(tags, alphabetical("asc", { exclusionList }))).toBe(expected);
  });
  it("exclusionList: the default excludes only tags ending in .sig, like the regex", () => {
    const policy = alphabetical("asc", { exclusionList: [...DEFAULT_EXCLUSION_LIST] });
    expect(selected(["a.sig", "zsig", "b.sigx"], policy)).toBe("zsig");
    expect(selected(["a.sig", "b.sigx"], policy)).toBe("b.sigx");
  });
  it("exclusionList: when every tag is excluded the reason is no-tags and says so", () => {
    const s = selectLatest(
      ["a.sig", "b.sig"],
      alphabetical("asc", { exclusionList: [...DEFAULT_EXCLUSION_LIST] }),
    );
    expect(s).toMatchObject({ ok: false, reason: "no-tags" });
    expect(!s.ok && s.message).toContain("excluded");
  });
});

const t = (tag: string, iso?: string, digest?: string): TagCandidate => ({
  tag,
  ...(iso ? { created: new Date(iso) } : {}),
  ...(digest ? { digest } : {}),
});

describe("newestBuild: the candidate built last wins", () => {
  const policy: SelectionPolicy = { strategy: { kind: "newestBuild" } };
  it.each([
    [
      "the latest created wins",
      [t("a", "2024-01-01T00:00:00Z"), t("b", "2024-03-01T00:00:00Z"), t("c", "2024-02-01T00:00:00Z")],
      "b",
    ],
    ["candidates without a build time are ignored", [t("a", "2024-01-01T00:00:00Z"), t("b")], "a"],
    [
      "equal build times: the greater tag wins, whatever the order",
      [t("b", "2024-01-01T00:00:00Z"), t("a", "2024-01-01T00:00:00Z")],
      "b",
    ],
  ])("newestBuild: %s", (_rule, candidates, expected) => {
    const s = selectLatest(candidates, policy);
    expect(s.ok && s.tag).toBe(expected);
  });
  it("newestBuild: the selection carries the build time and digest the scanner supplied", () => {
    const s = selectLatest([t("a", "2024-01-01T00:00:00Z", "sha256:aa")], policy);
    expect(s).toEqual({ ok: true, tag: "a", created: new Date("2024-01-01T00:00:00Z"), digest: "sha256:aa" });
  });
  it("newestBuild: no candidate has a build time → no-build-time", () => {
    expect(selectLatest([t("a"), t("b")], policy)).toMatchObject({ ok: false, reason: "no-build-time" });
  });
  it("newestBuild: filterTags narrows the candidates first", () => {
    const s = selectLatest([t("main-1", "2024-01-01T00:00:00Z"), t("pr-7", "2024-05-01T00:00:00Z")], {
      strategy: { kind: "newestBuild" },
      filter: { pattern: "^main-" },
    });
    expect(s.ok && s.tag).toBe("main-1");
  });
});

describe("minAge: candidates younger than the cooldown are ignored", () => {
  const now = Date.parse("2024-06-10T00:00:00Z");
  const day = 24 * 3600 * 1000;
  it.each([
    [
      "semver: the best version old enough wins",
      semver("^1", { minAgeMs: 3 * day }),
      [
        t("1.2.0", "2024-06-09T00:00:00Z"),
        t("1.1.0", "2024-06-01T00:00:00Z"),
        t("1.0.0", "2024-05-01T00:00:00Z"),
      ],
      "1.1.0",
    ],
    [
      "newestBuild: the newest build old enough wins",
      { strategy: { kind: "newestBuild" }, minAgeMs: 3 * day } satisfies SelectionPolicy,
      [t("a", "2024-06-09T00:00:00Z"), t("b", "2024-06-05T00:00:00Z"), t("c", "2024-05-01T00:00:00Z")],
      "b",
    ],
    [
      "a candidate exactly minAge old is old enough",
      semver("*", { minAgeMs: day }),
      [t("1.0.0", "2024-06-09T00:00:00Z")],
      "1.0.0",
    ],
    [
      "candidates without a build time are ignored",
      alphabetical("asc", { minAgeMs: day }),
      [t("z"), t("a", "2024-01-01T00:00:00Z")],
      "a",
    ],
  ])("minAge: %s", (_rule, policy, candidates, expected) => {
    const s = selectLatest(candidates, policy, now);
    expect(s.ok && s.tag).toBe(expected);
  });
  it("minAge: everything too young → all-too-young naming the duration", () => {
    const s = selectLatest(
      [t("1.0.0", "2024-06-09T12:00:00Z")],
      semver("*", { minAgeMs: 72 * 3600 * 1000 }),
      now,
    );
    expect(s).toMatchObject({ ok: false, reason: "all-too-young" });
    expect(!s.ok && s.message).toContain("72h");
  });
  it("minAge: no build times at all → no-build-time", () => {
    expect(reason(["1.0.0"], semver("*", { minAgeMs: day }), now)).toBe("no-build-time");
  });
  it("minAge: needs `now` (selection never reads the clock)", () => {
    expect(() => selectLatest([t("1.0.0", "2024-01-01T00:00:00Z")], semver("*", { minAgeMs: day }))).toThrow(
      /now/,
    );
  });
});

describe("digest: follow one mutable tag", () => {
  const policy: SelectionPolicy = { strategy: { kind: "digest", tag: "latest" } };
  it("digest: the selection is the followed tag with the digest the scanner resolved", () => {
    expect(selectLatest([t("latest", undefined, "sha256:0f"), t("1.0.0")], policy)).toEqual({
      ok: true,
      tag: "latest",
      digest: "sha256:0f",
    });
  });
  it("digest: the compiled policy names the tag so the scanner need not list tags", () => {
    expect(compileSelectionPolicy(policy)).toMatchObject({ followTag: "latest", needsBuildTimes: false });
  });
  it("digest: the tag missing from the repository → tag-not-found", () => {
    expect(reason(["1.0.0"], policy)).toBe("tag-not-found");
  });
});

describe("compileSelectionPolicy: invalid policies fail up front naming the field", () => {
  it.each([
    [
      "invalid regex pattern",
      semver("*", { filter: { pattern: "^test-(.*" } }),
      "filter.pattern",
      /missing closing \)/,
    ],
    ["Flux: invalid range '*-*'", semver("*-*"), "strategy.range", /invalid semver range/],
    ["invalid range", semver(">= 1.0 <"), "strategy.range", /invalid semver range/],
    [
      "invalid exclusion regex",
      alphabetical("asc", { exclusionList: ["ok", "a**"] }),
      "exclusionList.1",
      /nested repetition/,
    ],
    [
      "extract names a group the pattern lacks",
      numerical("asc", { filter: { pattern: "(?P<ts>\\d+)", extract: "$tss" } }),
      "filter.extract",
      /no group/,
    ],
    [
      "extract numbers a group the pattern lacks",
      numerical("asc", { filter: { pattern: "(\\d+)", extract: "$2" } }),
      "filter.extract",
      /1 group/,
    ],
    [
      "extract $1x is the group named 1x, as Go reads it",
      numerical("asc", { filter: { pattern: "(\\d+)", extract: "$1x" } }),
      "filter.extract",
      /\$\{1\}x/,
    ],
    [
      "unknown strategy",
      { strategy: { kind: "latest" } } as unknown as SelectionPolicy,
      "strategy.kind",
      /unknown strategy/,
    ],
    [
      "invalid order",
      { strategy: { kind: "numerical", order: "up" } } as unknown as SelectionPolicy,
      "strategy.order",
      /asc or desc/,
    ],
    [
      "digest without a tag",
      { strategy: { kind: "digest", tag: "" } } as SelectionPolicy,
      "strategy.tag",
      /tag to follow/,
    ],
    ["negative minimum age", semver("*", { minAgeMs: -1 }), "minAgeMs", /non-negative/],
  ])("compile: %s", (_rule, policy, field, message) => {
    let caught: unknown;
    try {
      compileSelectionPolicy(policy);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PolicySpecError);
    const e = caught as PolicySpecError;
    expect(e.field.join(".")).toBe(field);
    expect(e.message).toMatch(message);
    expect(e.exitCode).toBe(2);
  });
});

describe("createSelector: pages of tags give the same answer as one list", () => {
  const tags = Array.from({ length: 500 }, (_, i) =>
    i % 7 === 0 ? `main-${i}` : `${i % 5}.${i % 11}.${i % 13}`,
  );
  it.each([
    ["semver", semver("^3")],
    ["alphabetical", alphabetical("desc")],
    ["numerical with extract", numerical("asc", { filter: { pattern: "^main-(\\d+)$", extract: "$1" } })],
  ])("selector: %s", (_name, policy) => {
    const compiled = compileSelectionPolicy(policy);
    const sel = createSelector(compiled);
    for (let i = 0; i < tags.length; i += 37) sel.add(tags.slice(i, i + 37));
    expect(sel.result()).toEqual(selectLatest(tags, compiled));
    expect(sel.stats.seen).toBe(tags.length);
  });
  it("selector: keeps only the best when no build times are needed", () => {
    const sel = createSelector(compileSelectionPolicy(semver("*")));
    sel.add(["1.0.0", "2.0.0", "1.5.0"]);
    expect(sel.candidates()).toEqual(["2.0.0"]);
  });
  it("selector: with minAge, candidates come best first for the scanner to enrich", () => {
    const sel = createSelector(compileSelectionPolicy(semver("^1", { minAgeMs: 1000 })));
    sel.add(["1.0.0", "1.2.0", "2.0.0", "latest"]);
    sel.add(["1.1.0"]);
    expect(sel.candidates()).toEqual(["1.2.0", "1.1.0", "1.0.0"]);
    expect(sel.result()).toMatchObject({ ok: false, reason: "no-build-time" });
  });
  it("selector: for newestBuild, the filtered candidates in registry order", () => {
    const sel = createSelector(
      compileSelectionPolicy({ strategy: { kind: "newestBuild" }, filter: { pattern: "^main-" } }),
    );
    sel.add(["main-b", "pr-1", "main-a"]);
    expect(sel.candidates()).toEqual(["main-b", "main-a"]);
  });
});
