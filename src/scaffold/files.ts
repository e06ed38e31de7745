/**
 * Disk side of scaffolding: writing many files quickly and without leaving a
 * half-written tree, the scaffold manifest that lets `add` tell the files it
 * wrote from the ones the user changed, and the first commit of each new
 * repository.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { ConfigError, GitError, ShipmateError } from "../errors.ts";
import { APP_SOURCES, CANARY_PROVIDERS, LAYOUTS } from "./model.ts";

const run = promisify(execFile);

export const MANIFEST_PATH = ".shipmate/scaffold.json";

/** The disk refused a write (permissions, space, a file where a folder must go). */
export class ScaffoldWriteError extends ShipmateError {
  readonly exitCode = 1;
  override name = "ScaffoldWriteError";
}

function writeFailure(path: string, err: unknown): ScaffoldWriteError {
  const e = err as NodeJS.ErrnoException;
  const why = e.code === "ENOTDIR" || e.code === "EEXIST" ? "a file is in the way" : (e.code ?? e.message);
  return new ScaffoldWriteError(`cannot write ${path}: ${why}`);
}

export function sha256(content: string): string {
  return createHash("sha256").update(content).digest("hex");
}

/** `.shipmate/scaffold.json`: read back from disk, so parsed like any outside input. */
const manifestSchema = z.object({
  apiVersion: z.literal("shipmate.dev/v1alpha1"),
  kind: z.literal("ScaffoldManifest"),
  generator: z.string(),
  /** This repository's folder name under the fleet root. */
  repository: z.string(),
  /** From this repository to the folder `init --out` wrote ("." for a monorepo, ".." otherwise). */
  fleetRoot: z.string(),
  spec: z.object({
    layout: z.enum(LAYOUTS),
    name: z.string(),
    envs: z.array(z.string()),
    teams: z.array(z.string()),
    apps: z.array(
      z.object({
        name: z.string(),
        team: z.string().optional(),
        image: z.string(),
        canary: z.boolean().optional(),
      }),
    ),
    gitUrl: z.string(),
    branch: z.string(),
    registry: z.string(),
    appSource: z.enum(APP_SOURCES),
    sopsAgeRecipient: z.string().optional(),
    canaryProvider: z.enum(CANARY_PROVIDERS).optional(),
    version: z.string(),
  }),
  /** Path → sha256 of the content shipmate last wrote there. */
  files: z.record(z.string(), z.string()),
});
export type ScaffoldManifest = z.infer<typeof manifestSchema>;

export function manifestText(m: ScaffoldManifest): string {
  const files = Object.fromEntries(Object.entries(m.files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ ...m, files }, null, 2)}\n`;
}

export async function readManifest(repoDir: string): Promise<ScaffoldManifest> {
  const file = join(repoDir, MANIFEST_PATH);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new ConfigError(`not a repository scaffolded by shipmate (no ${MANIFEST_PATH}); give --repo`, {
        file: repoDir,
      });
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`invalid JSON: ${(err as Error).message}`, { file });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${issue.path.join(".")}: ${issue.message}`, { file });
  }
  return parsed.data;
}

export type PathKind = "missing" | "file" | "empty-dir" | "dir";

export async function pathKind(path: string): Promise<PathKind> {
  try {
    const s = await stat(path);
    if (!s.isDirectory()) return "file";
    return (await readdir(path)).length === 0 ? "empty-dir" : "dir";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return "missing";
    throw err;
  }
}

/**
 * Writes files under `root`, creating each folder once. Synchronous on
 * purpose: for thousands of small files, direct system calls are several
 * times faster than round trips through libuv's thread pool.
 */
export async function writeTree(
  root: string,
  files: { path: string; content: string }[],
  atomic: boolean,
): Promise<void> {
  const made = new Set<string>();
  const suffix = `.shipmate-tmp-${randomBytes(4).toString("hex")}`;
  for (const f of files) {
    const target = join(root, f.path);
    const dir = dirname(target);
    try {
      if (!made.has(dir)) {
        mkdirSync(dir, { recursive: true });
        made.add(dir);
      }
      if (atomic) {
        // Rename is atomic: a reader (or a crash) sees the old file or the new one, never half of one.
        writeFileSync(target + suffix, f.content);
        renameSync(target + suffix, target);
      } else {
        writeFileSync(target, f.content);
      }
    } catch (err) {
      throw writeFailure(target, err);
    }
  }
}

/**
 * Moves a fully written staging folder into place. `target` must be missing
 * or an empty folder; rename(2) then makes the whole tree appear at once.
 */
export async function publishStaged(staging: string, target: string): Promise<void> {
  if ((await pathKind(target)) === "empty-dir") await rm(target, { recursive: true });
  await rename(staging, target);
}

/** A sibling folder on the same file system as `target`, so the final rename is atomic. */
export function stagingDir(target: string): string {
  return join(dirname(target), `.${target.split("/").pop()}.shipmate-${randomBytes(4).toString("hex")}`);
}

async function gitConfigured(key: string, cwd: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    const { stdout } = await run("git", ["config", "--get", key], { cwd, env });
    return stdout.trim() !== "";
  } catch {
    return false;
  }
}

/**
 * `git init` + a first commit of `files` (exactly what was written to `dir`).
 * The commit is streamed through `git fast-import`, which writes one pack
 * instead of one loose object per file (thousands of files commit in a
 * fraction of `git add`'s time); the index is then brought to HEAD. A default
 * author is used only when git has none; global config is never touched.
 */
export async function gitInitCommit(
  dir: string,
  branch: string,
  message: string,
  files: { path: string; content: string }[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const author: string[] = [];
  if (!(await gitConfigured("user.name", dir, env))) author.push("-c", "user.name=shipmate");
  if (!(await gitConfigured("user.email", dir, env))) author.push("-c", "user.email=shipmate@localhost");
  const git = async (args: string[], input?: Buffer): Promise<string> => {
    try {
      if (input === undefined)
        return (await run("git", args, { cwd: dir, env, maxBuffer: 64 * 1024 * 1024 })).stdout;
      return await new Promise<string>((resolve, reject) => {
        const child = execFile(
          "git",
          args,
          { cwd: dir, env, maxBuffer: 64 * 1024 * 1024 },
          (err, stdout, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve(String(stdout))),
        );
        child.stdin?.end(input);
      });
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? "")
        .trim()
        .split("\n")[0];
      throw new GitError(`git ${args.filter((a) => !a.includes("=")).join(" ")} in ${dir}: ${stderr}`);
    }
  };
  await git(["init", "--quiet", "--initial-branch", branch]);
  const authorIdent = (await git([...author, "var", "GIT_AUTHOR_IDENT"])).trim();
  const committerIdent = (await git([...author, "var", "GIT_COMMITTER_IDENT"])).trim();
  const chunks: Buffer[] = [];
  const data = (text: string) => {
    const bytes = Buffer.from(text);
    chunks.push(Buffer.from(`data ${bytes.length}\n`), bytes, Buffer.from("\n"));
  };
  chunks.push(
    Buffer.from(`commit refs/heads/${branch}\nauthor ${authorIdent}\ncommitter ${committerIdent}\n`),
  );
  data(message);
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    chunks.push(Buffer.from(`M 100644 inline ${f.path}\n`));
    data(f.content);
  }
  chunks.push(Buffer.from("done\n"));
  await git(["fast-import", "--quiet", "--done"], Buffer.concat(chunks));
  // The work tree already holds these files: point the index at HEAD and refresh its stat data.
  await git(["reset", "--quiet", "--mixed", "HEAD"]);
}

export async function isGitWorkTree(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  try {
    const { stdout } = await run("git", ["rev-parse", "--is-inside-work-tree"], { cwd: dir, env });
    return stdout.trim() === "true";
  } catch {
    return false;
  }
}
