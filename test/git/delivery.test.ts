import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import {
  type GitHttpServer,
  git,
  gitAsync,
  seedCheckout,
  show,
  startGitHttpServer,
  tempDir,
} from "../infra/git.ts";

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

let server: GitHttpServer;
const auth = () => ({ SHIPMATE_GIT_TOKEN: server.password, SHIPMATE_GIT_USERNAME: server.user });

beforeAll(async () => {
  server = await startGitHttpServer();
});
afterAll(async () => {
  await server?.close();
});

function remoteHead(repoName: string, branch = "main"): string {
  return git(join(server.root, `${repoName}.git`), ["rev-parse", `refs/heads/${branch}`]).trim();
}
function remoteFile(repoName: string, path: string, rev = "main"): string {
  return show(join(server.root, `${repoName}.git`), rev, path);
}

describe("--push over smart HTTP with basic auth", () => {
  it("push: clones, commits and pushes with a token from the environment, never printing it", async () => {
    const url = server.createRepo("push-basic", {
      "apps/web.yaml": deployment("web", "nginx:1.0", "flux-system:web"),
    });
    const r = await runCli(["update", "--repo", url, "--push", "--set", "flux-system:web=nginx:1.27"], {
      env: auth(),
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pushed [0-9a-f]{40} to main$/m);
    expect(remoteFile("push-basic", "apps/web.yaml")).toBe(
      deployment("web", "nginx:1.27", "flux-system:web"),
    );
    expect(r.stdout + r.stderr).not.toContain(server.password);
    const msg = git(join(server.root, "push-basic.git"), ["log", "-1", "--format=%B", "main"]);
    expect(msg).toContain("Update image nginx:1.27");
    expect(msg).toContain("apps/web.yaml: flux-system:web nginx:1.0 -> nginx:1.27");
  });

  it("push: credentials in the URL are used but never printed or persisted", async () => {
    const url = server.createRepo("push-userinfo", { "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const withCreds = url.replace("http://", `http://${server.user}:${server.password}@`);
    const r = await runCli(["update", "--repo", withCreds, "--push", "--set", "ns:a=nginx:2.0", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(server.password);
    expect(JSON.parse(r.stdout).commit).toMatch(/^[0-9a-f]{40}$/);
  });

  it("push: a wrong token fails with one redacted line and exit 1", async () => {
    const url = server.createRepo("push-denied", { "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const r = await runCli(["update", "--repo", url, "--push", "--set", "ns:a=nginx:2.0"], {
      env: { SHIPMATE_GIT_TOKEN: "wrong-token-value", SHIPMATE_GIT_USERNAME: "bot" },
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^shipmate update: clone /);
    expect(r.stderr).not.toContain("wrong-token-value");
  });

  it("push: a local checkout pushes with the token and its .git/config never holds it", async () => {
    const url = server.createRepo("push-local", { "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const work = join(tempDir(), "work");
    const header = `Authorization: Basic ${Buffer.from(`${server.user}:${server.password}`).toString("base64")}`;
    await gitAsync(tempDir(), ["-c", `http.extraHeader=${header}`, "clone", "--quiet", url, work]);
    const r = await runCli(["update", "--repo", work, "--push", "--set", "ns:a=nginx:2.0"], { env: auth() });
    expect(r.code).toBe(0);
    expect(remoteFile("push-local", "a.yaml")).toContain("image: nginx:2.0 #");
    expect(readFileSync(join(work, ".git/config"), "utf8")).not.toContain(server.password);
    // The local branch now is the pushed commit, a fast-forward for the user.
    expect(git(work, ["rev-parse", "HEAD"]).trim()).toBe(remoteHead("push-local"));
  });

  it("nothing to change: no commit, no push, exit 0, and a second run is a no-op", async () => {
    const url = server.createRepo("noop", { "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const first = await runCli(["update", "--repo", url, "--push", "--set", "ns:a=nginx:2.0"], {
      env: auth(),
    });
    expect(first.code).toBe(0);
    const head = remoteHead("noop");
    const second = await runCli(["update", "--repo", url, "--push", "--set", "ns:a=nginx:2.0", "--json"], {
      env: auth(),
    });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ files: {}, commit: null, pushed: false });
    expect(remoteHead("noop")).toBe(head);
  });
});

describe("races: several bots pushing to one branch", () => {
  it("race: 5 concurrent pushers all land their changes, none lost, each on top of the others", async () => {
    const n = 5;
    const files: Record<string, string> = {};
    for (let i = 0; i < n; i++) files[`apps/app${i}.yaml`] = deployment(`app${i}`, `nginx:1.0`, `ns:app${i}`);
    const url = server.createRepo("race", files);
    const before = remoteHead("race");
    const runs = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        runCli(
          ["update", "--repo", url, "--push", "--set", `ns:app${i}=nginx:2.${i}`, "--max-attempts", "20"],
          {
            env: auth(),
          },
        ),
      ),
    );
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    for (let i = 0; i < n; i++)
      expect(remoteFile("race", `apps/app${i}.yaml`)).toContain(`image: nginx:2.${i} #`);
    const log = git(join(server.root, "race.git"), ["rev-list", `${before}..main`])
      .trim()
      .split("\n");
    expect(log).toHaveLength(n);
    // Linear history: every bot re-applied on the head it fetched, nobody merged or force-pushed.
    const merges = git(join(server.root, "race.git"), ["rev-list", "--merges", `${before}..main`]).trim();
    expect(merges).toBe("");
    expect(runs.some((r) => /retrying on the new head/.test(r.stderr))).toBe(true);
  });

  it("race: 3 bots editing different markers of the same file all land (re-applied, not rebased)", async () => {
    const file = ["a", "b", "c"].map((x) => deployment(x, "nginx:1.0", `ns:${x}`)).join("---\n");
    const url = server.createRepo("race-one-file", { "apps/all.yaml": file });
    const runs = await Promise.all(
      ["a", "b", "c"].map((x, i) =>
        runCli(["update", "--repo", url, "--push", "--set", `ns:${x}=nginx:4.${i}`, "--max-attempts", "20"], {
          env: auth(),
        }),
      ),
    );
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(remoteFile("race-one-file", "apps/all.yaml")).toBe(
      ["a", "b", "c"].map((x, i) => deployment(x, `nginx:4.${i}`, `ns:${x}`)).join("---\n"),
    );
  });

  it("race: two bots setting the same marker both succeed and the last writer's value stands", async () => {
    const url = server.createRepo("race-same", { "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const runs = await Promise.all(
      ["nginx:3.0", "nginx:3.0"].map((img) =>
        runCli(["update", "--repo", url, "--push", "--set", `ns:a=${img}`], { env: auth() }),
      ),
    );
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(remoteFile("race-same", "a.yaml")).toContain("image: nginx:3.0 #");
    // The second bot found the value already there after re-applying: exactly one update commit.
    const count = git(join(server.root, "race-same.git"), ["rev-list", "--count", "main"]).trim();
    expect(count).toBe("2");
  });
});

describe("--push-branch", () => {
  it("push-branch: creates the branch from the base with exactly the change set, then is a no-op", async () => {
    const url = server.createRepo("pb", { "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const first = await runCli(
      ["update", "--repo", url, "--push-branch", "shipmate/update", "--set", "ns:a=nginx:2.0", "--json"],
      {
        env: auth(),
      },
    );
    expect(first.code, first.stderr).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.pushed).toBe(true);
    expect(remoteHead("pb", "shipmate/update")).toBe(out.commit);
    expect(remoteFile("pb", "a.yaml", "shipmate/update")).toContain("nginx:2.0");
    expect(remoteFile("pb", "a.yaml", "main")).toContain("nginx:1.0");
    const second = await runCli(
      ["update", "--repo", url, "--push-branch", "shipmate/update", "--set", "ns:a=nginx:2.0", "--json"],
      {
        env: auth(),
      },
    );
    expect(JSON.parse(second.stdout)).toMatchObject({ pushed: false, commit: out.commit });
    expect(remoteHead("pb", "shipmate/update")).toBe(out.commit);
  });

  it("push-branch: rebuilt from the new base when the base moved, force-pushed with a lease", async () => {
    const url = server.createRepo("pb-move", {
      "a.yaml": deployment("a", "nginx:1.0", "ns:a"),
      "b.yaml": deployment("b", "nginx:1.0", "ns:b"),
    });
    await runCli(["update", "--repo", url, "--push-branch", "bump", "--set", "ns:a=nginx:2.0"], {
      env: auth(),
    });
    const firstTip = remoteHead("pb-move", "bump");
    // Someone changes main meanwhile.
    await runCli(["update", "--repo", url, "--push", "--set", "ns:b=nginx:9.9"], { env: auth() });
    const r = await runCli(
      ["update", "--repo", url, "--push-branch", "bump", "--set", "ns:a=nginx:2.1", "--json"],
      { env: auth() },
    );
    expect(r.code, r.stderr).toBe(0);
    const tip = remoteHead("pb-move", "bump");
    expect(tip).not.toBe(firstTip);
    const bare = join(server.root, "pb-move.git");
    expect(git(bare, ["rev-parse", `${tip}^`]).trim()).toBe(remoteHead("pb-move"));
    expect(remoteFile("pb-move", "b.yaml", "bump")).toContain("nginx:9.9");
    expect(remoteFile("pb-move", "a.yaml", "bump")).toContain("nginx:2.1");
    expect(git(bare, ["log", "-1", "--format=%B", tip])).toContain("Shipmate-Branch: bump");
  });

  it("push-branch: refuses to force-push a branch whose tip shipmate did not make", async () => {
    const url = server.createRepo("pb-foreign", { "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const bare = join(server.root, "pb-foreign.git");
    git(bare, ["branch", "feature", "main"]);
    const r = await runCli(["update", "--repo", url, "--push-branch", "feature", "--set", "ns:a=nginx:2.0"], {
      env: auth(),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to force-push/);
    expect(git(bare, ["rev-parse", "feature"]).trim()).toBe(remoteHead("pb-foreign"));
  });
});

describe("file:// remotes and local checkouts", () => {
  it("file: pushes to a file:// remote", async () => {
    const { bare } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const r = await runCli(["update", "--repo", `file://${bare}`, "--push", "--set", "ns:a=nginx:2.0"]);
    expect(r.code, r.stderr).toBe(0);
    expect(show(bare, "main", "a.yaml")).toContain("image: nginx:2.0 #");
  });

  it("commit: commits only the files it changed; other staged work stays staged", async () => {
    const { work } = seedCheckout({
      "a.yaml": deployment("a", "nginx:1.0", "ns:a"),
      "notes.txt": "hello\n",
    });
    writeFileSync(join(work, "notes.txt"), "changed\n");
    git(work, ["add", "notes.txt"]);
    const r = await runCli([
      "update",
      "--repo",
      work,
      "--commit",
      "--set",
      "ns:a=nginx:2.0",
      "--author",
      "Release Bot <bot@example.test>",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(git(work, ["show", "--name-only", "--format=%an <%ae>", "HEAD"]).trim().split("\n")).toEqual([
      "Release Bot <bot@example.test>",
      "",
      "a.yaml",
    ]);
    expect(git(work, ["diff", "--cached", "--name-only"]).trim()).toBe("notes.txt");
  });

  it("commit: the message comes from a Handlebars template with Flux's field names", async () => {
    const { work } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const tpl = join(tempDir(), "msg.hbs");
    writeFileSync(
      tpl,
      "chore: images\n\n{{#each Changed.Changes}}{{Setter}}: {{OldValue}} => {{NewValue}}\n{{/each}}",
    );
    const r = await runCli([
      "update",
      "--repo",
      work,
      "--commit",
      "--set",
      "ns:a=nginx:2.0",
      "--message-template",
      tpl,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(git(work, ["log", "-1", "--format=%B"]).trim()).toBe(
      "chore: images\n\nns:a: nginx:1.0 => nginx:2.0",
    );
  });

  it("sign: --sign signs through git's own configuration (SSH signing key)", async () => {
    const { work } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const keys = tempDir();
    execFileSync("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      "bot@example.test",
      "-f",
      join(keys, "id"),
    ]);
    writeFileSync(join(keys, "allowed"), `bot@example.test ${readFileSync(join(keys, "id.pub"), "utf8")}`);
    git(work, ["config", "gpg.format", "ssh"]);
    git(work, ["config", "user.signingkey", join(keys, "id")]);
    git(work, ["config", "gpg.ssh.allowedSignersFile", join(keys, "allowed")]);
    const r = await runCli([
      "update",
      "--repo",
      work,
      "--commit",
      "--sign",
      "--set",
      "ns:a=nginx:2.0",
      "--author",
      "Bot <bot@example.test>",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(git(work, ["log", "-1", "--format=%G? %GS"]).trim()).toBe("G bot@example.test");
  });

  it("files: without --commit or --push only the files change", async () => {
    const { work } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const head = git(work, ["rev-parse", "HEAD"]);
    const r = await runCli(["update", "--repo", work, "--set", "ns:a=nginx:2.0"]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(work, "a.yaml"), "utf8")).toContain("nginx:2.0");
    expect(git(work, ["rev-parse", "HEAD"])).toBe(head);
  });

  it("dry-run: prints a unified diff and writes nothing", async () => {
    const { work } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    const r = await runCli(["update", "--repo", work, "--dry-run", "--set", "ns:a=nginx:2.0"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--- a/a.yaml\n+++ b/a.yaml\n");
    expect(r.stdout).toContain(
      '-          image: nginx:1.0 # {"$imagepolicy": "ns:a"}\n+          image: nginx:2.0 #',
    );
    expect(readFileSync(join(work, "a.yaml"), "utf8")).toContain("nginx:1.0");
    expect(git(work, ["status", "--porcelain"])).toBe("");
  });

  it("push: refuses a checkout with uncommitted changes (exit 2)", async () => {
    const { work } = seedCheckout({ "a.yaml": deployment("a", "nginx:1.0", "ns:a") });
    writeFileSync(join(work, "a.yaml"), `${deployment("a", "nginx:1.0", "ns:a")}# local edit\n`);
    const r = await runCli(["update", "--repo", work, "--push", "--set", "ns:a=nginx:2.0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/uncommitted changes/);
  });
});
