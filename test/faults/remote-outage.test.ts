/**
 * Fault suite: the git remote and the registry down, then back. Each sits
 * behind a TCP proxy on 127.0.0.1 that a test takes down (connections
 * refused, open ones cut) and brings back on the same port. While a remote
 * is down, `shipmate scan`, `shipmate update --push` and the agent's git
 * fetch fail with one line naming what could not be reached, write nothing
 * partial (checkout, remote, working copy as they were; no temporary folder
 * left), and the next run after it is back succeeds, exactly once.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitSource } from "../../src/agent/git-source.ts";
import { type GitHttpServer, git, gitAsync, startGitHttpServer, tempDir } from "../infra/git.ts";
import { type SwitchableProxy, switchableProxy } from "../infra/proxy.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";

const CLI = new URL("../../src/cli/index.ts", import.meta.url).pathname;

let reg: TestRegistry;
let regProxy: SwitchableProxy;
let server: GitHttpServer;
let gitProxy: SwitchableProxy;
let root: string;
const figures: string[] = [];

const policy = (host: string) => `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: web
  namespace: flux-system
spec:
  image: ${host}/team/web
  interval: 5m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: web
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: web
  policy:
    semver:
      range: ">=1.0.0"
`;
const deploy = (host: string, tag: string) =>
  `image: ${host}/team/web:${tag} # {"$imagepolicy": "flux-system:web"}\n`;

beforeAll(async () => {
  reg = await startRegistry({ auth: "none" });
  await seedTags(reg, "team/web", ["1.0.0", "1.1.0"]);
  regProxy = await switchableProxy(Number(reg.host.split(":")[1]));
  server = await startGitHttpServer();
  gitProxy = await switchableProxy(Number(new URL(server.url).port));
  root = tempDir("shipmate-remote-faults-");
}, 120_000);

afterAll(async () => {
  await regProxy?.close();
  await gitProxy?.close();
  await reg?.stop();
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
  console.log(`remote outage faults: ${figures.join("; ")}`);
});

function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    p.stdout?.on("data", (d) => {
      stdout += d;
    });
    p.stderr?.on("data", (d) => {
      stderr += d;
    });
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The error a user sees: exactly one line (warnings about its consequences aside), no stack, no credential. */
function oneLine(stderr: string): string {
  const lines = stderr
    .trim()
    .split("\n")
    .filter((l) => l && !l.startsWith("warning: "));
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at |TypeError|ReferenceError/);
  expect(stderr).not.toContain(server.password);
  return lines[0] as string;
}

/** A fleet repository on the git server, reached through the proxy; the policy names the registry's proxy. */
function fleet(name: string): {
  url: string;
  bare: string;
  work: string;
  seed: string;
  env: NodeJS.ProcessEnv;
} {
  server.createRepo(name, {
    "policies/web.yaml": policy(regProxy.host),
    "apps/web/deploy.yaml": deploy(regProxy.host, "1.0.0"),
  });
  const bare = join(server.root, `${name}.git`);
  const url = `http://${gitProxy.host}/${name}.git`;
  const work = join(root, name);
  git(root, ["clone", "--quiet", bare, work]);
  git(work, ["remote", "set-url", "origin", url]);
  const tmp = join(root, `${name}-tmp`);
  mkdirSync(tmp);
  return {
    url,
    bare,
    work,
    seed: git(bare, ["rev-parse", "main"]).trim(),
    env: { TMPDIR: tmp, SHIPMATE_GIT_TOKEN: server.password, SHIPMATE_GIT_USERNAME: server.user },
  };
}

const leftovers = (env: NodeJS.ProcessEnv) =>
  readdirSync(env.TMPDIR as string).filter((n) => n.startsWith("shipmate-"));

describe("the registry down and back", () => {
  it("scan: one line naming the registry while it is down; the next run succeeds", async () => {
    const f = fleet("scan");
    await regProxy.down();
    let down: Awaited<ReturnType<typeof cli>>;
    const t0 = performance.now();
    try {
      down = await cli(["scan", "--policies", join(f.work, "policies"), "--no-cache", "--json"], f.env);
    } finally {
      await regProxy.up();
    }
    const took = (performance.now() - t0) / 1000;
    // --json reports each policy: the one that could not be scanned carries its one-line error.
    expect(down.code).toBe(1);
    expect(down.stderr).toBe("");
    const report = JSON.parse(down.stdout) as { reason?: string; error?: string }[];
    expect(report).toHaveLength(1);
    expect(report[0]?.reason).toBe("registry-error");
    const line = report[0]?.error ?? "";
    expect(line).toContain(regProxy.host);
    expect(line).not.toContain("\n");
    figures.push(`scan, registry down: exit ${down.code} in ${took.toFixed(1)} s, "${line}"`);

    const back = await cli(["scan", "--policies", join(f.work, "policies"), "--no-cache", "--json"], f.env);
    expect(back.code, back.stderr).toBe(0);
    expect(JSON.parse(back.stdout)).toEqual([
      { policy: "flux-system:web", image: `${regProxy.host}/team/web`, tag: "1.1.0" },
    ]);
  }, 120_000);

  it("update --push: nothing written, committed or pushed while it is down; the next run pushes once", async () => {
    const f = fleet("update-reg");
    const args = ["update", "--repo", f.work, "--policies", join(f.work, "policies"), "--push"];
    await regProxy.down();
    let down: Awaited<ReturnType<typeof cli>>;
    try {
      down = await cli(args, f.env);
    } finally {
      await regProxy.up();
    }
    expect(down.code).not.toBe(0);
    const line = oneLine(down.stderr);
    expect(line).toContain(regProxy.host);
    expect(git(f.work, ["status", "--porcelain", "--untracked-files=all"])).toBe("");
    expect(git(f.work, ["rev-parse", "HEAD"]).trim()).toBe(f.seed);
    expect(git(f.bare, ["rev-parse", "main"]).trim()).toBe(f.seed);
    figures.push(`update, registry down: exit ${down.code}, "${line}"`);

    const back = await cli(args, f.env);
    expect(back.code, back.stderr).toBe(0);
    expect(git(f.bare, ["rev-list", "--count", `${f.seed}..main`]).trim()).toBe("1");
    expect(git(f.bare, ["show", "main:apps/web/deploy.yaml"])).toBe(deploy(regProxy.host, "1.1.0"));
    expect(leftovers(f.env)).toEqual([]);
  }, 120_000);
});

describe("the git remote down and back", () => {
  it("update --push from a checkout: one line naming the remote; the rerun pushes the update exactly once", async () => {
    const f = fleet("update-git");
    const args = ["update", "--repo", f.work, "--policies", join(f.work, "policies"), "--push"];
    await gitProxy.down();
    let down: Awaited<ReturnType<typeof cli>>;
    try {
      down = await cli(args, f.env);
    } finally {
      await gitProxy.up();
    }
    expect(down.code).not.toBe(0);
    const line = oneLine(down.stderr);
    expect(line).toContain(gitProxy.host);
    expect(git(f.bare, ["rev-parse", "main"]).trim()).toBe(f.seed);
    // The checkout holds no half-written file: as it was, or the update committed (a push left to do).
    expect(git(f.work, ["status", "--porcelain", "--untracked-files=all"])).toBe("");
    const head = git(f.work, ["rev-parse", "HEAD"]).trim();
    figures.push(
      `update --push, git remote down: exit ${down.code}, checkout ${head === f.seed ? "as it was" : "holds the commit"}, "${line}"`,
    );

    const back = await cli(args, f.env);
    expect(back.code, back.stderr).toBe(0);
    expect(git(f.bare, ["rev-list", "--count", `${f.seed}..main`]).trim()).toBe("1");
    expect(git(f.bare, ["show", "main:apps/web/deploy.yaml"])).toBe(deploy(regProxy.host, "1.1.0"));
    expect(git(f.work, ["rev-parse", "HEAD"]).trim()).toBe(git(f.bare, ["rev-parse", "main"]).trim());
    expect(git(f.work, ["status", "--porcelain", "--untracked-files=all"])).toBe("");
    // A third run finds nothing to do: the update is not applied twice.
    const third = await cli(args, f.env);
    expect(third.code, third.stderr).toBe(0);
    expect(git(f.bare, ["rev-list", "--count", `${f.seed}..main`]).trim()).toBe("1");
    expect(leftovers(f.env)).toEqual([]);
  }, 120_000);

  it("update --push from a URL: one line, no temporary clone left; the rerun pushes once", async () => {
    const f = fleet("update-url");
    const args = ["update", "--repo", f.url, "--push"];
    await gitProxy.down();
    let down: Awaited<ReturnType<typeof cli>>;
    try {
      down = await cli(args, f.env);
    } finally {
      await gitProxy.up();
    }
    expect(down.code).not.toBe(0);
    expect(oneLine(down.stderr)).toContain(gitProxy.host);
    expect(leftovers(f.env)).toEqual([]);
    const back = await cli(args, f.env);
    expect(back.code, back.stderr).toBe(0);
    expect(git(f.bare, ["rev-list", "--count", `${f.seed}..main`]).trim()).toBe("1");
    expect(leftovers(f.env)).toEqual([]);
  }, 120_000);

  it("the agent's fetch: one line naming the remote, the previous tree still served whole; the next fetch gets the new commit", async () => {
    const f = fleet("agent");
    const u = new URL(f.url);
    u.username = server.user;
    u.password = server.password;
    const source = new GitSource({ url: u.toString(), branch: "main", workdir: join(root, "agent-work") });
    const first = await source.fetch();
    expect(first.revision).toBe(`main@sha1:${f.seed}`);
    // Git moves on while the remote is unreachable.
    const work = join(root, "agent-push");
    await gitAsync(root, ["clone", "--quiet", f.bare, work]);
    await gitAsync(work, ["rm", "--quiet", "apps/web/deploy.yaml"]);
    await gitAsync(work, ["commit", "--quiet", "-m", "remove"]);
    await gitAsync(work, ["push", "--quiet", "origin", "main"]);
    const next = (await gitAsync(work, ["rev-parse", "HEAD"])).trim();
    await gitProxy.down();
    let err: unknown;
    try {
      err = await source.fetch().catch((e: unknown) => e);
    } finally {
      await gitProxy.up();
    }
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).not.toContain("\n");
    expect(message).not.toContain(server.password);
    expect(message).toMatch(new RegExp(`git fetch http://\\S*${gitProxy.host.replace(/\./g, "\\.")}`));
    // The last artifact stands, and its tree is the first commit's, whole.
    expect(source.artifact?.revision).toBe(`main@sha1:${f.seed}`);
    expect(readFileSync(join(source.dir, "apps/web/deploy.yaml"), "utf8")).toBe(
      deploy(regProxy.host, "1.0.0"),
    );
    figures.push(`agent fetch, git remote down: "${message}"`);

    const back = await source.fetch();
    expect(back.revision).toBe(`main@sha1:${next}`);
    expect(existsSync(join(source.dir, "apps/web/deploy.yaml"))).toBe(false);
    expect(existsSync(join(source.dir, "policies/web.yaml"))).toBe(true);
  }, 120_000);
});
