/**
 * A refresh: what a registry event, a schedule tick or the Action's `update`
 * command asks of the engine. Read the policies, scan the ones affected,
 * and deliver the selections through git, each policy the way its
 * environment wants it: pushed (staging) or proposed as a pull request.
 *
 * This is glue over src/config, src/scan, src/update and src/forge, shared
 * by `shipmate serve`, the GitHub App and the Action; it holds no rule of
 * its own beyond which policies a run covers and which mode each one uses.
 */
import { existsSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { environmentOfFile, FLEET_FILE, type FleetEnvironment, loadFleet } from "../config/fleet.ts";
import { loadPolicyConfig } from "../config/index.ts";
import type { LimitRefusal } from "../config/limits.ts";
import type { Policy, UpdateMode } from "../config/types.ts";
import { UsageError } from "../errors.ts";
import { deliverUpdateAsPullRequest, splitByMode, type UpdateRequestResult } from "../forge/deliver.ts";
import type { Forge } from "../forge/types.ts";
import { credentialsFromEnv, DEFAULT_TOKEN_ENV } from "../git/auth.ts";
import { type Identity, Workspace } from "../git/workspace.ts";
import type { ScanOptions } from "../scan/index.ts";
import { scanPolicies } from "../scan/index.ts";
import type { PolicyResult } from "../scan/types.ts";
import { runUpdateJob, type UpdateJobResult } from "../update/job.ts";
import { inputFromScan } from "../update/selections.ts";
import type { PolicyClaim, Problem } from "../update/types.ts";
import { normaliseImage } from "./events.ts";
import type { RefreshScope } from "./queue.ts";

/**
 * Where the policies come from:
 * - `dir`: a local directory, read again on every run;
 * - `repo`: inside the fleet repository. With `path`, that folder; without,
 *   the policies of the environments shipmate.yaml lists without
 *   `promoteFrom` (later environments move by promotion, not by scanning),
 *   or every policy in the tree when there is no shipmate.yaml.
 */
export type PolicySource = { kind: "dir"; dir: string } | { kind: "repo"; path?: string };

export interface RefreshJob {
  /** Fleet repository: a local checkout or a clone URL. */
  repo: string;
  /** Branch to push to and base of requests; default: the checkout's, or the remote's default branch. */
  branch?: string;
  /** Only files under this repository-relative folder are edited. */
  path?: string;
  policies: PolicySource;
  scope?: RefreshScope;
  /**
   * Delivery of policies that name no `mode` themselves; without it, their
   * environment's mode in shipmate.yaml, else `push`.
   */
  mode?: UpdateMode;
  dryRun: boolean;
  env: NodeJS.ProcessEnv;
  /** Environment variable holding the git HTTPS token (default SHIPMATE_GIT_TOKEN). */
  tokenEnv?: string;
  scan?: Omit<ScanOptions, "only" | "env">;
  /** Needed when any policy in the run uses pull-request mode; made on demand. */
  forge?: Forge | (() => Forge);
  author?: Identity;
  committer?: Identity;
  messageTemplate?: string;
  messageTemplateSource?: string;
  /** Bot branch of update requests (default `shipmate/update-<base>`). */
  requestBranch?: string;
  labels?: string[];
  onRetry?: (attempt: number, reason: string) => void;
}

export interface RefreshResult {
  /** Policies the run covered (after scope and suspension), with the mode each used. */
  policies: { policy: Policy; mode: UpdateMode }[];
  /** Every image repository (normalised) the repository's updatable policies watch, in scope or not. */
  watched: string[];
  scan: PolicyResult[];
  /** The push-mode delivery, when any policy used it. */
  push?: UpdateJobResult;
  /** The pull-request delivery, when any policy used it. */
  request?: UpdateRequestResult;
  /** Dry runs of pull-request policies: what the request would change. */
  proposed?: UpdateJobResult;
  problems: Problem[];
  /** Why nothing was scanned, when nothing was. */
  skipped?: string;
}

interface LoadedPolicies {
  candidates: Policy[];
  known: Policy[];
  /** The shipmate.yaml environment a policy belongs to (its delivery mode, its request settings). */
  environmentOf: (p: Policy) => FleetEnvironment | undefined;
  /** Policy files refused by a bound of src/config/limits.ts; the policies beside them are used. */
  refused: LimitRefusal[];
}

async function loadDirs(dirs: string[], refused: LimitRefusal[]): Promise<Policy[]> {
  const seen = new Set<string>();
  const out: Policy[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    const config = await loadPolicyConfig(dir);
    for (const r of config.skipped ?? []) if (!refused.some((q) => q.file === r.file)) refused.push(r);
    for (const p of config.policies) {
      if (seen.has(p.id)) continue;
      seen.add(p.id);
      out.push(p);
    }
  }
  return out;
}

/** Reads the policies a run starts from, with the mode shipmate.yaml gives each one. */
export async function loadRunPolicies(root: string, source: PolicySource): Promise<LoadedPolicies> {
  const fleet = existsSync(join(root, FLEET_FILE)) ? await loadFleet(root) : undefined;
  const environmentOf = (p: Policy) => environmentOfFile(root, fleet, p.source.file);
  const refused: LimitRefusal[] = [];
  const shown = (list: LimitRefusal[]) => list.map((r) => ({ ...r, file: relative(root, r.file) || r.file }));
  const one = async (dir: string) => {
    const policies = await loadDirs([dir], refused);
    return { candidates: policies, known: policies, environmentOf, refused: shown(refused) };
  };
  if (source.kind === "dir") return one(source.dir);
  if (source.path !== undefined) return one(resolve(root, source.path));
  if (!fleet) return one(root);
  const local = fleet.spec.environments.filter((e) => !e.repository);
  const dirOf = (e: FleetEnvironment) => join(root, e.policies ?? e.path);
  const candidates = await loadDirs(local.filter((e) => !e.promoteFrom).map(dirOf), refused);
  const known = await loadDirs(local.map(dirOf), refused);
  return { candidates, known, environmentOf, refused: shown(refused) };
}

function inScope(p: Policy, scope: RefreshScope | undefined): boolean {
  if (!scope || scope.kind === "all") return true;
  const image = normaliseImage(p.image);
  return image !== undefined && scope.images.has(image);
}

/** Opens the repository (cloning a URL) just long enough to read what a run needs from it. */
async function inspect<T>(
  job: RefreshJob,
  read: (root: string, branch: string | undefined) => Promise<T>,
): Promise<T> {
  const credentials = credentialsFromEnv(job.env, job.tokenEnv ?? DEFAULT_TOKEN_ENV);
  const opts = { env: job.env, ...(credentials ? { credentials } : {}) };
  const ws = Workspace.isUrl(job.repo)
    ? await Workspace.clone(job.repo, job.branch, opts)
    : await Workspace.open(job.repo, opts);
  try {
    return await read(ws.dir, job.branch ?? (await ws.currentBranch()));
  } finally {
    ws.dispose();
  }
}

/** The no-selection warnings of markers whose policy this delivery was never meant to set. */
function relevant(problems: Problem[], selected: ReadonlySet<string>): Problem[] {
  return problems.filter((p) => {
    if (p.kind !== "no-selection") return true;
    const id = /policy (\S+) has no selection/.exec(p.message)?.[1];
    return id === undefined || selected.has(id);
  });
}

export async function refreshFleet(job: RefreshJob): Promise<RefreshResult> {
  const loaded = await inspect(job, async (root, branch) => ({
    ...(await loadRunPolicies(root, job.policies)),
    branch,
  }));
  const base = loaded.branch;
  const chosen = loaded.candidates
    .filter((p) => !p.suspended && inScope(p, job.scope))
    .map((policy) => ({
      policy,
      mode: policy.mode ?? job.mode ?? loaded.environmentOf(policy)?.mode ?? "push",
    }));
  const watched = [
    ...new Set(
      loaded.candidates
        .filter((p) => !p.suspended)
        .map((p) => normaliseImage(p.image))
        .filter((i): i is string => i !== undefined),
    ),
  ].sort();
  // A policy file refused by a bound is reported with every run; the others are scanned.
  const refusedProblems: Problem[] = loaded.refused.map((r) => ({
    file: r.file,
    ...(r.line ? { line: r.line } : {}),
    kind: "too-large",
    severity: "warning",
    message: r.message,
  }));
  const result: RefreshResult = { policies: chosen, watched, scan: [], problems: refusedProblems };
  if (chosen.length === 0) {
    result.skipped =
      loaded.candidates.length === 0
        ? "no image policies found"
        : job.scope?.kind === "images"
          ? `no policy watches ${[...job.scope.images].join(", ")}`
          : "every policy is suspended";
    return result;
  }

  const report = await scanPolicies(
    chosen.map((c) => c.policy),
    { ...job.scan, env: job.env },
  );
  result.scan = report.results;
  const claims: PolicyClaim[] = loaded.known.map((p) => ({
    id: p.id,
    image: p.image,
    ...(p.paths ? { paths: p.paths } : {}),
  }));
  for (const c of chosen)
    if (!claims.some((k) => k.id === c.policy.id))
      claims.push({
        id: c.policy.id,
        image: c.policy.image,
        ...(c.policy.paths ? { paths: c.policy.paths } : {}),
      });
  const modeById = new Map(chosen.map((c) => [c.policy.id, c.mode]));
  // Each half defers the other's policies, so their markers are left alone quietly.
  const halves = splitByMode({ selections: inputFromScan(report).selections, policies: claims }, (id) =>
    modeById.get(id),
  );

  const common = {
    repo: job.repo,
    ...(job.path !== undefined ? { path: job.path } : {}),
    env: job.env,
    ...(job.tokenEnv ? { tokenEnv: job.tokenEnv } : {}),
    ...(job.author ? { author: job.author } : {}),
    ...(job.committer ? { committer: job.committer } : {}),
    ...(job.messageTemplate !== undefined
      ? { messageTemplate: job.messageTemplate, messageTemplateSource: job.messageTemplateSource }
      : {}),
    ...(job.onRetry ? { onRetry: job.onRetry } : {}),
  };

  const pushInput = halves.push;
  if (pushInput.selections.size > 0) {
    const pushed = await runUpdateJob({
      ...common,
      ...(base ? { branch: base } : {}),
      input: pushInput,
      delivery: "push",
      dryRun: job.dryRun,
    });
    result.push = { ...pushed, problems: relevant(pushed.problems, new Set(pushInput.selections.keys())) };
    result.problems.push(...result.push.problems);
  }

  const prInput = halves["pull-request"];
  if (prInput.selections.size > 0) {
    const selected = new Set(prInput.selections.keys());
    if (job.dryRun) {
      const proposed = await runUpdateJob({
        ...common,
        ...(base ? { branch: base } : {}),
        input: prInput,
        delivery: "files",
        dryRun: true,
      });
      result.proposed = { ...proposed, problems: relevant(proposed.problems, selected) };
      result.problems.push(...result.proposed.problems);
    } else {
      const forge = typeof job.forge === "function" ? job.forge() : job.forge;
      if (!forge)
        throw new UsageError(
          `policies ${[...selected].join(", ")} deliver by pull request, but no forge is configured`,
        );
      if (!base) throw new UsageError("cannot tell the base branch of the pull request: give the branch");
      const imageOf = (id: string) => chosen.find((c) => c.policy.id === id)?.policy.image;
      const request = await deliverUpdateAsPullRequest({
        job: { ...common, branch: base, input: prInput },
        forge,
        imageOf,
        settingsOf: (id) => {
          const policy = chosen.find((c) => c.policy.id === id)?.policy;
          return policy ? loaded.environmentOf(policy)?.pullRequest : undefined;
        },
        ...(job.requestBranch ? { branch: job.requestBranch } : {}),
        ...(job.labels ? { labels: job.labels } : {}),
      });
      request.update.problems = relevant(request.update.problems, selected);
      result.request = request;
      result.problems.push(...request.update.problems);
    }
  }
  return result;
}

/** One row per changed scalar, the shape the Action's `changes` output and summaries use. */
export interface ChangeRow {
  policy: string;
  file: string;
  line: number;
  old: string;
  new: string;
  mode: UpdateMode;
}

export function changeRows(r: RefreshResult): ChangeRow[] {
  const rows: ChangeRow[] = [];
  const add = (u: UpdateJobResult | undefined, mode: UpdateMode) => {
    for (const f of u?.files ?? [])
      for (const c of f.changes)
        rows.push({ policy: c.policy, file: f.path, line: c.line, old: c.old, new: c.new, mode });
  };
  add(r.push, "push");
  add(r.request?.update ?? r.proposed, "pull-request");
  return rows;
}
