/**
 * Policy selection over 100,000 realistic tags, every strategy (target: < 100 ms
 * median for selectLatest). Run: `node bench/policy.ts [runs]` (default 15).
 *
 * Wall time is what the target is about; CPU time (this process, user+system)
 * is printed too because on a shared machine it is far less disturbed by others.
 *
 * Tags: semver releases with and without `v`, prereleases (rc/beta), CI tags
 * `main-<sha>-<unix ts>`, bare build numbers, `latest`-style names, and cosign
 * `.sig` tags, shuffled deterministically. Each figure is the median of N runs
 * after two warm-up runs; the policy is compiled once, outside the timing.
 */
import os from "node:os";
import {
  type CompiledSelectionPolicy,
  compileSelectionPolicy,
  createSelector,
  DEFAULT_EXCLUSION_LIST,
  type SelectionPolicy,
  selectLatest,
  type TagCandidate,
} from "../src/policy/index.ts";

const TAGS = 100_000;
const runs = Number(process.argv[2] ?? 15);

/** xorshift32: the same tags on every machine. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

function makeTags(n: number): TagCandidate[] {
  const r = rng(42);
  const hex = () =>
    Math.floor(r() * 0xffffffff)
      .toString(16)
      .padStart(8, "0");
  const base = Date.parse("2020-01-01T00:00:00Z");
  const out: TagCandidate[] = [];
  for (let i = 0; i < n; i++) {
    const created = new Date(base + Math.floor(r() * 5 * 365 * 24 * 3600) * 1000);
    const kind = r();
    let tag: string;
    if (kind < 0.35) {
      const v = `${Math.floor(r() * 4)}.${Math.floor(r() * 40)}.${Math.floor(r() * 60)}`;
      tag = r() < 0.5 ? `v${v}` : v;
    } else if (kind < 0.5) {
      const v = `${Math.floor(r() * 4)}.${Math.floor(r() * 40)}.${Math.floor(r() * 60)}`;
      tag = `${v}-${r() < 0.5 ? "rc" : "beta"}.${Math.floor(r() * 12)}`;
    } else if (kind < 0.8) {
      tag = `main-${hex()}-${Math.floor(created.getTime() / 1000)}`;
    } else if (kind < 0.9) {
      tag = String(Math.floor(r() * 1_000_000));
    } else if (kind < 0.95) {
      tag = `sha256-${hex()}${hex()}.sig`;
    } else {
      tag = ["latest", "stable", "edge", "nightly", "dev"][Math.floor(r() * 5)]! + `-${i}`;
    }
    out.push({ tag, created, digest: `sha256:${hex()}` });
  }
  // The mutable tag the digest strategy follows, somewhere in the middle of the listing.
  out[n >> 1] = { tag: "latest", created: new Date(base), digest: `sha256:${hex()}` };
  return out;
}

const candidates = makeTags(TAGS);
const tagNames = candidates.map((c) => c.tag);
const exclusionList = [...DEFAULT_EXCLUSION_LIST];
const ci = { pattern: "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", extract: "$ts" };

const cases: { name: string; policy: SelectionPolicy; input: "names" | "candidates" }[] = [
  {
    name: "semver ^2.0 (no filter)",
    policy: { strategy: { kind: "semver", range: "^2.0" }, exclusionList },
    input: "names",
  },
  {
    name: "semver >=1.0.0-0 <3 (prereleases)",
    policy: { strategy: { kind: "semver", range: ">=1.0.0-0 <3" }, exclusionList },
    input: "names",
  },
  {
    name: "semver 1.x + filter/extract",
    policy: {
      strategy: { kind: "semver", range: "1.x" },
      filter: { pattern: "^v?(?P<v>[0-9]+\\.[0-9]+\\.[0-9]+)$", extract: "$v" },
      exclusionList,
    },
    input: "names",
  },
  {
    name: "alphabetical asc + extract $ts",
    policy: { strategy: { kind: "alphabetical", order: "asc" }, filter: ci, exclusionList },
    input: "names",
  },
  {
    name: "numerical asc + extract $ts",
    policy: { strategy: { kind: "numerical", order: "asc" }, filter: ci, exclusionList },
    input: "names",
  },
  {
    name: "numerical desc ^[0-9]+$",
    policy: {
      strategy: { kind: "numerical", order: "desc" },
      filter: { pattern: "^[0-9]+$" },
      exclusionList,
    },
    input: "names",
  },
  {
    name: "newestBuild (main-*, with build times)",
    policy: { strategy: { kind: "newestBuild" }, filter: { pattern: "^main-" }, exclusionList },
    input: "candidates",
  },
  {
    name: "semver ^2.0 + minAge 72h (build times)",
    policy: { strategy: { kind: "semver", range: "^2.0" }, minAgeMs: 72 * 3600 * 1000, exclusionList },
    input: "candidates",
  },
  {
    name: "digest (follow latest)",
    policy: { strategy: { kind: "digest", tag: "latest" }, exclusionList },
    input: "names",
  },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Wall time and this process's CPU time (user + system) per run, in ms. */
function time(fn: () => unknown): { wall: number[]; cpu: number[] } {
  fn();
  fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall, cpu };
}

const now = Date.parse("2025-01-01T00:00:00Z");
const cpu = os.cpus()[0];
console.log(
  `machine: ${cpu?.model ?? "unknown CPU"}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
    `${os.platform()} ${os.release()}, node ${process.version}, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
);
console.log(`tags: ${TAGS.toLocaleString("en-US")}; runs: ${runs} (median, after 2 warm-ups)\n`);
console.log(
  "| strategy | selectLatest wall median | p90 | CPU median | streaming selector (1,000-tag pages) wall median | selected |",
);
console.log("| --- | ---: | ---: | ---: | ---: | --- |");
for (const c of cases) {
  const compiled: CompiledSelectionPolicy = compileSelectionPolicy(c.policy);
  const input = c.input === "names" ? tagNames : candidates;
  let last = selectLatest(input, compiled, now);
  const whole = time(() => {
    last = selectLatest(input, compiled, now);
  });
  const streamed = time(() => {
    const sel = createSelector(compiled);
    for (let i = 0; i < tagNames.length; i += 1000) sel.add(tagNames.slice(i, i + 1000));
    return compiled.needsBuildTimes ? sel.candidates() : sel.result();
  });
  const p90 = [...whole.wall].sort((a, b) => a - b)[Math.floor(whole.wall.length * 0.9)]!;
  const picked = last.ok ? last.tag : `(${last.reason})`;
  console.log(
    `| ${c.name} | ${median(whole.wall).toFixed(1)} ms | ${p90.toFixed(1)} ms | ${median(whole.cpu).toFixed(1)} ms | ` +
      `${median(streamed.wall).toFixed(1)} ms | ${picked} |`,
  );
}
