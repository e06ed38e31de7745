import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitSource, sweepWorkingCopy } from "../../src/agent/git-source.ts";
import { type GitHttpServer, git, startGitHttpServer, tempDir, writeFiles } from "../infra/git.ts";
import { type Run, rng, spawnKillable } from "./helpers.ts";

const CHILD = new URL("./fetch-child.ts", import.meta.url).pathname;
const SEEDS = Number(process.env.FAULT_SEEDS ?? 8);
const FILES = 600;

const manifest = (i: number, tag: string) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-${i}
data:
  tag: "${tag}"
  padding: "${"p".repeat(200)}"
`;

/** Commit A: files 0..FILES-1 at 1.0.0. Commit B: every file changed, a tenth removed, a tenth added. */
const treeA: Record<string, string> = {};
const treeB: Record<string, string> = {};
for (let i = 0; i < FILES; i++) {
  treeA[`apps/team-${i % 10}/cm-${i}.yaml`] = manifest(i, "1.0.0");
  if (i % 10 !== 7) treeB[`apps/team-${i % 10}/cm-${i}.yaml`] = manifest(i, "2.0.0");
}
for (let i = FILES; i < FILES + FILES / 10; i++) treeB[`apps/new/cm-${i}.yaml`] = manifest(i, "2.0.0");

const digestOf = (files: Record<string, string>) =>
  createHash("sha256")
    .update(
      Object.entries(files)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([p, c]) => `${p}\0${createHash("sha256").update(c).digest("hex")}`)
        .join("\n"),
    )
    .digest("hex");

/** The working copy's files (its `.git` file left out), as one digest. */
function treeDigest(dir: string): string {
  const files: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && e.name === ".git") continue;
      if (e.isDirectory()) walk(p);
      else files[p] = readFileSync(join(dir, p), "utf8");
    }
  };
  walk("");
  return digestOf(files);
}

/** mulberry32: a small seeded generator, so a failing seed can be replayed. */

function fetchIn(workdir: string, branch: string): Run {
  return spawnKillable([CHILD, url, branch, workdir]);
}

/** What sits beside the working copy and in its repository that a run should not leave behind. */
function leftovers(workdir: string): string[] {
  const beside = readdirSync(workdir).filter((n) => /\.(tmp|old)-\d+-/.test(n));
  const gitDir = join(workdir, "source.git");
  const locks: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(gitDir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory() && p !== "objects") walk(p);
      else if (e.name.endsWith(".lock") || /^index\.tmp-/.test(e.name)) locks.push(p);
    }
  };
  if (existsSync(gitDir)) walk("");
  return [...beside, ...locks];
}

/** Resolves when the run has begun writing the new tree (its temporary folder appears), or has ended. */
async function writing(workdir: string, run: Run): Promise<void> {
  let over = false;
  void run.done.then(() => {
    over = true;
  });
  while (!over && !readdirSync(workdir).some((n) => n.startsWith("source.tmp-")))
    await new Promise((r) => setTimeout(r, 2));
}

let server: GitHttpServer;
let url: string;
let root: string;
let template: string;
let commitB: string;
const A = digestOf(treeA);
const B = digestOf(treeB);
const states: Record<string, number> = {};

beforeAll(async () => {
  server = await startGitHttpServer();
  root = tempDir("shipmate-checkout-faults-");
  server.createRepo("fleet", treeA, "a");
  const bare = join(server.root, "fleet.git");
  const work = join(root, "seed");
  git(root, ["clone", "--quiet", "--branch", "a", bare, work]);
  git(work, ["checkout", "--quiet", "-b", "main"]);
  git(work, ["rm", "--quiet", "-r", "apps"]);
  writeFiles(work, treeB);
  git(work, ["add", "--all"]);
  git(work, ["commit", "--quiet", "-m", "B"]);
  git(work, ["push", "--quiet", "origin", "main"]);
  commitB = git(work, ["rev-parse", "HEAD"]).trim();
  const u = new URL(`${server.url}/fleet.git`);
  u.username = server.user;
  u.password = server.password;
  url = u.toString();
  // A working copy at commit A, copied for each seed.
  template = join(root, "template");
  const first = await fetchIn(template, "a").done;
  expect(first.code, first.out).toBe(0);
  expect(treeDigest(join(template, "source"))).toBe(A);
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
  console.log(`checkout faults: ${SEEDS} kills of a fetch; tree after the kill: ${JSON.stringify(states)}`);
});

describe("kill -9 while the agent fetches a new commit into its working copy", () => {
  let whole = 0;
  let checkout = 0;

  it("an uninterrupted fetch of the new commit (the checkout's time, over which kills are spread)", async () => {
    const workdir = join(root, "calibrate");
    cpSync(template, workdir, { recursive: true });
    const t0 = performance.now();
    const run = fetchIn(workdir, "main");
    await writing(workdir, run);
    const t1 = performance.now();
    const r = await run.done;
    whole = performance.now() - t0;
    checkout = performance.now() - t1;
    expect(r.code, r.out).toBe(0);
    expect(r.out.trim()).toBe(`main@sha1:${commitB}`);
    expect(treeDigest(join(workdir, "source"))).toBe(B);
    expect(leftovers(workdir)).toEqual([]);
    // The index swapped in with the tree matches it: git sees a clean working copy.
    expect(git(join(workdir, "source"), ["status", "--porcelain"])).toBe("");
  }, 60_000);

  for (let seed = 1; seed <= SEEDS; seed++) {
    const group = seed % 2 === 0;
    it(`seed ${seed}: SIGKILL to ${group ? "the process group (git too)" : "the fetching process alone"}`, async () => {
      const random = rng(seed);
      const workdir = join(root, `kill-${seed}`);
      cpSync(template, workdir, { recursive: true });
      const run = fetchIn(workdir, "main");
      // Seeds 1, 4, 5, 8…: the kill lands in the checkout and the swap; the others anywhere in the run.
      const inCheckout = seed % 4 < 2;
      if (inCheckout) await writing(workdir, run);
      const delay = Math.round(random() * (inCheckout ? checkout : whole) * 1.1);
      const timer = setTimeout(() => {
        try {
          if (group && run.child.pid) process.kill(-run.child.pid, "SIGKILL");
          else run.child.kill("SIGKILL");
        } catch {
          // Already gone: the fetch finished before the kill.
        }
      }, delay);
      const killed = await run.done;
      clearTimeout(timer);
      // A git child left behind (kill of the parent alone) finishes within moments, as git does.
      await new Promise((r) => setTimeout(r, 300));

      // Whatever the instant, the working copy is one whole commit, or not there.
      const source = join(workdir, "source");
      const state = !existsSync(source)
        ? "no tree"
        : treeDigest(source) === A
          ? "old commit, whole"
          : treeDigest(source) === B
            ? "new commit, whole"
            : "MIXED";
      expect(state).not.toBe("MIXED");
      const key = `${state}${killed.signal ? "" : " (finished first)"}`;
      states[key] = (states[key] ?? 0) + 1;

      const again = await fetchIn(workdir, "main").done;
      expect(again.code, again.out).toBe(0);
      expect(again.out.trim()).toBe(`main@sha1:${commitB}`);
      expect(treeDigest(source)).toBe(B);
      expect(git(source, ["status", "--porcelain"])).toBe("");
      expect(leftovers(workdir)).toEqual([]);
    }, 60_000);
  }
});

describe("what a killed run leaves is swept at the next start", () => {
  it("stale git locks, temporary trees and index files of dead processes go; the fetch then succeeds", async () => {
    const workdir = join(root, "stale");
    cpSync(template, workdir, { recursive: true });
    const gitDir = join(workdir, "source.git");
    // What a git killed mid-fetch or mid-checkout leaves: without the sweep, each fails every later fetch.
    for (const lock of [
      "shallow.lock",
      "index.lock",
      "HEAD.lock",
      "packed-refs.lock",
      "refs/remotes/origin/main.lock",
    ]) {
      mkdirSync(join(gitDir, lock, ".."), { recursive: true });
      writeFileSync(join(gitDir, lock), "");
    }
    // A half-written tree and an index of a process that no longer exists (pid far above pid_max).
    mkdirSync(join(workdir, "source.tmp-99999999-1", "apps"), { recursive: true });
    writeFileSync(join(workdir, "source.tmp-99999999-1", "apps", "half.yaml"), "kind: Half\n");
    mkdirSync(join(workdir, "source.old-99999999-2"));
    writeFileSync(join(gitDir, "index.tmp-99999999"), "");
    const r = await fetchIn(workdir, "main").done;
    expect(r.code, r.out).toBe(0);
    expect(treeDigest(join(workdir, "source"))).toBe(B);
    expect(leftovers(workdir)).toEqual([]);
  }, 60_000);

  it("a live process's temporary folders are left alone", () => {
    const workdir = join(root, "alive");
    mkdirSync(join(workdir, `source.tmp-${process.pid}-7`), { recursive: true });
    mkdirSync(join(workdir, "source.tmp-99999999-7"));
    expect(sweepWorkingCopy(join(workdir, "source"))).toEqual(["source.tmp-99999999-7"]);
    expect(existsSync(join(workdir, `source.tmp-${process.pid}-7`))).toBe(true);
  });

  it("a working copy of the older layout (its own .git folder) is replaced by a fresh fetch", async () => {
    const workdir = join(root, "old-layout");
    mkdirSync(join(workdir, "source"), { recursive: true });
    git(join(workdir, "source"), ["init", "--quiet"]);
    writeFileSync(join(workdir, "source", "stray.yaml"), "kind: Stray\n");
    const r = await fetchIn(workdir, "main").done;
    expect(r.code, r.out).toBe(0);
    expect(treeDigest(join(workdir, "source"))).toBe(B);
  }, 60_000);
});

describe("the same commit fetched again", () => {
  it("a file a render changed is restored, one it wrote is dropped, and the tree stays that commit", async () => {
    const workdir = join(root, "again");
    cpSync(template, workdir, { recursive: true });
    // In this process the tree is written fresh once, then the same commit is restored in place.
    const source = new GitSource({ url, branch: "main", workdir });
    await source.fetch();
    writeFileSync(join(source.dir, "apps/team-1/cm-1.yaml"), "changed by a render\n");
    writeFileSync(join(source.dir, "apps/kustomization.yaml"), "resources: []\n");
    const again = await source.fetch();
    expect(again.revision).toBe(`main@sha1:${commitB}`);
    expect(treeDigest(source.dir)).toBe(B);
    expect(leftovers(workdir)).toEqual([]);
  }, 60_000);
});
