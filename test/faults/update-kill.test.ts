import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GitHttpServer, git, startGitHttpServer, tempDir } from "../infra/git.ts";
import { type Run, rng, spawnKillable } from "./helpers.ts";

const CLI = new URL("../../src/cli/index.ts", import.meta.url).pathname;
const SEEDS = Number(process.env.FAULT_SEEDS ?? 12);
const FILES = 200;

const deployment = (i: number, tag: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${i}
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example/app-${i % 20}:${tag} # {"$imagepolicy": "flux-system:app-${i % 20}"}
`;

/** mulberry32: a small seeded generator, so a failing seed can be replayed. */

function start(args: string[], env: NodeJS.ProcessEnv): Run {
  return spawnKillable([CLI, ...args], env);
}

/** Resolves when `seen()` first holds (polled), or when the run ends first; the time it was seen. */
async function begun(seen: () => boolean, run: Run): Promise<number> {
  let over = false;
  void run.done.then(() => {
    over = true;
  });
  while (!over && !seen()) await new Promise((r) => setTimeout(r, 2));
  return performance.now();
}

let server: GitHttpServer;
let template: string;
let templateBare: string;
let tmpRoot: string;
const SETS = ["--set", "flux-system:app-3=registry.example/app-3:2.0.0"];
const states: Record<string, number> = {};

beforeAll(async () => {
  server = await startGitHttpServer();
  tmpRoot = tempDir("shipmate-faults-");
  const files: Record<string, string> = {};
  for (let i = 0; i < FILES; i++) files[`apps/team-${i % 10}/app-${i}.yaml`] = deployment(i, "1.0.0");
  server.createRepo("template", files);
  templateBare = join(server.root, "template.git");
  template = join(tmpRoot, "template-work");
  git(tmpRoot, ["clone", "--quiet", templateBare, template]);
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
  console.log(`fault suite: ${SEEDS} kills of update --push; states at the kill: ${JSON.stringify(states)}`);
});

/** A fresh remote and checkout (copies of the template) for one seed. */
function fixture(name: string): { url: string; work: string; bare: string; seedHead: string } {
  const bare = join(server.root, `${name}.git`);
  cpSync(templateBare, bare, { recursive: true });
  const work = join(tmpRoot, name);
  cpSync(template, work, { recursive: true });
  const url = `${server.url}/${name}.git`;
  git(work, ["remote", "set-url", "origin", url]);
  return { url, work, bare, seedHead: git(bare, ["rev-parse", "main"]).trim() };
}

function shipmateDirs(tmp: string): string[] {
  return readdirSync(tmp).filter((n) => n.startsWith("shipmate-"));
}

/** What the checkout looks like right after the kill. */
function stateAfterKill(work: string, seedHead: string, remoteHead: string): string {
  const head = git(work, ["rev-parse", "HEAD"]).trim();
  const marker = join(work, ".git", "shipmate-run.json");
  const journal = existsSync(marker)
    ? (JSON.parse(readFileSync(marker, "utf8") || "{}") as { to?: string })
    : {};
  const locked = existsSync(join(work, ".git", "index.lock"));
  const clean = !locked && git(work, ["status", "--porcelain", "--untracked-files=all"]).trim() === "";
  if (journal.to) {
    // Mid-advance: the ref is at one end or the other, and the next run finishes it.
    expect([journal.to, seedHead]).toContain(head);
    return head === journal.to ? "advancing (ref moved)" : "advancing (ref not moved)";
  }
  expect(clean, "a checkout with no advance recorded is clean").toBe(true);
  if (head === seedHead) return remoteHead === seedHead ? "untouched" : "pushed, checkout not yet moved";
  expect(head).toBe(remoteHead);
  return "done";
}

describe("kill -9 during update --push, then run again", () => {
  let calibrated = 0;

  it("an uninterrupted run (the time the kills are spread over)", async () => {
    const f = fixture("calibrate");
    const tmp = join(tmpRoot, "tmp-calibrate");
    mkdirSync(tmp);
    const env = { TMPDIR: tmp, SHIPMATE_GIT_TOKEN: server.password, SHIPMATE_GIT_USERNAME: server.user };
    const run = start(["update", "--repo", f.work, "--push", ...SETS], env);
    const began = await begun(() => existsSync(join(f.work, ".git", "shipmate-run.json")), run);
    const r = await run.done;
    calibrated = performance.now() - began;
    expect(r.out).toMatch(/pushed [0-9a-f]{40} to main/);
    expect(r.code).toBe(0);
    expect(shipmateDirs(tmp)).toEqual([]);
  }, 60_000);

  for (let seed = 1; seed <= SEEDS; seed++) {
    // Every third seed clones a URL (temporary folders); the others use a local checkout.
    const urlMode = seed % 3 === 0;
    // Even seeds kill the whole process group (git children die too), odd ones shipmate alone.
    const group = seed % 2 === 0;
    it(`seed ${seed}: ${urlMode ? "URL clone" : "local checkout"}, SIGKILL to ${group ? "the process group" : "shipmate alone"}`, async () => {
      const random = rng(seed);
      const f = fixture(`kill-${seed}`);
      const tmp = join(tmpRoot, `tmp-${seed}`);
      mkdirSync(tmp);
      const env = { TMPDIR: tmp, SHIPMATE_GIT_TOKEN: server.password, SHIPMATE_GIT_USERNAME: server.user };
      const args = ["update", "--repo", urlMode ? f.url : f.work, "--push", ...SETS];

      const run = start(args, env);
      // The kills are spread over the run's work, from the moment it claims the checkout (or makes its clone).
      await begun(
        () =>
          urlMode ? shipmateDirs(tmp).length > 0 : existsSync(join(f.work, ".git", "shipmate-run.json")),
        run,
      );
      const delay = Math.round(random() * calibrated * 1.1);
      const timer = setTimeout(() => {
        try {
          if (group && run.child.pid) process.kill(-run.child.pid, "SIGKILL");
          else run.child.kill("SIGKILL");
        } catch {
          // Already gone: the run finished before the kill.
        }
      }, delay);
      const killed = await run.done;
      clearTimeout(timer);
      // A git child shipmate left behind (kill of shipmate alone) finishes within moments, as git does.
      await new Promise((r) => setTimeout(r, 400));

      const remoteAfterKill = git(f.bare, ["rev-parse", "main"]).trim();
      if (!urlMode) {
        const state = stateAfterKill(f.work, f.seedHead, remoteAfterKill);
        states[state] = (states[state] ?? 0) + 1;
      } else
        states[killed.signal ? "URL clone killed" : "URL clone finished"] =
          1 + (states[killed.signal ? "URL clone killed" : "URL clone finished"] ?? 0);

      const again = await start(args, env).done;
      expect(again.out).not.toMatch(/uncommitted changes|another shipmate run|index\.lock|cannot lock/);
      expect(again.code, again.out).toBe(0);

      // The remote holds the update exactly once: one commit on top of the seed.
      const remote = git(f.bare, ["rev-parse", "main"]).trim();
      expect(git(f.bare, ["rev-list", "--count", `${f.seedHead}..main`]).trim()).toBe("1");
      expect(git(f.bare, ["show", "main:apps/team-3/app-3.yaml"])).toBe(deployment(3, "2.0.0"));
      expect(git(f.bare, ["diff", "--name-only", f.seedHead, "main"]).trim().split("\n")).toHaveLength(
        FILES / 20,
      );
      if (!urlMode) {
        // The checkout is at the remote's head, clean, and holds no marker or lock.
        expect(git(f.work, ["rev-parse", "HEAD"]).trim()).toBe(remote);
        expect(git(f.work, ["status", "--porcelain", "--untracked-files=all"])).toBe("");
        expect(existsSync(join(f.work, ".git", "shipmate-run.json"))).toBe(false);
        expect(existsSync(join(f.work, ".git", "index.lock"))).toBe(false);
      }
      // Folders of the killed run were swept by the rerun, the rerun's own removed on its exit.
      expect(shipmateDirs(tmp)).toEqual([]);
    }, 60_000);
  }
});
