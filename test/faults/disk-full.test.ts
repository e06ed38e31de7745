/**
 * Fault suite: a full disk. A small tmpfs (mounted here; the suite runs as
 * root) holds the checkout, the registry cache and the agent's working copy,
 * and is filled to the last byte before each run. Every write is atomic
 * (temporary file or folder, then rename): the previous files stay intact,
 * nothing temporary is left, the error is one line, and once space is back
 * the next run succeeds. A real registry on 127.0.0.1 for the scan.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitSource } from "../../src/agent/git-source.ts";
import { git, seedBare, tempDir } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";

const CLI = new URL("../../src/cli/index.ts", import.meta.url).pathname;

let mnt: string;
let outside: string;
let mounted = false;
const figures: string[] = [];

beforeAll(() => {
  outside = tempDir("shipmate-diskfull-");
  mnt = join(outside, "mnt");
  mkdirSync(mnt);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], { stdio: "pipe" });
    mounted = true;
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`the disk-full suite mounts a tmpfs and could not: ${stderr || (err as Error).message}`);
  }
});

afterAll(() => {
  if (mounted) execFileSync("umount", ["-l", mnt]);
  rmSync(outside, { recursive: true, force: true });
  console.log(`disk-full faults: ${figures.join("; ")}`);
});

const FILLER = () => join(mnt, "filler");

/** Fills the tmpfs to the last byte. */
function fill(): void {
  const fd = openSync(FILLER(), "a");
  try {
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size, 0x61);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

const free = () => rmSync(FILLER(), { force: true });

function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: outside, ...env },
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

/** Exactly one line that is not a warning, with no stack. */
function oneLine(stderr: string): string {
  const lines = stderr
    .trim()
    .split("\n")
    .filter((l) => l && !l.startsWith("warning: "));
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0] as string;
}

const deploy = (i: number, tag: string) =>
  `# app ${i}\nimage: registry.example/web:${tag} # {"$imagepolicy": "flux-system:web"}\n${"# padding\n".repeat(200)}`;

/** A checkout on the tmpfs whose 20 files reference the policy. */
function checkout(name: string): { work: string; files: Record<string, string> } {
  const files: Record<string, string> = {};
  for (let i = 0; i < 20; i++) files[`apps/web-${i}.yaml`] = deploy(i, "1.0.0");
  const bare = join(outside, `${name}.git`);
  seedBare(bare, files);
  const work = join(mnt, name);
  git(outside, ["clone", "--quiet", bare, work]);
  return { work, files };
}

/** Every file of the checkout is byte-for-byte what it was; nothing else appeared. */
function unchanged(work: string, files: Record<string, string>): void {
  for (const [p, text] of Object.entries(files)) expect(readFileSync(join(work, p), "utf8")).toBe(text);
  expect(git(work, ["status", "--porcelain", "--untracked-files=all"])).toBe("");
}

const SET = ["--set", "flux-system:web=registry.example/web:2.0.0"];

describe("disk full while writing the checkout", () => {
  it("update (files edited in place): every file as it was, one line; the next run updates all", async () => {
    const { work, files } = checkout("inplace");
    fill();
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli(["update", "--repo", work, ...SET]);
    } finally {
      free();
    }
    expect(r.code).not.toBe(0);
    const line = oneLine(r.stderr);
    expect(line).toMatch(/ENOSPC|no space/i);
    unchanged(work, files);
    figures.push(`update in place: exit ${r.code}, "${line}"`);

    const again = await cli(["update", "--repo", work, ...SET]);
    expect(again.code, again.stderr).toBe(0);
    for (let i = 0; i < 20; i++)
      expect(readFileSync(join(work, `apps/web-${i}.yaml`), "utf8")).toBe(deploy(i, "2.0.0"));
  });

  it("update --commit: the checkout and its branch as they were, one line; the next run commits once", async () => {
    const { work, files } = checkout("commit");
    const head = git(work, ["rev-parse", "HEAD"]).trim();
    fill();
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli(["update", "--repo", work, "--commit", ...SET]);
    } finally {
      free();
    }
    expect(r.code).not.toBe(0);
    const line = oneLine(r.stderr);
    expect(git(work, ["rev-parse", "HEAD"]).trim()).toBe(head);
    unchanged(work, files);
    expect(existsSync(join(work, ".git", "shipmate-run.json"))).toBe(false);
    figures.push(`update --commit: exit ${r.code}, "${line}"`);

    const again = await cli(["update", "--repo", work, "--commit", ...SET]);
    expect(again.code, again.stderr).toBe(0);
    expect(git(work, ["rev-list", "--count", `${head}..HEAD`]).trim()).toBe("1");
    expect(git(work, ["status", "--porcelain", "--untracked-files=all"])).toBe("");
  });
});

describe("disk full while writing the registry cache", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: "none" });
    await seedTags(reg, "team/web", ["1.0.0", "1.1.0"]);
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
  });

  it("scan still answers; the cache file is the previous one, whole, and no temporary file is left", async () => {
    const policies = join(outside, "policies");
    mkdirSync(policies);
    execFileSync("sh", [
      "-c",
      `cat > ${policies}/web.yaml <<'EOF'
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: web, namespace: flux-system}
spec: {image: ${reg.host}/team/web, interval: 5m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: web, namespace: flux-system}
spec:
  imageRepositoryRef: {name: web}
  policy: {semver: {range: ">=1.0.0"}}
  digestReflectionPolicy: IfNotPresent
EOF`,
    ]);
    const cache = join(mnt, "cache");
    const scan = () => cli(["scan", "--policies", policies, "--cache-dir", cache, "--json"]);
    const first = await scan();
    expect(first.code, first.stderr).toBe(0);
    const cacheFiles = () => {
      const out: Record<string, string> = {};
      const walk = (d: string) => {
        for (const e of readdirSync(d, { withFileTypes: true }))
          if (e.isDirectory()) walk(join(d, e.name));
          else out[join(d, e.name)] = readFileSync(join(d, e.name), "utf8");
      };
      walk(cache);
      return out;
    };
    const before = cacheFiles();
    expect(Object.keys(before).length).toBeGreaterThan(0);

    // A new tag: the scan has something new to remember, and no room to write it.
    await seedTags(reg, "team/web", ["1.2.0"]);
    fill();
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await scan();
    } finally {
      free();
    }
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject([
      {
        policy: "flux-system:web",
        image: `${reg.host}/team/web`,
        tag: "1.2.0",
        digest: expect.stringMatching(/^sha256:/),
      },
    ]);
    const after = cacheFiles();
    expect(after).toEqual(before);
    for (const text of Object.values(after)) expect(() => JSON.parse(text)).not.toThrow();
    figures.push("scan with a full cache disk: exit 0, the right tag, previous cache intact");

    const again = await scan();
    expect(again.code, again.stderr).toBe(0);
    expect(cacheFiles()).not.toEqual(before);
  }, 120_000);
});

describe("disk full while the agent writes its working copy", () => {
  it("the fetch fails in one line, the previous tree served whole; the next fetch gets the new commit", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 50; i++)
      files[`apps/cm-${i}.yaml`] = `kind: ConfigMap\n# ${i}\n${"# pad\n".repeat(300)}`;
    const bare = join(outside, "agent.git");
    seedBare(bare, files);
    const source = new GitSource({ url: `file://${bare}`, branch: "main", workdir: join(mnt, "agent") });
    const first = await source.fetch();
    const seed = git(outside, ["clone", "--quiet", bare, join(outside, "agent-work")]);
    void seed;
    const work = join(outside, "agent-work");
    for (let i = 0; i < 50; i++)
      execFileSync("sh", ["-c", `printf 'kind: ConfigMap\\n# %s v2\\n' ${i} > apps/cm-${i}.yaml`], {
        cwd: work,
      });
    git(work, ["commit", "--quiet", "-am", "v2"]);
    git(work, ["push", "--quiet", "origin", "main"]);
    const next = git(work, ["rev-parse", "HEAD"]).trim();

    fill();
    let err: unknown;
    try {
      err = await source.fetch().catch((e: unknown) => e);
    } finally {
      free();
    }
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).not.toContain("\n");
    expect(message).toMatch(/space|ENOSPC|write/i);
    expect(source.artifact?.revision).toBe(first.revision);
    for (const [p, text] of Object.entries(files))
      expect(readFileSync(join(source.dir, p), "utf8")).toBe(text);
    expect(readdirSync(join(mnt, "agent")).filter((n) => /\.(tmp|old)-/.test(n))).toEqual([]);
    figures.push(`agent fetch: "${message}"`);

    const back = await source.fetch();
    expect(back.revision).toBe(`main@sha1:${next}`);
    expect(readFileSync(join(source.dir, "apps/cm-3.yaml"), "utf8")).toBe("kind: ConfigMap\n# 3 v2\n");
  }, 120_000);
});
