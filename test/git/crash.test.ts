/**
 * What a run leaves when it dies, and what the next run does with it, on
 * real git repositories (file:// remotes): the states a `kill -9` can leave
 * are built exactly, so each rule is pinned without timing luck (the random
 * kills are in test/faults/).
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sweepScratch } from "../../src/git/scratch.ts";
import { runCli } from "../helpers/cli.ts";
import { git, seedCheckout, show, tempDir } from "../infra/git.ts";

const deployment = (name: string, image: string, policy: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  template:
    spec:
      containers:
        - name: ${name}
          image: ${image} # {"$imagepolicy": "${policy}"}
`;

/** A pid that no process holds any more (a child that has exited). */
function deadPid(): number {
  const out = execFileSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(out);
}

describe("--commit commits shipmate's edits and nothing else", () => {
  it("commit: a file shipmate changes that holds the user's own uncommitted edit is refused, naming it", async () => {
    const { work } = seedCheckout({
      "a.yaml": deployment("a", "nginx:1.0", "ns:a"),
      "b.yaml": deployment("b", "nginx:1.0", "ns:b"),
    });
    const head = git(work, ["rev-parse", "HEAD"]).trim();
    const mine = deployment("a", "nginx:1.0", "ns:a").replace(
      "name: a\n",
      "name: a\n  labels: {team: mine}\n",
    );
    writeFileSync(join(work, "a.yaml"), mine);
    const r = await runCli(["update", "--repo", work, "--commit", "--set", "ns:a=nginx:2.0"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      "shipmate update: a.yaml has uncommitted changes that are not shipmate's; commit or stash them before --commit",
    );
    // Nothing committed, the user's edit untouched.
    expect(git(work, ["rev-parse", "HEAD"]).trim()).toBe(head);
    expect(readFileSync(join(work, "a.yaml"), "utf8")).toBe(mine);
  });

  it("commit: a staged edit of the file is refused as well (it would ride along in the index)", async () => {
    const { work } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    writeFileSync(join(work, "a.yaml"), `${deployment("a", "nginx:1.0", "ns:a")}# note\n`);
    git(work, ["add", "a.yaml"]);
    const r = await runCli(["update", "--repo", work, "--commit", "--set", "ns:a=nginx:2.0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a\.yaml has uncommitted changes that are not shipmate's/);
  });

  it("commit: a file git does not track is not committed (it is someone's uncommitted work)", async () => {
    const { work } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const head = git(work, ["rev-parse", "HEAD"]).trim();
    writeFileSync(join(work, "new.yaml"), deployment("n", "nginx:1.0", "ns:a"));
    const r = await runCli(["update", "--repo", work, "--commit", "--set", "ns:a=nginx:2.0"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      "shipmate update: new.yaml is not tracked by git; shipmate commits its edits of tracked files only (add and commit the file first)",
    );
    expect(git(work, ["rev-parse", "HEAD"]).trim()).toBe(head);
    expect(git(work, ["status", "--porcelain"])).toBe("?? new.yaml\n");
  });

  it("commit: the user's edits to files shipmate does not change stay uncommitted where they were", async () => {
    const { work } = seedCheckout({
      "a.yaml": deployment("a", "nginx:1.0", "ns:a"),
      "b.yaml": deployment("b", "nginx:1.0", "ns:b"),
    });
    writeFileSync(join(work, "b.yaml"), `${deployment("b", "nginx:1.0", "ns:b")}# wip\n`);
    const r = await runCli(["update", "--repo", work, "--commit", "--set", "ns:a=nginx:2.0"]);
    expect(r.code, r.stderr).toBe(0);
    expect(git(work, ["show", "--name-only", "--format=", "HEAD"]).trim()).toBe("a.yaml");
    expect(show(work, "HEAD", "a.yaml")).toBe(deployment("a", "nginx:2.0", "ns:a"));
    expect(git(work, ["status", "--porcelain"])).toBe(" M b.yaml\n");
  });
});

describe("--push-branch never touches the user's branch or files", () => {
  it("push-branch: from a checkout with uncommitted edits, the bot branch gets the update and not the edits", async () => {
    const { work, bare } = seedCheckout({
      "a.yaml": deployment("a", "nginx:1.0", "ns:a"),
      "b.yaml": deployment("b", "nginx:1.0", "ns:b"),
    });
    const head = git(work, ["rev-parse", "HEAD"]).trim();
    const mine = `${deployment("a", "nginx:1.0", "ns:a")}# wip\n`;
    writeFileSync(join(work, "a.yaml"), mine);
    const r = await runCli(["update", "--repo", work, "--push-branch", "bot", "--set", "ns:a=nginx:2.0"]);
    expect(r.code, r.stderr).toBe(0);
    expect(show(bare, "bot", "a.yaml")).toBe(deployment("a", "nginx:2.0", "ns:a"));
    expect(git(bare, ["rev-parse", "bot^"]).trim()).toBe(head);
    // The user's branch, files and worktree list are as they were.
    expect(git(work, ["rev-parse", "--abbrev-ref", "HEAD"]).trim()).toBe("main");
    expect(git(work, ["rev-parse", "HEAD"]).trim()).toBe(head);
    expect(readFileSync(join(work, "a.yaml"), "utf8")).toBe(mine);
    expect(git(work, ["worktree", "list", "--porcelain"]).match(/^worktree /gm)).toHaveLength(1);
  });
});

describe("a run killed half way never blocks the next", () => {
  it("rerun: an advance whose ref moved is finished (files written, stale index.lock removed), then the push goes on", async () => {
    const { work, bare } = seedCheckout({
      "a.yaml": deployment("a", "nginx:1.0", "ns:a"),
      "b.yaml": deployment("b", "nginx:1.0", "ns:b"),
    });
    const from = git(work, ["rev-parse", "HEAD"]).trim();
    // The state a kill leaves between moving the branch and writing the files: the commit exists,
    // main points at it, the working files are the old ones and git's index lock is still there.
    const other = tempDir();
    git(other, ["clone", "--quiet", bare, "c"]);
    writeFileSync(join(other, "c", "a.yaml"), deployment("a", "nginx:1.5", "ns:a"));
    git(join(other, "c"), ["commit", "--quiet", "-am", "killed run's update"]);
    git(join(other, "c"), ["push", "--quiet", "origin", "main"]);
    const to = git(join(other, "c"), ["rev-parse", "HEAD"]).trim();
    git(work, ["fetch", "--quiet", "origin"]);
    git(work, ["update-ref", "refs/heads/main", to, from]);
    writeFileSync(join(work, ".git", "index.lock"), "");
    writeFileSync(
      join(work, ".git", "shipmate-run.json"),
      JSON.stringify({
        pid: deadPid(),
        started: Date.now() - 5000,
        branch: "main",
        ref: "refs/heads/main",
        from,
        to,
      }),
    );
    const r = await runCli(["update", "--repo", work, "--push", "--set", "ns:b=nginx:2.0"]);
    expect(r.stderr).not.toMatch(/error|uncommitted|lock/i);
    expect(r.code).toBe(0);
    expect(git(work, ["status", "--porcelain", "--untracked-files=all"])).toBe("");
    expect(readFileSync(join(work, "a.yaml"), "utf8")).toBe(deployment("a", "nginx:1.5", "ns:a"));
    expect(show(bare, "main", "b.yaml")).toBe(deployment("b", "nginx:2.0", "ns:b"));
    expect(git(work, ["rev-parse", "HEAD"]).trim()).toBe(git(bare, ["rev-parse", "main"]).trim());
    expect(existsSync(join(work, ".git", "shipmate-run.json"))).toBe(false);
  });

  it("rerun: a marker whose ref never moved is discarded; nothing of it is written", async () => {
    const { work, bare } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const from = git(work, ["rev-parse", "HEAD"]).trim();
    const orphan = git(work, ["commit-tree", `${from}^{tree}`, "-p", from, "-m", "never landed"]).trim();
    writeFileSync(
      join(work, ".git", "shipmate-run.json"),
      JSON.stringify({
        pid: deadPid(),
        started: Date.now() - 5000,
        ref: "refs/heads/main",
        from,
        to: orphan,
      }),
    );
    const r = await runCli(["update", "--repo", work, "--push", "--set", "ns:a=nginx:2.0"]);
    expect(r.code, r.stderr).toBe(0);
    expect(git(bare, ["rev-list", "--count", "main"]).trim()).toBe("2");
    expect(git(bare, ["log", "-1", "--format=%s", "main"])).not.toMatch(/never landed/);
  });

  it("rerun: a run that is still alive is not trampled; one line, exit 2", async () => {
    const { work } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    writeFileSync(
      join(work, ".git", "shipmate-run.json"),
      JSON.stringify({ pid: process.ppid, started: Date.now() }),
    );
    const r = await runCli(["update", "--repo", work, "--commit", "--set", "ns:a=nginx:2.0"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^shipmate update: another shipmate run \(pid \d+\) is updating .*; wait for it to finish$/,
    );
  });

  it("rerun: a half-written marker (its writer died writing it) is discarded", async () => {
    const { work } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    writeFileSync(join(work, ".git", "shipmate-run.json"), '{"pid":');
    const r = await runCli(["update", "--repo", work, "--commit", "--set", "ns:a=nginx:2.0"]);
    expect(r.code, r.stderr).toBe(0);
    expect(show(work, "HEAD", "a.yaml")).toBe(deployment("a", "nginx:2.0", "ns:a"));
  });
});

describe("temporary folders of dead runs are swept", () => {
  const SCRATCH = new URL("../../src/git/scratch.ts", import.meta.url).pathname;
  /** A child that makes a scratch folder, prints it, and waits; `handler`: it handles SIGTERM itself. */
  async function signalled(
    handler: boolean,
  ): Promise<{ dir: string; signal: string | null; code: number | null }> {
    const script = `import { scratchDir } from ${JSON.stringify(SCRATCH)};
${handler ? 'process.once("SIGTERM", () => setTimeout(() => process.exit(0), 100));' : ""}
console.log(scratchDir("clone")); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const dir = await new Promise<string>((resolve) =>
      child.stdout.once("data", (d) => resolve(String(d).trim())),
    );
    expect(existsSync(dir)).toBe(true);
    child.kill("SIGTERM");
    const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
      child.on("close", (c, s) => r([c, s])),
    );
    return { dir, signal, code };
  }

  it("signal: SIGTERM removes the run's folders and still ends the process as SIGTERM would", async () => {
    const r = await signalled(false);
    expect(r.signal).toBe("SIGTERM");
    expect(existsSync(r.dir)).toBe(false);
  });

  it("signal: a program that handles SIGTERM itself shuts down in its own time; its folders go on exit", async () => {
    const r = await signalled(true);
    expect(r.code).toBe(0);
    expect(existsSync(r.dir)).toBe(false);
  });

  it("sweep: folders naming a dead pid go, a live one's and other programs' stay, unnamed ones after an hour", () => {
    const root = tempDir("shipmate-sweep-root-");
    const dead = deadPid();
    const names = {
      deadClone: `shipmate-clone-${dead}-AbC123`,
      deadMsg: `shipmate-msg-${dead}-xYz789`,
      deadAskpass: `shipmate-askpass-${dead}-q1w2e3`,
      liveClone: `shipmate-clone-${process.pid}-AbC123`,
      oldUnnamed: "shipmate-clone-Qw3rty",
      newUnnamed: "shipmate-msg-Zx9cvb",
      notOurs: "shipmate-test-AbC123",
      other: "something-else",
    };
    for (const n of Object.values(names)) mkdirSync(join(root, n));
    const hourAgo = (Date.now() - 2 * 3600_000) / 1000;
    utimesSync(join(root, names.oldUnnamed), hourAgo, hourAgo);
    const removed = sweepScratch(root).map((p) => p.slice(root.length + 1));
    expect(removed.sort()).toEqual(
      [names.deadAskpass, names.deadClone, names.deadMsg, names.oldUnnamed].sort(),
    );
    for (const n of [names.liveClone, names.newUnnamed, names.notOurs, names.other])
      expect(existsSync(join(root, n))).toBe(true);
  });
});
