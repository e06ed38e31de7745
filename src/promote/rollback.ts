/**
 * Rollback requests: when a Flagger Canary of an environment is Failed at the
 * version git pins now, shipmate proposes the version pinned before it (tag
 * and digest, read back from git history) as a pull request, naming the
 * failed analysis and Flagger's own words on it (metric values, query
 * errors), and closes the open forward requests that would bring the failed
 * version back. A rollback is a promotion from the past: the previous tree
 * of the app is planned into the current one with ./plan.ts.
 *
 * The rule (`rollbackDecision`) is pure; `runRollback` gathers the evidence
 * (git history, the cluster) and delivers. `shipmate promote` runs it when
 * its canary gate sees a Failed Canary, and `shipmate rollback` runs it for
 * one environment, once or in a loop.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { type FleetEnvironment, loadFleet } from "../config/fleet.ts";
import { ConfigError, UsageError } from "../errors.ts";
import { makeMeta } from "../forge/body.ts";
import { createForge, type ForgeFlags, forgeOptions, originOf } from "../forge/index.ts";
import { BOT_PREFIX, requestOptions } from "../forge/propose.ts";
import type { Forge, ImageChange, MergeMethod, PullRequest } from "../forge/types.ts";
import { deliver } from "../git/deliver.ts";
import { type Identity, Workspace } from "../git/workspace.ts";
import { readTree, writeUpdates } from "../update/fs.ts";
import { clientFor, declaredCanaries, readCanaries, targetImages } from "./canary.ts";
import { type CanaryEvidence, describeCanary } from "./gates.ts";
import { type EnvTree, type PromotedImage, type PromotionPlan, planPromotion } from "./plan.ts";

const run = promisify(execFile);

export function rollbackBranch(env: string, app: string): string {
  return `${BOT_PREFIX}rollback-${env}${app ? `-${app}` : ""}`;
}

/** What the history offers for one app: its tree before the last change of its pins. */
export interface PreviousPins {
  commit: string;
  tree: EnvTree;
}

export type RollbackDecision =
  | { action: "propose"; plan: PromotionPlan; failedVersion: string }
  | { action: "skip"; reason: string };

/**
 * Whether to propose a rollback for a Failed Canary of `app`: only when the
 * failed rollout ran the version git pins now (the target Deployment runs
 * it), and history has an earlier, different pin to go back to.
 */
export function rollbackDecision(input: {
  app: string;
  canary: CanaryEvidence;
  current: EnvTree;
  previous: PreviousPins | undefined;
  /** Images of the Canary's target Deployment (what Flagger tried to roll out). */
  running: readonly string[];
}): RollbackDecision {
  const who = `Canary ${input.canary.namespace}/${input.canary.name}`;
  if (input.canary.phase !== "Failed") return { action: "skip", reason: `${who} is not Failed` };
  if (!input.previous)
    return { action: "skip", reason: `${who} failed, but git history has no earlier pin for ${input.app}` };
  const plan = planPromotion(input.previous.tree, input.current, { apps: [input.app] });
  if (plan.changes.length === 0)
    return { action: "skip", reason: `${who} failed, but ${input.app} already pins what it ran before` };
  const tried = plan.changes.filter((c) => runs(input.running, c));
  if (tried.length === 0)
    return {
      action: "skip",
      reason: `${who} failed at another version than git pins now (${plan.changes.map((c) => c.from).join(", ")}): nothing of shipmate's to roll back`,
    };
  return {
    action: "propose",
    plan,
    failedVersion: tried.map((c) => `${c.repository.split("/").pop()}:${c.from}`).join(", "),
  };
}

/** Whether a Deployment image (`repo:tag@digest`) is the current version of a change. */
function runs(images: readonly string[], c: PromotedImage): boolean {
  return c.from.split(", ").some((v) => {
    const [tag, digest] = v.split("@");
    return images.some(
      (img) =>
        (digest ? img.includes(`@${digest}`) : false) ||
        (tag ? img.endsWith(`:${tag}`) || img.includes(`:${tag}@`) : false),
    );
  });
}

/** The request body's account of the failure. */
export function rollbackIntro(
  env: string,
  app: string,
  canary: CanaryEvidence,
  failedVersion: string,
  previous: PreviousPins,
): string {
  const lines = [
    `**Rollback**: the Flagger canary \`${canary.namespace}/${canary.name}\` of \`${app}\` failed in \`${env}\` at ${failedVersion}.`,
    "",
    `- Analysis: ${describeCanary(canary).replace(/\|/g, "\\|")}`,
  ];
  if (canary.lastTransitionTime) lines.push(`- Failed at: ${canary.lastTransitionTime}`);
  for (const e of canary.events ?? []) lines.push(`- Flagger: ${e.replace(/\r?\n/g, " ")}`);
  lines.push(
    "",
    `This request pins what \`${env}\` ran before (from commit \`${previous.commit.slice(0, 12)}\`).`,
  );
  return lines.join("\n");
}

/** The app's tree before the last commit that changed its pins, from git history (newest first, bounded). */
export async function previousPins(
  dir: string,
  env: EnvTree,
  app: string,
  depth = 50,
): Promise<PreviousPins | undefined> {
  const git = async (...args: string[]) => (await run("git", args, { cwd: dir, maxBuffer: 64 << 20 })).stdout;
  const folder = env.path === "." || env.path === "" ? app : `${env.path}/${app}`;
  const commits = (await git("log", `-${depth}`, "--format=%H", "--", folder)).split("\n").filter(Boolean);
  for (const commit of commits) {
    const parent = (await git("rev-list", "--parents", "-n", "1", commit)).trim().split(" ")[1];
    if (!parent) return undefined;
    const names = (await git("ls-tree", "-r", "--name-only", parent, "--", folder))
      .split("\n")
      .filter((f) => /\.ya?ml$/.test(f));
    const files: { path: string; content: string }[] = [];
    for (const path of names) files.push({ path, content: await git("show", `${parent}:${path}`) });
    const tree: EnvTree = { name: env.name, path: env.path, files };
    // The first parent whose pins differ from now: the version before the change.
    if (planPromotion(tree, env, { apps: [app] }).changes.length > 0) return { commit: parent, tree };
  }
  return undefined;
}

export interface RollbackJob {
  repo: string;
  branch?: string;
  /** The environment whose Failed canaries are rolled back. */
  environment: string;
  workspace?: Workspace;
  env: NodeJS.ProcessEnv;
  tokenEnv?: string;
  forge?: Omit<ForgeFlags, "remote">;
  forgeClient?: Forge;
  kubeconfig?: string;
  /** Canaries already read in this run (the promote's canary gate), saving the cluster reads. */
  canaries?: CanaryEvidence[];
  labels?: string[];
  reviewers?: string[];
  mergeMethod?: MergeMethod;
  author?: Identity;
  sign?: boolean;
  dryRun?: boolean;
}

export interface RollbackReport {
  app: string;
  canary: string;
  outcome: "proposed" | "skipped" | "dry-run";
  reason?: string;
  /** The failed version(s) and what the request pins instead. */
  from?: string;
  to?: string;
  request?: { action: string; number?: number; url?: string };
  /** Forward requests closed because they would bring the failed version back. */
  closed: { number: number; url: string; branch: string }[];
}

export interface RollbackResult {
  environment: string;
  rollbacks: RollbackReport[];
  forgeRequests: number;
}

const IDENTITY: Identity = { name: "shipmate", email: "shipmate@users.noreply.invalid" };

function changesOf(plan: PromotionPlan, env: string): ImageChange[] {
  return plan.changes.map((c) => ({
    image: c.image,
    from: c.from,
    to: c.to,
    policy: `${c.app ? `${c.app} ` : ""}(rollback in ${env})`,
    files: c.files,
  }));
}

/** Open requests into `env` that propose the failed version of `app` again. */
export function obsoleteForward(
  known: readonly PullRequest[],
  env: string,
  plan: PromotionPlan,
): PullRequest[] {
  const failed = new Set(plan.changes.flatMap((c) => c.from.split(", ")));
  return known.filter((pr) => {
    if (pr.branch.startsWith(`${BOT_PREFIX}rollback-`)) return false;
    if (pr.meta?.promotion && pr.meta.promotion.to !== env) return false;
    return (pr.meta?.changes ?? []).some((c) => failed.has(c.to));
  });
}

export async function runRollback(job: RollbackJob): Promise<RollbackResult> {
  const own: Workspace[] = [];
  try {
    const fleetWs =
      job.workspace ??
      (await Workspace.acquire(job.repo, {
        ...(job.branch !== undefined ? { branch: job.branch } : {}),
        env: job.env,
        ...(job.tokenEnv !== undefined ? { tokenEnv: job.tokenEnv } : {}),
      }));
    if (fleetWs !== job.workspace) own.push(fleetWs);
    const fleet = await loadFleet(fleetWs.dir);
    const envSpec = fleet.spec.environments.find((e) => e.name === job.environment);
    if (!envSpec)
      throw new ConfigError(`environment "${job.environment}" is not declared`, { file: "shipmate.yaml" });
    let ws = fleetWs;
    if (envSpec.repository) {
      ws = await Workspace.acquire(envSpec.repository.url, {
        branch: envSpec.repository.branch,
        clone: true,
        env: job.env,
        ...(job.tokenEnv !== undefined ? { tokenEnv: job.tokenEnv } : {}),
      });
      own.push(ws);
    }
    const current = readEnvTree(ws.dir, envSpec);
    const declared = declaredCanaries(current);
    const result: RollbackResult = { environment: envSpec.name, rollbacks: [], forgeRequests: 0 };
    if (declared.length === 0) return result;

    const client = clientFor(job.kubeconfig, envSpec);
    const failed: { canary: CanaryEvidence; app: string; running: string[]; target?: string }[] = [];
    try {
      const read = job.canaries ?? (await readCanaries(client, declared));
      if ("error" in read) throw new UsageError(`cannot read the Canaries of ${envSpec.name}: ${read.error}`);
      for (const c of read) {
        if (c.phase !== "Failed") continue;
        const d = declared.find((x) => x.namespace === c.namespace && x.name === c.name);
        if (!d) continue;
        const running = d.target ? await targetImages(client, d.namespace, d.target.name) : [];
        failed.push({ canary: c, app: d.app, running });
      }
    } finally {
      client.close();
    }
    if (failed.length === 0) return result;
    // The previous pins are in history a shallow clone does not have yet.
    await ws.deepen(50);

    let forge = job.forgeClient;
    if (!forge && !job.dryRun) {
      const remote = envSpec.repository?.url ?? fleet.spec.repository?.url ?? (await originOf(ws.dir));
      forge = createForge(forgeOptions({ ...job.forge, ...(remote ? { remote } : {}) }, job.env));
    }
    const before = forge?.requestCount ?? 0;
    const known = forge ? await forge.listOpenPullRequests(BOT_PREFIX) : [];
    const base =
      envSpec.repository?.branch ?? job.branch ?? fleet.spec.repository?.branch ?? (await ws.currentBranch());
    if (!base) throw new UsageError("cannot tell the target branch (detached HEAD): pass --branch");
    for (const f of failed) {
      const report: RollbackReport = {
        app: f.app,
        canary: `${f.canary.namespace}/${f.canary.name}`,
        outcome: "skipped",
        closed: [],
      };
      result.rollbacks.push(report);
      const previous = await previousPins(ws.dir, current, f.app);
      const decision = rollbackDecision({
        app: f.app,
        canary: f.canary,
        current,
        previous,
        running: f.running,
      });
      if (decision.action === "skip" || !previous) {
        report.reason = decision.action === "skip" ? decision.reason : "no earlier pin";
        continue;
      }
      report.from = decision.failedVersion;
      report.to = decision.plan.changes.map((c) => c.to).join(", ");
      if (job.dryRun || !forge) {
        report.outcome = "dry-run";
        continue;
      }
      const branch = rollbackBranch(envSpec.name, f.app);
      await deliver(ws, {
        mode: { kind: "push-branch", branch, base },
        apply: async (how) => {
          const target = readEnvTree(how.dir, envSpec);
          const again = planPromotion(previous.tree, target, { apps: [f.app] });
          const updates = again.files.map((x) => ({ path: x.path, content: x.content, changes: [] }));
          if (!how.write) return updates;
          const written = await writeUpdates(how.dir, updates, target.stamps);
          return updates.filter((u) => written.written.includes(u.path));
        },
        message: () =>
          `Roll back ${f.app} in ${envSpec.name} to ${report.to}\n\nThe Flagger canary ${report.canary} failed at ${report.from}.\n`,
        author: job.author ?? IDENTITY,
        committer: job.author ?? IDENTITY,
        sign: job.sign ?? false,
      });
      const outcome = await forge.ensurePullRequest(
        {
          branch,
          base,
          title: `Roll back ${f.app} in ${envSpec.name} to ${report.to}`,
          intro: rollbackIntro(envSpec.name, f.app, f.canary, decision.failedVersion, previous),
          meta: makeMeta(changesOf(decision.plan, envSpec.name)),
          ...requestOptions(job, [envSpec.pullRequest]),
          ...(job.mergeMethod ? { mergeMethod: job.mergeMethod } : {}),
        },
        known,
      );
      report.outcome = "proposed";
      report.request = {
        action: outcome.action,
        ...("pullRequest" in outcome
          ? { number: outcome.pullRequest.number, url: outcome.pullRequest.url }
          : {}),
      };
      for (const pr of obsoleteForward(known, envSpec.name, decision.plan)) {
        const closed = await forge.closeStale(
          pr.branch,
          `The Flagger canary ${report.canary} failed in ${envSpec.name} at ${report.from}, which this request proposes; closing it${report.request.url ? ` in favour of the rollback ${report.request.url}` : ""}.`,
          known,
        );
        if (closed) report.closed.push({ number: pr.number, url: pr.url, branch: pr.branch });
      }
    }
    result.forgeRequests = (forge?.requestCount ?? 0) - before;
    return result;
  } finally {
    for (const w of own) w.dispose();
  }
}

function readEnvTree(dir: string, env: FleetEnvironment): EnvTree & { stamps: ReadonlyMap<string, string> } {
  const read = readTree(dir, { subdir: env.path, claimed: () => true });
  return { name: env.name, path: env.path, files: read.files, stamps: read.stamps };
}
