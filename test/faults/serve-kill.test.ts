/**
 * Fault suite: `shipmate serve` killed with SIGKILL in the middle of the run
 * a registry webhook started (alone, or with its git children), at seeded
 * random instants, then started again and the delivery sent again (as a
 * registry re-delivers one it saw fail, or the next push does). The second
 * process never blocks on what the first left (run marker, git locks,
 * uncommitted files, temporary folders), finishes or discards the half-done
 * run, and the remote gets the update exactly once. A real registry and a
 * git remote (git http-backend) on 127.0.0.1.
 *
 * FAULT_SEEDS sets the number of kills (6 by default, as in CI).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GitHttpServer, git, startGitHttpServer, tempDir } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { freePort } from "../webhooks/helpers.ts";
import { rng } from "./helpers.ts";

const CLI = new URL("../../src/cli/index.ts", import.meta.url).pathname;
const SEEDS = Number(process.env.FAULT_SEEDS ?? 6);
const APPS = 40;

let reg: TestRegistry;
let server: GitHttpServer;
let root: string;
const states: Record<string, number> = {};

const policy = (host: string) => `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: web, namespace: flux-system}
spec: {image: ${host}/team/web, interval: 5m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: web, namespace: flux-system}
spec:
  imageRepositoryRef: {name: web}
  policy: {semver: {range: ">=1.0.0"}}
`;
const deploy = (host: string, i: number, tag: string) =>
  `# app ${i}\nimage: ${host}/team/web:${tag} # {"$imagepolicy": "flux-system:web"}\n`;

interface Serve {
  child: ChildProcess;
  url: string;
  log: () => string;
  done: Promise<{ code: number | null; signal: string | null }>;
  /** Resolves when the log holds `text` (counted from `from` characters), or the process ends. */
  seen(text: string, from?: number): Promise<boolean>;
}

async function startServe(work: string, env: NodeJS.ProcessEnv): Promise<Serve> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      CLI,
      "serve",
      "--repo",
      work,
      "--policies",
      join(work, "policies"),
      "--listen",
      `127.0.0.1:${port}`,
      "--allow-unauthenticated",
      "--no-cache",
      "--insecure-registry",
      reg.host,
    ],
    {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, so a kill can take its git children down with it.
      detached: true,
    },
  );
  let out = "";
  const waiters = new Set<() => void>();
  child.stderr?.on("data", (d) => {
    out += d;
    for (const w of waiters) w();
  });
  child.stdout?.on("data", (d) => {
    out += d;
  });
  let over = false;
  const done = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("close", (code, signal) => {
      over = true;
      for (const w of waiters) w();
      resolve({ code, signal });
    }),
  );
  const seen = (text: string, from = 0) =>
    new Promise<boolean>((resolve) => {
      const check = () => {
        if (out.indexOf(text, from) !== -1) {
          waiters.delete(check);
          resolve(true);
        } else if (over) {
          waiters.delete(check);
          resolve(false);
        }
      };
      waiters.add(check);
      check();
    });
  const s: Serve = { child, url: `http://127.0.0.1:${port}/hooks/registry`, log: () => out, done, seen };
  expect(await seen("listening for registry webhooks"), out).toBe(true);
  return s;
}

/** Resolves once serve's /healthz says no run is going or waiting. */
async function idle(s: Serve): Promise<void> {
  const health = s.url.replace(/\/hooks\/registry$/, "/healthz");
  for (let i = 0; i < 300; i++) {
    const body = (await (await fetch(health)).json()) as { busy: boolean };
    if (!body.busy) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`serve still busy after 30 s:\n${s.log()}`);
}

const delivery = () =>
  JSON.stringify({
    events: [
      {
        action: "push",
        target: {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          repository: "team/web",
          tag: "1.1.0",
        },
        request: { host: reg.host },
      },
    ],
  });

async function deliver(s: Serve): Promise<number> {
  const res = await fetch(s.url, {
    method: "POST",
    body: delivery(),
    headers: { "content-type": "application/vnd.docker.distribution.events.v1+json" },
  });
  await res.text();
  return res.status;
}

function fixture(name: string) {
  const files: Record<string, string> = { "policies/web.yaml": policy(reg.host) };
  for (let i = 0; i < APPS; i++) files[`apps/web-${i}.yaml`] = deploy(reg.host, i, "1.0.0");
  server.createRepo(name, files);
  const bare = join(server.root, `${name}.git`);
  const work = join(root, name);
  git(root, ["clone", "--quiet", bare, work]);
  git(work, ["remote", "set-url", "origin", `${server.url}/${name}.git`]);
  const tmp = join(root, `${name}-tmp`);
  mkdirSync(tmp);
  const state = join(root, `${name}-state`);
  return {
    bare,
    work,
    seed: git(bare, ["rev-parse", "main"]).trim(),
    env: {
      TMPDIR: tmp,
      // Where serve journals accepted deliveries (src/webhooks/journal.ts).
      XDG_STATE_HOME: state,
      SHIPMATE_GIT_TOKEN: server.password,
      SHIPMATE_GIT_USERNAME: server.user,
    },
  };
}

beforeAll(async () => {
  reg = await startRegistry({ auth: "none" });
  await seedTags(reg, "team/web", ["1.0.0", "1.1.0"]);
  server = await startGitHttpServer();
  root = tempDir("shipmate-serve-faults-");
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
  console.log(
    `serve kill faults: ${SEEDS} kills of serve mid-run; state at the kill: ${JSON.stringify(states)}`,
  );
});

describe("kill -9 of serve during a webhook's run, then serve again", () => {
  let calibrated = 0;

  it("an uninterrupted run (the time the kills are spread over)", async () => {
    const f = fixture("calibrate");
    const s = await startServe(f.work, f.env);
    try {
      const t0 = performance.now();
      expect(await deliver(s)).toBe(202);
      expect(await s.seen("refreshed: changes delivered"), s.log()).toBe(true);
      calibrated = performance.now() - t0;
      expect(git(f.bare, ["rev-list", "--count", `${f.seed}..main`]).trim()).toBe("1");
    } finally {
      s.child.kill("SIGTERM");
      await s.done;
    }
  }, 60_000);

  it("killed right after its 202, serve started again replays the delivery from its journal: the update lands once, with no new delivery", async () => {
    const f = fixture("journal");
    const first = await startServe(f.work, f.env);
    expect(await deliver(first)).toBe(202);
    try {
      if (first.child.pid) process.kill(-first.child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    await first.done;
    await new Promise((r) => setTimeout(r, 400));
    const second = await startServe(f.work, f.env);
    try {
      // Either the first run had finished (nothing to replay) or the journal brings it back.
      if (git(f.bare, ["rev-list", "--count", `${f.seed}..main`]).trim() === "0") {
        expect(second.log()).toContain("replaying deliveries accepted before a restart");
        expect(await second.seen("refreshed:"), second.log()).toBe(true);
      }
      expect(git(f.bare, ["rev-list", "--count", `${f.seed}..main`]).trim()).toBe("1");
      expect(git(f.bare, ["show", "main:apps/web-0.yaml"])).toBe(deploy(reg.host, 0, "1.1.0"));
      await new Promise((r) => setTimeout(r, 300));
      expect(readdirSync(join(f.env.XDG_STATE_HOME, "shipmate", "serve"))).toEqual([]);
    } finally {
      second.child.kill("SIGTERM");
      await second.done;
    }
  }, 90_000);

  for (let seed = 1; seed <= SEEDS; seed++) {
    const group = seed % 2 === 0;
    it(`seed ${seed}: SIGKILL to ${group ? "the process group (git too)" : "serve alone"}, serve again, deliver again`, async () => {
      const random = rng(seed);
      const f = fixture(`kill-${seed}`);
      const first = await startServe(f.work, f.env);
      const delay = Math.round(random() * calibrated * 1.1);
      expect(await deliver(first)).toBe(202);
      await new Promise((r) => setTimeout(r, delay));
      try {
        if (group && first.child.pid) process.kill(-first.child.pid, "SIGKILL");
        else first.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await first.done;
      // A git child left behind (kill of serve alone) finishes within moments, as git does.
      await new Promise((r) => setTimeout(r, 400));
      const pushed = git(f.bare, ["rev-list", "--count", `${f.seed}..main`]).trim();
      const marker = existsSync(join(f.work, ".git", "shipmate-run.json"));
      const state = pushed === "1" ? "pushed" : marker ? "run under way" : "nothing begun or nothing left";
      states[state] = (states[state] ?? 0) + 1;

      const second = await startServe(f.work, f.env);
      try {
        const from = second.log().length;
        expect(await deliver(second)).toBe(202);
        expect(await second.seen("refreshed:", from), second.log()).toBe(true);
        // A delivery replayed from the journal may have run first: wait until nothing runs.
        await idle(second);
        expect(second.log()).not.toMatch(
          /uncommitted changes|another shipmate run|index\.lock|cannot lock|refresh failed/,
        );
        // The remote holds the update once: one commit on the seed, every file at 1.1.0.
        expect(git(f.bare, ["rev-list", "--count", `${f.seed}..main`]).trim()).toBe("1");
        for (let i = 0; i < APPS; i += 13)
          expect(git(f.bare, ["show", `main:apps/web-${i}.yaml`])).toBe(deploy(reg.host, i, "1.1.0"));
        expect(git(f.work, ["rev-parse", "HEAD"]).trim()).toBe(git(f.bare, ["rev-parse", "main"]).trim());
        expect(git(f.work, ["status", "--porcelain", "--untracked-files=all"])).toBe("");
        expect(existsSync(join(f.work, ".git", "shipmate-run.json"))).toBe(false);
      } finally {
        second.child.kill("SIGTERM");
        await second.done;
      }
      expect(readdirSync(f.env.TMPDIR).filter((n) => n.startsWith("shipmate-"))).toEqual([]);
    }, 90_000);
  }
});
