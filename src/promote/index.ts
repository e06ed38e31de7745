/**
 * One `promote` run: read shipmate.yaml, read what the source environment
 * pins, plan the target's edits (./plan.ts, pure), check the gates, and
 * deliver — a commit pushed to the target's branch (mode `push`) or a bot
 * branch and one pull request per promotion or per app (mode
 * `pull-request`), updated in place when the source moves on and closed when
 * nothing is left to promote. Shared by the CLI, the Action and the App.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { FleetContext } from "../config/context.ts";
import {
  FLEET_FILE,
  type Fleet,
  type FleetEnvironment,
  loadFleet,
  NoPromotionSourceError,
  promotionSource,
  UnknownEnvironmentError,
} from "../config/fleet.ts";
import { ConfigError, UsageError } from "../errors.ts";
import { createForge, type ForgeFlags, forgeOptions, originOf } from "../forge/index.ts";
import { BOT_PREFIX, type ProposalOutcome, propose, requestOptions } from "../forge/propose.ts";
import type { Forge, ImageChange, MergeMethod, PullRequest } from "../forge/types.ts";
import { deliver } from "../git/deliver.ts";
import { type Identity, Workspace } from "../git/workspace.ts";
import { KubeClient, loadKubeConfig } from "../kube/client.ts";
import { healthReport, healthyAt } from "../kube/control.ts";
import { notifyRun, promoteEvents, type RunNotifications } from "../notify/run.ts";
import { readTree, writeUpdates } from "../update/fs.ts";
import { clientFor, declaredCanaries, readCanaries } from "./canary.ts";
import { runConformance } from "./conformance.ts";
import {
  type CanaryEvidence,
  evaluateGates,
  type GateConfig,
  type GateState,
  type GateVerdict,
  gatesMarkdown,
  type HealthEvidence,
  overall,
} from "./gates.ts";
import {
  type EnvTree,
  type PlanProblem,
  type PromotedImage,
  type PromotionPlan,
  planPromotion,
} from "./plan.ts";
import { type RollbackResult, runRollback } from "./rollback.ts";

const run = promisify(execFile);

export interface PromoteJob {
  /** Fleet repository (holding shipmate.yaml): a local checkout or a clone URL. */
  repo: string;
  branch?: string;
  /** Source environment; default: the target's promotion source (its `promoteFrom`, else the one before it). */
  from?: string;
  to: string;
  /** The run's checkout of `repo`, when it has one (neither opened nor disposed here). */
  workspace?: Workspace;
  /** shipmate.yaml as the run already read it from that checkout. */
  fleet?: Fleet;
  /** The run's view of that checkout (src/config/context.ts): its one walk and one read of each file. */
  context?: FleetContext;
  apps?: string[];
  dryRun: boolean;
  /** One request per app instead of one per promotion. */
  perApp?: boolean;
  env: NodeJS.ProcessEnv;
  /** Environment variable holding the git HTTPS token (default SHIPMATE_GIT_TOKEN). */
  tokenEnv?: string;
  /** How to reach the forge (pull-request mode, checks gate); inferred from the remote where possible. */
  forge?: Omit<ForgeFlags, "remote">;
  /** A ready forge client (the App's, or a test's), used instead of `forge`. */
  forgeClient?: Forge;
  /** Gate settings on top of shipmate.yaml's `gates` of the target environment. */
  gates?: GateConfig;
  skipGates?: boolean;
  /** Kubeconfig of the source environment's cluster (health and conformance gates), and of the target's unless `targetKubeconfig`. */
  kubeconfig?: string;
  /** Kubeconfig of the target environment's cluster (canary gate, rollback), when another file reaches it. */
  targetKubeconfig?: string;
  /** Poll interval of a conformance Job (default 1s). */
  conformancePollMs?: number;
  /** Namespace of the agent's Kustomizations (all namespaces when absent). */
  healthNamespace?: string;
  labels?: string[];
  reviewers?: string[];
  autoMerge?: boolean;
  mergeMethod?: MergeMethod;
  author?: Identity;
  committer?: Identity;
  sign?: boolean;
  now?: Date;
}

export interface RequestReport {
  branch: string;
  apps: string[];
  outcome: ProposalOutcome["action"];
  number?: number;
  url?: string;
  /** Merged at once by auto-merge (the forge found it mergeable). */
  merged?: true;
}

export interface PromoteResult {
  from: string;
  to: string;
  /** The source commit the promotion was read from. */
  revision: string;
  mode: "push" | "pull-request";
  changes: PromotedImage[];
  skipped: PromotionPlan["skipped"];
  problems: PlanProblem[];
  gates: GateVerdict[];
  gateState: GateState;
  /** What happened: nothing to do, planned only, blocked by a gate, pushed, or requests opened/updated/closed. */
  status: "nothing-to-promote" | "dry-run" | "blocked" | "waiting" | "pushed" | "proposed" | "up-to-date";
  commit?: string;
  requests: RequestReport[];
  /** When the canary gate saw a Failed Canary: the rollback requests it opened or updated. */
  rollback?: RollbackResult;
  forgeRequests: number;
  /** What shipmate.yaml's `notifications:` sent about the promotion (warnings: providers that failed). */
  notifications?: RunNotifications;
}

const DEFAULT_IDENTITY: Identity = { name: "shipmate", email: "shipmate@users.noreply.invalid" };

function findEnv(envs: readonly FleetEnvironment[], name: string): FleetEnvironment {
  const env = envs.find((e) => e.name === name);
  if (!env)
    throw new UnknownEnvironmentError(
      name,
      envs.map((e) => e.name),
    );
  return env;
}

function readEnv(
  dir: string,
  env: FleetEnvironment,
  context: FleetContext | undefined,
): EnvTree & { stamps: ReadonlyMap<string, string> } {
  if (!existsSync(join(dir, env.path)))
    throw new ConfigError(`environment ${env.name}: its path ${env.path} does not exist in the repository`, {
      file: FLEET_FILE,
    });
  const read = readTree(context?.covers(dir) ? context : dir, { subdir: env.path, claimed: () => true });
  return { name: env.name, path: env.path, files: read.files, stamps: read.stamps };
}

/** When anything under `path` last changed, from git history; undefined in a shallow clone that cannot tell. */
async function lastChange(dir: string, path: string): Promise<Date | undefined> {
  const git = (...args: string[]) => run("git", args, { cwd: dir }).then((r) => r.stdout.trim());
  const out = await git("log", "-1", "--format=%H %ct", "--", path);
  const [sha, ts] = out.split(" ");
  if (!sha || !ts) return undefined;
  if ((await git("rev-parse", "--is-shallow-repository")) === "true") {
    // The shallow boundary commit claims every file as new: its date says nothing.
    const shallow = await git("rev-parse", "--git-path", "shallow");
    const boundary = await readFile(join(dir, shallow), "utf8").then(
      (t) => t.split("\n"),
      (): string[] => [],
    );
    if (boundary.includes(sha)) return undefined;
  }
  return new Date(Number(ts) * 1000);
}

function toImageChanges(changes: readonly PromotedImage[], from: string, to: string): ImageChange[] {
  return changes.map((c) => ({
    image: c.image,
    from: c.from,
    to: c.to,
    policy: c.app ? `${c.app} (${from} → ${to})` : `${from} → ${to}`,
    files: c.files,
  }));
}

export function promotionBranch(to: string, app?: string): string {
  return `${BOT_PREFIX}promote-${to}${app ? `-${app}` : ""}`;
}

function commitMessage(
  from: string,
  to: string,
  revision: string,
  changes: readonly PromotedImage[],
): string {
  const lines = changes.map((c) => `- ${c.app ? `${c.app}: ` : ""}${c.image} ${c.from} -> ${c.to}`);
  const head =
    changes.length === 1 && changes[0]
      ? `Promote ${changes[0].image} ${changes[0].to} from ${from} to ${to}`
      : `Promote ${changes.length} images from ${from} to ${to}`;
  return `${head}\n\n${lines.join("\n")}\n\nSource: ${from} at ${revision}\n`;
}

async function healthEvidence(job: PromoteJob, revision: string): Promise<HealthEvidence> {
  const client = new KubeClient(loadKubeConfig(job.kubeconfig), { retryForMs: 5_000 });
  try {
    const report = await healthReport(client, job.healthNamespace);
    return {
      healthy: report.healthy,
      atRevision: healthyAt(report, revision),
      revision: report.revision,
      unready: report.kustomizations
        .filter((k) => k.ready !== "True" || k.suspended)
        .map((k) => `${k.namespace}/${k.name} (${k.suspended ? "suspended" : k.message})`),
    };
  } finally {
    client.close();
  }
}

/**
 * The gates as a dry run sees them: what needs only the checkout (soak) and
 * the forge when one is at hand (checks) is evaluated; what would need a
 * token it does not have, or a cluster (health), is marked `not-evaluated`.
 */
async function dryRunGates(
  config: GateConfig,
  ctx: {
    from: string;
    revision: string;
    checksForge: Forge | undefined;
    noForge?: string;
    changedAt: () => Promise<Date | undefined>;
    now: Date;
  },
): Promise<GateVerdict[]> {
  const out: GateVerdict[] = [];
  for (const gate of ["checks", "health", "soak", "canary", "conformance"] as const) {
    if (!config[gate]) continue;
    if (gate === "health" || gate === "canary") {
      out.push({ gate, state: "not-evaluated", message: "dry run: the cluster is not asked" });
      continue;
    }
    if (gate === "conformance") {
      out.push({ gate, state: "not-evaluated", message: "dry run: the conformance test is not run" });
      continue;
    }
    if (gate === "checks" && !ctx.checksForge) {
      const why = ctx.noForge
        ? ctx.noForge.replace(/^no (\S+) token: /, "no forge token ($1): ")
        : "no forge";
      out.push({ gate, state: "not-evaluated", message: `dry run: ${why}` });
      continue;
    }
    const one: GateConfig = { [gate]: config[gate] };
    out.push(
      ...evaluateGates(one, {
        from: ctx.from,
        revision: ctx.revision,
        ...(gate === "checks" && ctx.checksForge
          ? { checks: await ctx.checksForge.commitChecks(ctx.revision) }
          : {}),
        ...(gate === "soak" ? { changedAt: await ctx.changedAt() } : {}),
        now: ctx.now,
      }),
    );
  }
  return out;
}

export async function runPromotion(job: PromoteJob): Promise<PromoteResult> {
  const open = (repo: string, branch?: string) =>
    Workspace.acquire(repo, {
      ...(branch !== undefined ? { branch } : {}),
      env: job.env,
      ...(job.tokenEnv !== undefined ? { tokenEnv: job.tokenEnv } : {}),
    });
  const workspaces: Workspace[] = [];
  try {
    const fleetWs = job.workspace ?? (await open(job.repo, job.branch));
    if (fleetWs !== job.workspace) workspaces.push(fleetWs);
    const fleet = job.fleet ?? (await loadFleet(fleetWs.dir));
    const envs = fleet.spec.environments;
    const toEnv = findEnv(envs, job.to);
    const from = job.from ?? promotionSource(fleet, toEnv.name)?.name;
    if (!from) throw new NoPromotionSourceError(toEnv.name);
    const fromEnv = findEnv(envs, from);
    if (fromEnv.name === toEnv.name) throw new UsageError("--from and --to name the same environment");
    if (toEnv.promoteFrom && toEnv.promoteFrom !== fromEnv.name)
      throw new ConfigError(
        `${toEnv.name} promotes from ${toEnv.promoteFrom} (promoteFrom), not from ${fromEnv.name}`,
        { file: FLEET_FILE },
      );
    const wsFor = async (env: FleetEnvironment) => {
      if (!env.repository) return fleetWs;
      // Another repository is always cloned, even when its URL is a local path.
      const ws = await Workspace.acquire(env.repository.url, {
        branch: env.repository.branch,
        clone: true,
        env: job.env,
        ...(job.tokenEnv !== undefined ? { tokenEnv: job.tokenEnv } : {}),
      });
      workspaces.push(ws);
      return ws;
    };
    const fromWs = await wsFor(fromEnv);
    const toWs = await wsFor(toEnv);
    const revision = (await fromWs.head()) ?? "";
    const fromTree = readEnv(fromWs.dir, fromEnv, job.context);
    const apps = job.apps?.length ? { apps: job.apps } : {};
    const plan = planPromotion(fromTree, readEnv(toWs.dir, toEnv, job.context), apps);
    const mode = toEnv.mode;
    const result: PromoteResult = {
      from: fromEnv.name,
      to: toEnv.name,
      revision,
      mode,
      changes: plan.changes,
      skipped: plan.skipped,
      problems: plan.problems,
      gates: [],
      gateState: "passed",
      status: "nothing-to-promote",
      requests: [],
      forgeRequests: 0,
    };

    let forge: Forge | undefined = job.forgeClient;
    const needForge =
      mode === "pull-request" || (!job.skipGates && (job.gates?.checks ?? toEnv.gates?.checks));
    // A dry run plans without a forge when it cannot have one (no token): the gates needing it are marked.
    let noForge: string | undefined;
    const forgeFor = (options: Parameters<typeof forgeOptions>[0]): Forge | undefined => {
      try {
        return createForge(forgeOptions(options, job.env));
      } catch (err) {
        if (!job.dryRun || !(err instanceof UsageError)) throw err;
        noForge = err.message;
        return undefined;
      }
    };
    if (!forge && needForge) {
      const remote = toEnv.repository?.url ?? fleet.spec.repository?.url ?? (await originOf(toWs.dir));
      forge = forgeFor({ ...job.forge, ...(remote ? { remote } : {}) });
    }
    // Repository per environment: the source commit's checks live in the source's repository.
    let checksForge = forge;
    if (
      fromEnv.repository &&
      fromEnv.repository.url !== toEnv.repository?.url &&
      needForge &&
      !job.forgeClient
    ) {
      const { forgeRepo: _target, ...rest } = job.forge ?? {};
      checksForge = forgeFor({ ...rest, remote: fromEnv.repository.url });
    }
    const countFrom =
      (forge?.requestCount ?? 0) + (checksForge !== forge ? (checksForge?.requestCount ?? 0) : 0);
    const finish = () => {
      const now = (forge?.requestCount ?? 0) + (checksForge !== forge ? (checksForge?.requestCount ?? 0) : 0);
      result.forgeRequests = now - countFrom;
      return result;
    };

    if (job.dryRun) {
      result.status = plan.changes.length ? "dry-run" : "nothing-to-promote";
      if (plan.changes.length && !job.skipGates)
        result.gates = await dryRunGates(
          { ...toEnv.gates, ...job.gates },
          {
            from: fromEnv.name,
            revision,
            checksForge,
            ...(noForge ? { noForge } : {}),
            changedAt: () => lastChange(fromWs.dir, fromEnv.path),
            now: job.now ?? new Date(),
          },
        );
      return finish();
    }

    // Nothing to promote: in pull-request mode, requests proposing an older state are obsolete.
    const known = mode === "pull-request" && forge ? await forge.listOpenPullRequests(BOT_PREFIX) : [];
    if (plan.changes.length === 0) {
      if (forge && mode === "pull-request") await closeObsolete(forge, known, toEnv.name, new Set(), result);
      return finish();
    }

    let gateIntro: string | undefined;
    if (!job.skipGates) {
      const { conformance, ...config }: GateConfig = { ...toEnv.gates, ...job.gates };
      let canaries: CanaryEvidence[] | { error: string } | undefined;
      if (config.canary) {
        const promotedApps = [...new Set(plan.changes.map((c) => c.app))];
        const declared = declaredCanaries(readEnv(toWs.dir, toEnv, job.context), promotedApps);
        if (declared.length === 0) canaries = [];
        else {
          try {
            const client = clientFor(job.targetKubeconfig ?? job.kubeconfig, toEnv);
            try {
              canaries = await readCanaries(client, declared);
            } finally {
              client.close();
            }
          } catch (err) {
            canaries = { error: (err as Error).message };
          }
        }
      }
      const evidence = {
        from: fromEnv.name,
        revision,
        to: toEnv.name,
        ...(config.checks && checksForge ? { checks: await checksForge.commitChecks(revision) } : {}),
        ...(config.health ? { health: await healthEvidence(job, revision) } : {}),
        ...(config.soak ? { changedAt: await lastChange(fromWs.dir, fromEnv.path) } : {}),
        ...(canaries ? { canaries } : {}),
        now: job.now ?? new Date(),
      };
      const verdicts = evaluateGates(config, evidence);
      // The conformance test runs only once everything else holds: it costs a test run.
      if (conformance) {
        if (overall(verdicts) !== "passed")
          verdicts.push({ gate: "conformance", state: "waiting", message: "runs once the other gates pass" });
        else
          verdicts.push(
            ...evaluateGates(
              { conformance },
              {
                ...evidence,
                conformance: await runConformance({
                  config: conformance,
                  revision,
                  environment: fromEnv.name,
                  dir: fromWs.dir,
                  ...(job.kubeconfig ? { kubeconfig: job.kubeconfig } : {}),
                  client: () => clientFor(job.kubeconfig, fromEnv),
                  env: job.env,
                  ...(job.conformancePollMs ? { pollMs: job.conformancePollMs } : {}),
                }),
              },
            ),
          );
      }
      result.gates = verdicts;
      result.gateState = overall(verdicts);
      gateIntro = verdicts.length ? gatesMarkdown(verdicts) : undefined;
      // A Failed canary in the target: propose what it ran before (./rollback.ts), through the same forge.
      if (Array.isArray(canaries) && canaries.some((c) => c.phase === "Failed") && forge) {
        result.rollback = await runRollback({
          repo: job.repo,
          ...(job.branch !== undefined ? { branch: job.branch } : {}),
          environment: toEnv.name,
          workspace: toWs,
          env: job.env,
          ...(job.tokenEnv !== undefined ? { tokenEnv: job.tokenEnv } : {}),
          forgeClient: forge,
          ...((job.targetKubeconfig ?? job.kubeconfig)
            ? { kubeconfig: job.targetKubeconfig ?? job.kubeconfig }
            : {}),
          canaries,
          ...(job.labels ? { labels: job.labels } : {}),
          ...(job.author ? { author: job.author } : {}),
          ...(job.sign !== undefined ? { sign: job.sign } : {}),
        });
      }
      if (result.gateState !== "passed") {
        result.status = result.gateState === "failed" ? "blocked" : "waiting";
        // An open request for this promotion says why it is held, in the same words.
        if (forge && mode === "pull-request" && gateIntro)
          await explainHold(forge, known, toEnv.name, gateIntro, result);
        return finish();
      }
    }

    const who = {
      author: job.author ?? DEFAULT_IDENTITY,
      committer: job.committer ?? job.author ?? DEFAULT_IDENTITY,
      sign: job.sign ?? false,
    };
    const base =
      toEnv.repository?.branch ?? job.branch ?? fleet.spec.repository?.branch ?? (await toWs.currentBranch());
    if (!base) throw new UsageError("cannot tell the target branch (detached HEAD): pass --branch");
    // The edit is recomputed on the target branch's current head on every attempt (never a stale patch).
    const applyFor = (only?: string) => async (how: { dir: string; write: boolean }) => {
      const target = readEnv(how.dir, toEnv, job.context);
      const again = planPromotion(fromTree, target, only ? { apps: [only] } : apps);
      const updates = again.files.map((f) => ({ path: f.path, content: f.content, changes: [] }));
      if (!how.write) return updates;
      // The stamps taken at read time make the write refuse a file that changed underneath.
      const written = await writeUpdates(how.dir, updates, target.stamps);
      if (job.context?.covers(how.dir)) job.context.changed(written.written);
      if (written.problems.length)
        throw new ConfigError(written.problems.map((p) => `${p.file}: ${p.message}`).join("; "));
      return updates.filter((u) => written.written.includes(u.path));
    };

    if (mode === "push") {
      const delivery = await deliver(toWs, {
        mode: { kind: "push", branch: base },
        apply: applyFor(),
        message: () => commitMessage(fromEnv.name, toEnv.name, revision, plan.changes),
        ...who,
      });
      result.status = delivery.pushed ? "pushed" : "up-to-date";
      if (delivery.commit) result.commit = delivery.commit;
      await notify(fleet, result, job.env);
      return finish();
    }

    if (!forge) throw new UsageError("pull-request mode needs a forge: pass --forge and a token");
    const groups = job.perApp
      ? [...new Set(plan.changes.map((c) => c.app))].map((app) => ({
          app,
          changes: plan.changes.filter((c) => c.app === app),
        }))
      : [{ app: undefined, changes: plan.changes }];
    const active = new Set<string>();
    for (const g of groups) {
      const branch = promotionBranch(toEnv.name, g.app || undefined);
      active.add(branch);
      await deliver(toWs, {
        mode: { kind: "push-branch", branch, base },
        apply: applyFor(g.app),
        message: () => commitMessage(fromEnv.name, toEnv.name, revision, g.changes),
        ...who,
      });
      const groupApps = [...new Set(g.changes.map((c) => c.app).filter(Boolean))];
      const outcome = await propose({
        forge,
        branch,
        base,
        title:
          g.changes.length === 1 && g.changes[0]
            ? `Promote ${g.changes[0].image} ${g.changes[0].to} to ${toEnv.name}`
            : `Promote ${fromEnv.name} to ${toEnv.name}${g.app ? ` (${g.app})` : ""}`,
        changes: toImageChanges(g.changes, fromEnv.name, toEnv.name),
        promotion: {
          from: fromEnv.name,
          to: toEnv.name,
          revision,
          ...(groupApps.length ? { apps: groupApps } : {}),
        },
        known,
        ...(gateIntro ? { intro: gateIntro } : {}),
        ...requestOptions(job, [toEnv.pullRequest]),
        ...(job.mergeMethod ? { mergeMethod: job.mergeMethod } : {}),
      });
      result.requests.push(report(branch, groupApps, outcome));
    }
    await closeObsolete(forge, known, toEnv.name, active, result);
    result.status = "proposed";
    await notify(fleet, result, job.env);
    return finish();
  } finally {
    for (const ws of workspaces) ws.dispose();
  }
}

/** The promotion's news to shipmate.yaml's `notifications:` (bounded wait; failures are warnings). */
async function notify(fleet: Fleet, result: PromoteResult, env: NodeJS.ProcessEnv): Promise<void> {
  const sent = await notifyRun(fleet.spec.notifications, promoteEvents(fleet, result), { env });
  if (sent) result.notifications = sent;
}

function report(branch: string, apps: string[], outcome: ProposalOutcome): RequestReport {
  const pr = "pullRequest" in outcome ? outcome.pullRequest : undefined;
  return {
    branch,
    apps,
    outcome: outcome.action,
    ...(pr ? { number: pr.number, url: pr.url } : {}),
    ...("autoMerge" in outcome && outcome.autoMerge === "merged" ? { merged: true as const } : {}),
  };
}

/** Writes the held gates into this target's open promotion requests (their proposal unchanged). */
async function explainHold(
  forge: Forge,
  known: readonly PullRequest[],
  to: string,
  intro: string,
  result: PromoteResult,
): Promise<void> {
  const prefix = promotionBranch(to);
  for (const pr of known) {
    if (!(pr.branch === prefix || pr.branch.startsWith(`${prefix}-`)) || !pr.meta) continue;
    if (pr.meta.promotion && pr.meta.promotion.to !== to) continue;
    const outcome = await forge.ensurePullRequest(
      { branch: pr.branch, base: pr.base, title: pr.title, intro, meta: pr.meta },
      [pr],
    );
    result.requests.push(report(pr.branch, pr.meta.promotion?.apps ?? [], outcome));
  }
}

/** Close this target's promotion requests that no longer propose anything (per-app ones whose app caught up). */
async function closeObsolete(
  forge: Forge,
  known: readonly PullRequest[],
  to: string,
  active: ReadonlySet<string>,
  result: PromoteResult,
): Promise<void> {
  const prefix = promotionBranch(to);
  for (const pr of known) {
    if (active.has(pr.branch) || !(pr.branch === prefix || pr.branch.startsWith(`${prefix}-`))) continue;
    if (pr.meta?.promotion && pr.meta.promotion.to !== to) continue;
    await forge.closeStale(
      pr.branch,
      `Nothing is left to promote here: ${to} already runs what this request proposed. Closing.`,
      [pr],
    );
    result.requests.push({
      branch: pr.branch,
      apps: pr.meta?.promotion?.apps ?? [],
      outcome: "closed",
      number: pr.number,
      url: pr.url,
    });
  }
}
