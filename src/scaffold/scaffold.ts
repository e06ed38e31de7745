/**
 * `shipmate init` and `shipmate add`: render a whole fleet from its spec,
 * then put it on disk. Nothing touches the disk until every file of every
 * repository has rendered and parsed; a fresh `--out` appears at once (one
 * rename of a fully written staging folder).
 */
import { mkdir, readFile, rm } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { UsageError } from "../errors.ts";
import {
  gitInitCommit,
  isGitWorkTree,
  MANIFEST_PATH,
  manifestText,
  pathKind,
  publishStaged,
  readManifest,
  type ScaffoldManifest,
  sha256,
  stagingDir,
  writeTree,
} from "./files.ts";
import {
  buildModel,
  checkName,
  type FleetSpec,
  normalize,
  type RepoModel,
  repositories,
  type ScaffoldInput,
  toInput,
} from "./model.ts";
import { type RenderedFile, renderFleet, type Templates } from "./render.ts";

export const SHIPMATE_VERSION: string = pkg.version;

export interface InitOptions extends Omit<ScaffoldInput, "version"> {
  out: string;
  force?: boolean;
  dryRun?: boolean;
  /** Leave repositories un-initialised (no `git init`, no first commit). */
  noGit?: boolean;
  version?: string;
  templates?: Templates;
  /** Environment for git (the CLI passes its own). */
  env?: NodeJS.ProcessEnv;
}

export interface RepoResult {
  dir: string;
  /** Absolute path of the repository. */
  path: string;
  files: number;
  /** A `git init` + first commit was made. */
  committed: boolean;
}

export interface InitResult {
  spec: FleetSpec;
  out: string;
  repos: RepoResult[];
  /** Files that existed and were replaced (only with --force). */
  replaced: string[];
  files: RenderedFile[];
}

function manifestFor(spec: FleetSpec, repo: RepoModel, files: RenderedFile[], previous?: ScaffoldManifest) {
  const hashes: Record<string, string> = { ...(previous?.files ?? {}) };
  for (const f of files) if (f.repo === repo.dir) hashes[f.path] = sha256(f.content);
  const manifest: ScaffoldManifest = {
    apiVersion: "shipmate.dev/v1alpha1",
    kind: "ScaffoldManifest",
    generator: `shipmate ${SHIPMATE_VERSION}`,
    repository: repo.dir,
    fleetRoot: repo.dir === "." ? "." : "..",
    spec,
    files: hashes,
  };
  return manifest;
}

function repoFiles(files: RenderedFile[], repo: string) {
  return files.filter((f) => f.repo === repo).map((f) => ({ path: f.path, content: f.content }));
}

/** Renders every repository of a new fleet and writes it under `out`. */
export async function init(options: InitOptions): Promise<InitResult> {
  const spec = normalize({ ...options, version: options.version ?? SHIPMATE_VERSION });
  const out = resolve(options.out);
  const kind = await pathKind(out);
  if (kind === "file") throw new UsageError(`--out ${options.out} is a file, not a directory`);
  if (kind === "dir" && !options.force)
    throw new UsageError(
      `--out ${options.out} is not empty; use --force to write into it (files shipmate writes are replaced)`,
    );

  const model = buildModel(spec);
  const files = renderFleet(model, options.templates);
  const manifests = model.repos.map((repo) => ({
    repo: repo.dir,
    path: MANIFEST_PATH,
    content: manifestText(manifestFor(spec, repo, files)),
  }));
  const all = [...files, ...manifests];
  const repos = model.repos.map(
    (r): RepoResult => ({
      dir: r.dir,
      path: join(out, r.dir),
      files: all.filter((f) => f.repo === r.dir).length,
      committed: false,
    }),
  );
  const result: InitResult = { spec, out, repos, replaced: [], files: all };
  if (options.dryRun) return result;

  const commitMessage = `Scaffold ${spec.layout} fleet with shipmate ${SHIPMATE_VERSION}`;
  if (kind !== "dir") {
    const staging = stagingDir(out);
    try {
      for (const repo of repos) {
        const files = repoFiles(all, repo.dir);
        await writeTree(join(staging, repo.dir), files, false);
        if (!options.noGit) {
          await gitInitCommit(join(staging, repo.dir), spec.branch, commitMessage, files, options.env);
          repo.committed = true;
        }
      }
      await mkdir(resolve(out, ".."), { recursive: true });
      await publishStaged(staging, out);
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
    return result;
  }

  // --force into a non-empty folder: each file replaced atomically; existing repositories are not committed to.
  for (const f of all) {
    if ((await pathKind(join(out, f.repo, f.path))) === "file") result.replaced.push(join(f.repo, f.path));
  }
  for (const repo of repos) {
    const dir = join(out, repo.dir);
    const fresh = (await pathKind(dir)) !== "dir" || !(await isGitWorkTree(dir, options.env));
    const files = repoFiles(all, repo.dir);
    await writeTree(dir, files, true);
    if (fresh && !options.noGit) {
      await gitInitCommit(dir, spec.branch, commitMessage, files, options.env);
      repo.committed = true;
    }
  }
  return result;
}

export type AddKind = "app" | "env" | "team";

export interface AddOptions {
  /** A repository of the fleet (holding .shipmate/scaffold.json). */
  repo: string;
  /** `add app`: the team that owns it. */
  team?: string;
  /** `add app`: it rolls out in the last environment as a Flagger canary. */
  canary?: boolean;
  /** `add app --canary` in a fleet without canaries yet: Flagger's router (default kubernetes). */
  canaryProvider?: string;
  dryRun?: boolean;
  noGit?: boolean;
  templates?: Templates;
  env?: NodeJS.ProcessEnv;
}

export type FileAction = "added" | "updated" | "unchanged" | "skipped";

export interface AddResult {
  spec: FleetSpec;
  changes: { repo: string; path: string; action: FileAction; reason?: string }[];
  /** Repositories created by this add (repo-per-env/team/app layouts). */
  created: string[];
  /** Repositories of the fleet that are not checked out next to this one. */
  missing: string[];
}

function extend(
  spec: FleetSpec,
  kind: AddKind,
  name: string,
  team: string | undefined,
  canary: { canary?: boolean; canaryProvider?: string },
): ScaffoldInput {
  const input = toInput(spec);
  if (kind !== "app" && (canary.canary || canary.canaryProvider))
    throw new UsageError("--canary is only for 'add app'");
  if (canary.canaryProvider && spec.canaryProvider && canary.canaryProvider !== spec.canaryProvider)
    throw new UsageError(
      `the fleet's canaries use the ${spec.canaryProvider} provider; --canary-provider ${canary.canaryProvider} would change every one`,
    );
  if (canary.canary) input.canary = true;
  if (canary.canaryProvider) input.canaryProvider = canary.canaryProvider;
  if (kind === "env") {
    checkName("environment", name);
    if (spec.envs.includes(name)) throw new UsageError(`environment "${name}" already exists`);
    input.envs = [...spec.envs, name];
  } else if (kind === "team") {
    checkName("team", name);
    if (spec.teams.includes(name)) throw new UsageError(`team "${name}" already exists`);
    input.teams = [...spec.teams, name];
  } else {
    checkName("app", name);
    if (spec.apps.some((a) => a.name === name)) throw new UsageError(`app "${name}" already exists`);
    input.apps = [...(input.apps ?? []), team ? `${name}@${team}` : name];
  }
  if (kind !== "app" && team !== undefined) throw new UsageError(`--team is only for 'add app'`);
  return input;
}

/**
 * Adds an app, environment or team to a scaffolded fleet: re-renders the whole
 * fleet and writes only what is new or still exactly as shipmate wrote it;
 * files the user changed are left alone and reported.
 */
export async function add(kind: AddKind, name: string, options: AddOptions): Promise<AddResult> {
  const repoDir = resolve(options.repo);
  const manifest = await readManifest(repoDir);
  if (isAbsolute(manifest.fleetRoot) || !["", ".", ".."].includes(manifest.fleetRoot))
    throw new UsageError(`${MANIFEST_PATH}: fleetRoot must be "." or ".."`);
  const root = resolve(repoDir, manifest.fleetRoot);
  const before = new Set(repositories(manifest.spec).map((r) => r.dir));
  const spec = normalize(
    extend(manifest.spec, kind, name, options.team, {
      ...(options.canary ? { canary: true } : {}),
      ...(options.canaryProvider ? { canaryProvider: options.canaryProvider } : {}),
    }),
  );
  const model = buildModel(spec);
  const files = renderFleet(model, options.templates);

  const result: AddResult = { spec, changes: [], created: [], missing: [] };
  const plans: {
    repo: RepoModel;
    dir: string;
    fresh: boolean;
    previous?: ScaffoldManifest;
    write: RenderedFile[];
    /** Written or already identical: their hashes are recorded. */
    record: RenderedFile[];
  }[] = [];
  for (const repo of model.repos) {
    const dir = join(root, repo.dir);
    const exists = (await pathKind(dir)) === "dir";
    if (!exists) {
      if (before.has(repo.dir)) {
        result.missing.push(repo.dir);
        continue;
      }
      result.created.push(repo.dir);
      const write = files.filter((f) => f.repo === repo.dir);
      for (const f of write) result.changes.push({ repo: repo.dir, path: f.path, action: "added" });
      plans.push({ repo, dir, fresh: true, write, record: write });
      continue;
    }
    const previous =
      repo.dir === manifest.repository ? manifest : await readManifest(dir).catch(() => undefined);
    const write: RenderedFile[] = [];
    const record: RenderedFile[] = [];
    for (const f of files) {
      if (f.repo !== repo.dir) continue;
      let onDisk: string | undefined;
      try {
        onDisk = await readFile(join(dir, f.path), "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      const change = { repo: repo.dir, path: f.path };
      if (onDisk === undefined) {
        write.push(f);
        result.changes.push({ ...change, action: "added" });
      } else if (onDisk === f.content) {
        record.push(f);
        result.changes.push({ ...change, action: "unchanged" });
      } else if (previous?.files[f.path] === sha256(f.content)) {
        // Changed by the user, but shipmate has nothing new for it: the user's version stands.
        result.changes.push({ ...change, action: "unchanged" });
      } else if (previous?.files[f.path] === sha256(onDisk)) {
        write.push(f);
        result.changes.push({ ...change, action: "updated" });
      } else {
        result.changes.push({
          ...change,
          action: "skipped",
          reason: previous?.files[f.path] ? "changed since shipmate wrote it" : "not written by shipmate",
        });
      }
    }
    record.push(...write);
    plans.push({ repo, dir, fresh: false, ...(previous ? { previous } : {}), write, record });
  }
  if (options.dryRun) return result;

  for (const plan of plans) {
    const written = manifestFor(spec, plan.repo, plan.record, plan.previous);
    const out = [...plan.write.map((f) => ({ path: f.path, content: f.content }))];
    out.push({ path: MANIFEST_PATH, content: manifestText(written) });
    if (plan.fresh) {
      const staging = stagingDir(plan.dir);
      try {
        await writeTree(staging, out, false);
        if (!options.noGit)
          await gitInitCommit(
            staging,
            spec.branch,
            `Scaffold ${plan.repo.dir} with shipmate ${SHIPMATE_VERSION}`,
            out,
            options.env,
          );
        await publishStaged(staging, plan.dir);
      } catch (err) {
        await rm(staging, { recursive: true, force: true });
        throw err;
      }
    } else {
      await writeTree(plan.dir, out, true);
    }
  }
  return result;
}

/** A path as the user should see it: relative to `cwd` when inside it, else absolute. */
export function displayPath(cwd: string, path: string): string {
  const rel = relative(cwd, path);
  return rel === "" ? "." : rel.startsWith("..") || isAbsolute(rel) ? path : rel;
}
