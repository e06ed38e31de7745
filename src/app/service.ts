/**
 * What the App does for each event, on the engine: refresh (scan + deliver),
 * promote, validate, and the dashboard issue. Work runs after the webhook
 * has been answered, one task at a time per repository (refreshes of one
 * repository coalesce), with the installation's Octokit as the only GitHub
 * client and its token as the only git credential.
 */
import type { Logger } from "pino";
import type { Probot, ProbotOctokit } from "probot";
import type { z } from "zod";
import { timerMs } from "../config/duration.ts";
import { PolicyConfigError } from "../config/errors.ts";
import {
  type Fleet,
  loadFleet,
  NoFleetError,
  NoPromotionSourceError,
  UnknownEnvironmentError,
} from "../config/fleet.ts";
import { loadRunPolicies, type PolicySet } from "../config/policy-set.ts";
import type { TreeSource } from "../config/tree.ts";
import type { Policy } from "../config/types.ts";
import { ConfigError, describeError, registerSecret } from "../errors.ts";
import type { OctokitLike } from "../forge/github/index.ts";
import { createForge } from "../forge/index.ts";
import { BOT_PREFIX } from "../forge/propose.ts";
import type { Forge } from "../forge/types.ts";
import { DEFAULT_TOKEN_ENV } from "../git/auth.ts";
import { type Identity, Workspace } from "../git/workspace.ts";
import type { PromoteResult } from "../promote/index.ts";
import type { CredentialProvider } from "../registry/index.ts";
import { type PromoteTarget, runPromote } from "../run/promote.ts";
import { runUpdate, type UpdateRunResult } from "../run/update.ts";
import { validateTree } from "../validate/validate.ts";
import type { ImagePush } from "../webhooks/events.ts";
import { CoalescingQueue, mergeScopes, type RefreshScope } from "../webhooks/queue.ts";
import { annotations, batches, CHECK_NAME, checkSummary, type Finding, touchesFleet } from "./checks.ts";
import { mayCommand, NOT_CONFIGURED, parseCommand, refusal, USAGE } from "./commands.ts";
import {
  DASHBOARD_MARKER,
  DASHBOARD_TITLE,
  type DashboardImage,
  readDeployed,
  renderDashboard,
  trackedImages,
} from "./dashboard.ts";
import * as S from "./schemas.ts";

export interface AppSettings {
  /** Refresh every repository of every installation this often (ms); 0 turns the schedule off. */
  scheduleMs: number;
  /** Keep a dashboard issue in configured repositories. */
  dashboard: boolean;
  /** Validate pull requests that touch YAML, as a check run. */
  checks: boolean;
  insecureRegistries: string[];
  /** Registry credentials (default: SHIPMATE_REGISTRY_* variables, then Docker's config). */
  credentials?: CredentialProvider;
  /** The environment engine calls inherit (git, kustomize, registry variables). */
  env: NodeJS.ProcessEnv;
  now?: () => Date;
}

/** A repository of an installation, as much as the work on it needs. */
export interface RepoTarget {
  installationId: number;
  owner: string;
  name: string;
  fullName: string;
  cloneUrl: string;
  defaultBranch: string;
}

interface RepoState {
  target: RepoTarget;
  queue: CoalescingQueue<RefreshScope>;
  /** Serialises every task that touches the repository. */
  chain: Promise<unknown>;
  /** Images the updatable policies watch; null: no shipmate configuration; undefined: not read yet. */
  watched: Set<string> | null | undefined;
  /** Newest allowed version per image from the latest scans, or why there is none. */
  available: Map<string, { version: string } | { error: string }>;
  errors: string[];
}

interface Session {
  octokit: ProbotOctokit;
  forge: Forge;
  env: NodeJS.ProcessEnv;
}

export function targetOf(installationId: number, repo: S.Repository): RepoTarget {
  return {
    installationId,
    owner: repo.owner.login,
    name: repo.name,
    fullName: repo.full_name,
    cloneUrl: repo.clone_url,
    defaultBranch: repo.default_branch,
  };
}

const YAML = /\.ya?ml$|(^|\/)Kustomization$/i;

export class ShipmateService {
  readonly settings: AppSettings;
  #app: Probot | undefined;
  #log: Logger | undefined;
  readonly #repos = new Map<string, RepoState>();
  readonly #inflight = new Set<Promise<unknown>>();
  #timer: NodeJS.Timeout | undefined;
  #botLogin: Promise<string> | undefined;

  constructor(settings: AppSettings) {
    this.settings = settings;
  }

  attach(app: Probot): void {
    this.#app = app;
    this.#log = app.log.child({ name: "shipmate" });
    if (this.settings.scheduleMs > 0) {
      this.#timer = setInterval(() => this.schedule(), timerMs(this.settings.scheduleMs));
      this.#timer.unref();
    }
  }

  get log(): Logger {
    if (!this.#log) throw new Error("the shipmate service is not attached to a Probot app");
    return this.#log;
  }

  get #probot(): Probot {
    if (!this.#app) throw new Error("the shipmate service is not attached to a Probot app");
    return this.#app;
  }

  /** Resolves when no task is running or queued (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.idle();
  }

  /** Runs `work` after the answer, reporting its failure instead of throwing. */
  #track(what: string, work: () => Promise<unknown>): void {
    const p = work().catch((err: unknown) =>
      this.log.error({ err: describeError(err) }, `${what} failed: ${describeError(err)}`),
    );
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
  }

  #state(target: RepoTarget): RepoState {
    let st = this.#repos.get(target.fullName);
    if (!st) {
      const created: RepoState = {
        target,
        chain: Promise.resolve(),
        watched: undefined,
        available: new Map(),
        errors: [],
        queue: new CoalescingQueue<RefreshScope>(
          (scope) => this.#exclusive(created, () => this.#refresh(created, scope)),
          mergeScopes,
        ),
      };
      st = created;
      this.#repos.set(target.fullName, st);
    }
    st.target = target;
    return st;
  }

  /** One task at a time per repository. */
  #exclusive<T>(st: RepoState, task: () => Promise<T>): Promise<T> {
    const run = st.chain.then(task, task);
    st.chain = run.catch(() => undefined);
    return run;
  }

  async #session(target: RepoTarget): Promise<Session> {
    const octokit = await this.#probot.auth(target.installationId);
    // A token for git, limited to this one repository, asked for as the App (through the API base the
    // App is configured with: GitHub Enterprise included).
    const auth = await this.#get(
      await this.#probot.auth(),
      S.InstallationToken,
      "POST /app/installations/{installation_id}/access_tokens",
      { installation_id: target.installationId, repositories: [target.name] },
    );
    registerSecret(auth.token);
    return {
      octokit,
      forge: createForge({
        kind: "github",
        repo: target.fullName,
        octokit: octokit as unknown as OctokitLike,
      }),
      // The installation token reaches git through this environment only (askpass), never a URL or a file.
      env: { ...this.settings.env, [DEFAULT_TOKEN_ENV]: auth.token },
    };
  }

  async #get<T extends z.ZodType>(
    octokit: ProbotOctokit,
    schema: T,
    route: string,
    params: Record<string, unknown>,
  ) {
    const res = await octokit.request(route, params);
    return schema.parse(res.data) as z.infer<T>;
  }

  /** The App's bot account (`<slug>[bot]`): commit author, and the pusher whose pushes need no refresh. */
  botLogin(): Promise<string> {
    this.#botLogin ??= this.#probot
      .auth()
      .then((octokit) => this.#get(octokit, S.App, "GET /app", {}))
      .then((app) => `${app?.slug ?? "shipmate"}[bot]`);
    this.#botLogin.catch(() => {
      this.#botLogin = undefined;
    });
    return this.#botLogin;
  }

  async #identity(): Promise<Identity> {
    const login = await this.botLogin();
    return { name: login, email: `${login}@users.noreply.github.com` };
  }

  async #installationRepos(installationId: number): Promise<RepoTarget[]> {
    const octokit = await this.#probot.auth(installationId);
    const out: RepoTarget[] = [];
    for (let page = 1; page <= 50; page++) {
      const data = await this.#get(octokit, S.InstallationRepositories, "GET /installation/repositories", {
        per_page: 100,
        page,
      });
      for (const r of data.repositories) if (!r.archived) out.push(targetOf(installationId, r));
      if (data.repositories.length < 100) break;
    }
    return out;
  }

  // ------------------------------------------------------------------ events

  /** A container image was published (GHCR `registry_package` / `package`): refresh the repositories watching it. */
  packagePublished(installationId: number, pushes: ImagePush[]): void {
    if (pushes.length === 0) return;
    this.#track("registry package", () => this.#refreshWatching(installationId, pushes));
  }

  /** A registry webhook (/hooks/registry): the same, across every installation. */
  registryPushes(pushes: ImagePush[]): void {
    this.#track("registry webhook", async () => {
      const octokit = await this.#probot.auth();
      const installations = await this.#get(octokit, S.Installations, "GET /app/installations", {
        per_page: 100,
      });
      await Promise.all(installations.map((i) => this.#refreshWatching(i.id, pushes)));
    });
  }

  async #refreshWatching(installationId: number, pushes: ImagePush[]): Promise<void> {
    const images = new Set(pushes.map((p) => p.image));
    const repos = await this.#installationRepos(installationId);
    const runs: Promise<void>[] = [];
    for (const target of repos) {
      const st = this.#state(target);
      // Known not to watch any of these (or not configured at all): no clone, no scan.
      if (st.watched === null || (st.watched && ![...images].some((i) => st.watched?.has(i)))) continue;
      runs.push(st.queue.request({ kind: "images", images }));
    }
    await Promise.all(runs);
  }

  /** A push to the default branch: policies may have changed, open requests may be stale. */
  push(payload: z.infer<typeof S.PushEvent>): void {
    const target = targetOf(payload.installation.id, payload.repository);
    if (payload.ref !== `refs/heads/${target.defaultBranch}`) return;
    const touched = payload.commits.flatMap((c) => [
      ...(c.added ?? []),
      ...(c.modified ?? []),
      ...(c.removed ?? []),
    ]);
    if (payload.commits.length > 0 && !touched.some((f) => YAML.test(f))) return;
    this.#track("push", async () => {
      if (payload.sender.login === (await this.botLogin())) return;
      const st = this.#state(target);
      st.watched = undefined;
      await st.queue.request({ kind: "all" });
    });
  }

  /** Every configured repository of every installation (the schedule, for registries that send nothing). */
  schedule(): void {
    this.#track("schedule", async () => {
      const octokit = await this.#probot.auth();
      const installations = await this.#get(octokit, S.Installations, "GET /app/installations", {
        per_page: 100,
      });
      await Promise.all(installations.map((i) => this.#refreshInstallation(i.id)));
    });
  }

  /** A new installation or newly added repositories: look at each once. */
  installed(installationId: number): void {
    this.#track("installation", () => this.#refreshInstallation(installationId));
  }

  async #refreshInstallation(installationId: number): Promise<void> {
    const repos = await this.#installationRepos(installationId);
    await Promise.all(
      repos.map((target) => {
        const st = this.#state(target);
        return st.watched === null ? undefined : st.queue.request({ kind: "all" });
      }),
    );
  }

  /** A merged pull request that changed an environment others promote from starts their promotion. */
  pullRequestMerged(payload: z.infer<typeof S.PullRequestEvent>): void {
    if (!payload.pull_request.merged) return;
    const target = targetOf(payload.installation.id, payload.repository);
    if (payload.pull_request.base.ref !== target.defaultBranch) return;
    this.#track("promotion after merge", () =>
      this.#exclusive(this.#state(target), async () => {
        const session = await this.#session(target);
        const files = await this.#pullFiles(session.octokit, target, payload.number);
        const results = await this.#promote(target, session, { kind: "changed", files });
        const said = results.filter((r) => r.status !== "nothing-to-promote" && r.status !== "up-to-date");
        if (said.length)
          await this.#comment(session.octokit, target, payload.number, said.map(promotionReply).join("\n\n"));
      }),
    );
  }

  /** One checkout: shipmate.yaml read once, every promotion the target starts made from that checkout. */
  async #promote(target: RepoTarget, session: Session, into: PromoteTarget): Promise<PromoteResult[]> {
    const who = await this.#identity();
    return runPromote({
      repo: target.cloneUrl,
      branch: target.defaultBranch,
      target: into,
      dryRun: false,
      env: session.env,
      tokenEnv: DEFAULT_TOKEN_ENV,
      forgeClient: session.forge,
      author: who,
      committer: who,
      ...(this.settings.now ? { now: this.settings.now() } : {}),
    });
  }

  /** `/shipmate …` comments: from people with write access only. */
  comment(payload: z.infer<typeof S.IssueCommentEvent>): void {
    if (payload.action !== "created" || payload.comment.user.type === "Bot") return;
    const command = parseCommand(payload.comment.body);
    if (!command) return;
    const target = targetOf(payload.installation.id, payload.repository);
    const user = payload.comment.user.login;
    const issue = payload.issue.number;
    this.#track(`/shipmate ${command.kind}`, async () => {
      const session = await this.#session(target);
      const { permission } = await this.#get(
        session.octokit,
        S.CollaboratorPermission,
        "GET /repos/{owner}/{repo}/collaborators/{username}/permission",
        { owner: target.owner, repo: target.name, username: user },
      );
      if (!mayCommand(permission)) {
        this.log.warn({ repo: target.fullName, user, permission }, "command refused: no write access");
        await this.#comment(session.octokit, target, issue, refusal(user, permission));
        return;
      }
      const st = this.#state(target);
      let reply: string;
      try {
        if (command.kind === "help")
          reply = `${command.problem ? `@${user} ${command.problem}.\n\n` : ""}${USAGE}`;
        else if (command.kind === "rescan") {
          st.watched = undefined;
          await st.queue.request({ kind: "all" });
          reply = st.watched === null ? NOT_CONFIGURED : rescanReply(st);
        } else {
          const results = await this.#exclusive(st, () =>
            this.#promote(target, session, { kind: "environment", to: command.to }),
          );
          reply = results.map(promotionReply).join("\n\n");
        }
      } catch (err) {
        reply = commandFailure(err);
      }
      await this.#comment(session.octokit, target, issue, reply);
    });
  }

  /** Pull requests that touch YAML get a "shipmate validate" check run with findings as annotations. */
  pullRequestChanged(payload: z.infer<typeof S.PullRequestEvent>): void {
    if (!this.settings.checks) return;
    const target = targetOf(payload.installation.id, payload.repository);
    const pr = payload.pull_request;
    this.#track("validate check", async () => {
      const session = await this.#session(target);
      const files = await this.#pullFiles(session.octokit, target, payload.number);
      if (!touchesFleet(files)) return;
      const repo = { owner: target.owner, repo: target.name };
      const created = await this.#get(session.octokit, S.CheckRun, "POST /repos/{owner}/{repo}/check-runs", {
        ...repo,
        name: CHECK_NAME,
        head_sha: pr.head.sha,
        status: "in_progress",
      });
      const finish = (params: Record<string, unknown>) =>
        session.octokit.request("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", {
          ...repo,
          check_run_id: created.id,
          ...params,
        });
      try {
        const cloneUrl = pr.head.repo?.clone_url ?? target.cloneUrl;
        const { findings, stats } = await this.#withClone(
          { ...target, cloneUrl, defaultBranch: pr.head.ref },
          session,
          (ws) => validateCheckout(ws.dir, this.settings.env),
        );
        const { title, summary } = checkSummary(findings, stats);
        const all = annotations(findings, CHECK_NAME);
        const [first = [], ...rest] = batches(all);
        // Annotations beyond the first 50 go in further updates; the conclusion comes with the last one.
        for (const batch of [first, ...rest].slice(0, -1))
          await finish({ output: { title, summary, annotations: batch } });
        await finish({
          status: "completed",
          conclusion: findings.length ? "failure" : "success",
          output: { title, summary, annotations: rest.length ? rest[rest.length - 1] : first },
        });
      } catch (err) {
        await finish({
          status: "completed",
          conclusion: "neutral",
          output: { title: "shipmate could not validate this change", summary: describeError(err) },
        });
      }
    });
  }

  // ------------------------------------------------------------------ work

  /**
   * One refresh: one clone, in which the update runs and, once it has
   * delivered, the dashboard reads what each environment runs.
   */
  async #refresh(st: RepoState, scope: RefreshScope): Promise<void> {
    const target = st.target;
    let session: Session | undefined;
    let view: DashboardView | undefined;
    try {
      session = await this.#session(target);
      const who = await this.#identity();
      const result = await runUpdate({
        repo: target.cloneUrl,
        branch: target.defaultBranch,
        policies: { kind: "repo" },
        scope,
        dryRun: false,
        env: session.env,
        scan: {
          insecureRegistries: this.settings.insecureRegistries,
          ...(this.settings.credentials ? { credentials: this.settings.credentials } : {}),
        },
        forge: session.forge,
        author: who,
        committer: who,
        ...(this.settings.dashboard
          ? {
              inspect: async ({ dir, policies }: { dir: string; policies: PolicySet }) => {
                // The run's own walk and reads of the checkout, brought up to what it delivered.
                view = dashboardView(
                  policies.context.covers(dir) ? policies.context : dir,
                  policies.known,
                  policies.fleet,
                );
              },
            }
          : {}),
      });
      this.#record(st, scope, result);
    } catch (err) {
      st.errors = [describeError(err)];
      this.log.error(
        { repo: target.fullName, err: describeError(err) },
        `refresh failed: ${describeError(err)}`,
      );
    }
    if (session && this.settings.dashboard && st.watched !== null) {
      const s = session;
      await (async () => {
        // A refresh that failed before its checkout read the tree: read it in a checkout of its own.
        view ??= await this.#withClone(target, s, async (ws) => {
          const policies = await loadRunPolicies(ws.dir, { kind: "repo" }).catch(() => undefined);
          const fleet = policies ? policies.fleet : await loadFleet(ws.dir).catch(() => undefined);
          return dashboardView(ws.dir, policies?.known ?? [], fleet);
        });
        await this.#dashboard(st, s, view);
      })().catch((err: unknown) =>
        this.log.error(
          { repo: target.fullName, err: describeError(err) },
          `dashboard not updated: ${describeError(err)}`,
        ),
      );
    }
  }

  #record(st: RepoState, scope: RefreshScope, result: UpdateRunResult): void {
    st.watched = result.skippedBecause === "no-policies" ? null : new Set(result.watched);
    for (const s of result.scan) {
      const image = s.ok ? s.image : undefined;
      if (s.ok && image) st.available.set(image, { version: `${s.tag}${s.digest ? `@${s.digest}` : ""}` });
      else if (!s.ok) st.available.set(s.policy.image, { error: s.message });
    }
    st.errors = [
      ...result.scan.flatMap((s) => (s.ok ? [] : [`${s.policy.id}: ${s.message}`])),
      ...result.problems
        .filter((p) => p.severity === "error")
        .map((p) => `${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`),
    ];
    this.log.info(
      {
        repo: st.target.fullName,
        scope: scope.kind === "all" ? "all" : [...scope.images],
        policies: result.policies.length,
        commit: result.push?.commit ?? null,
        request: result.request?.request.action ?? null,
        skipped: result.skipped ?? null,
      },
      "refreshed",
    );
  }

  async #dashboard(st: RepoState, session: Session, view: DashboardView): Promise<void> {
    const target = st.target;
    const images: DashboardImage[] = [...view.tracked].map(([image, policies]) => {
      const available = st.available.get(image);
      return {
        image,
        policies,
        deployed: view.deployed.get(image) ?? {},
        ...(available ? { available } : {}),
      };
    });
    const data = { environments: view.environments, images };
    const open = await session.forge.listOpenPullRequests(BOT_PREFIX);
    const body = renderDashboard({
      ...data,
      requests: open.map((p) => ({ number: p.number, url: p.url, title: p.title })),
      errors: st.errors,
      updatedAt: (this.settings.now?.() ?? new Date()).toISOString(),
    });
    const repo = { owner: target.owner, repo: target.name };
    const creator = await this.botLogin();
    const issues = await this.#get(session.octokit, S.Issues, "GET /repos/{owner}/{repo}/issues", {
      ...repo,
      state: "open",
      creator,
      per_page: 100,
    });
    const existing = issues.find((i) => !i.pull_request && i.body?.startsWith(DASHBOARD_MARKER));
    if (!existing)
      await session.octokit.request("POST /repos/{owner}/{repo}/issues", {
        ...repo,
        title: DASHBOARD_TITLE,
        body,
      });
    else if (stripTime(existing.body ?? "") !== stripTime(body))
      await session.octokit.request("PATCH /repos/{owner}/{repo}/issues/{issue_number}", {
        ...repo,
        issue_number: existing.number,
        body,
      });
  }

  async #withClone<T>(target: RepoTarget, session: Session, read: (ws: Workspace) => Promise<T>): Promise<T> {
    return Workspace.with(
      target.cloneUrl,
      { branch: target.defaultBranch, env: session.env, tokenEnv: DEFAULT_TOKEN_ENV },
      read,
    );
  }

  async #pullFiles(octokit: ProbotOctokit, target: RepoTarget, number: number): Promise<string[]> {
    const out: string[] = [];
    // GitHub lists at most 3000 files of a pull request, 100 a page.
    for (let page = 1; page <= 30; page++) {
      const files = await this.#get(
        octokit,
        S.PullFiles,
        "GET /repos/{owner}/{repo}/pulls/{pull_number}/files",
        {
          owner: target.owner,
          repo: target.name,
          pull_number: number,
          per_page: 100,
          page,
        },
      );
      for (const f of files) out.push(f.filename, ...(f.previous_filename ? [f.previous_filename] : []));
      if (files.length < 100) break;
    }
    return out;
  }

  async #comment(octokit: ProbotOctokit, target: RepoTarget, issue: number, body: string): Promise<void> {
    await octokit.request("POST /repos/{owner}/{repo}/issues/{issue_number}/comments", {
      owner: target.owner,
      repo: target.name,
      issue_number: issue,
      body,
    });
  }
}

/** What the dashboard shows of a checkout: the images the policies track and what each environment runs. */
interface DashboardView {
  environments: ReturnType<typeof readDeployed>["environments"];
  deployed: ReturnType<typeof readDeployed>["deployed"];
  tracked: ReturnType<typeof trackedImages>;
}

function dashboardView(
  dir: string | TreeSource,
  known: readonly Policy[],
  fleet: Fleet | undefined,
): DashboardView {
  const tracked = trackedImages(known);
  const { environments, deployed } = readDeployed(dir, fleet, new Set(tracked.keys()));
  return { environments, deployed, tracked };
}

/** Why a command could not be done, told apart by the error's class. */
function commandFailure(err: unknown): string {
  if (err instanceof NoFleetError) return NOT_CONFIGURED;
  if (err instanceof UnknownEnvironmentError)
    return `There is no environment \`${err.environment}\` in shipmate.yaml (environments: ${err.declared.join(", ")}).`;
  if (err instanceof NoPromotionSourceError)
    return `\`${err.environment}\` is the first environment: there is nothing to promote into it.`;
  return `shipmate could not do that: ${describeError(err)}`;
}

/** The dashboard's timestamp alone is no reason to edit the issue. */
function stripTime(body: string): string {
  return body.replace(/<sub>Updated [^<]*<\/sub>/, "");
}

function rescanReply(st: RepoState): string {
  if (st.errors.length) return `Rescanned, with problems:\n\n${st.errors.map((e) => `- ${e}`).join("\n")}`;
  return "Rescanned: every tracked image is checked, and what changed has been delivered (see the dashboard issue).";
}

export function promotionReply(r: PromoteResult): string {
  const head = `**Promotion ${r.from} → ${r.to}**`;
  const rows = r.changes
    .map((c) => `- ${c.app ? `${c.app}: ` : ""}\`${c.image}\` ${c.from} → ${c.to}`)
    .join("\n");
  const gates = r.gates
    .filter((g) => g.state !== "passed")
    .map((g) => `- ${g.gate} (${g.state}): ${g.message}`);
  switch (r.status) {
    case "nothing-to-promote":
      return `${head}: nothing to promote, ${r.to} already runs what ${r.from} runs.`;
    case "up-to-date":
      return `${head}: ${r.to} is already up to date.`;
    case "dry-run":
      return `${head} (dry run):\n\n${rows}`;
    case "blocked":
      return `${head} is blocked by a gate:\n\n${gates.join("\n")}`;
    case "waiting":
      return `${head} is waiting for its gates:\n\n${gates.join("\n")}`;
    case "pushed":
      return `${head}: pushed ${r.commit ?? ""}.\n\n${rows}`;
    case "proposed": {
      const links = r.requests
        .filter((q) => q.url && q.outcome !== "closed")
        .map((q) => `[#${q.number}](${q.url}) (${q.outcome})`)
        .join(", ");
      return `${head}: proposed in ${links || "a pull request"}.\n\n${rows}`;
    }
  }
}

/** `shipmate validate` plus the policy documents of the checkout, as findings. */
export async function validateCheckout(
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ findings: Finding[]; stats: string }> {
  const { problems, stats } = await validateTree(dir, { env });
  const findings: Finding[] = problems.map((p) => ({
    file: p.file,
    ...(p.line ? { line: p.line } : {}),
    message: p.message,
  }));
  try {
    await loadRunPolicies(dir, { kind: "repo" });
  } catch (err) {
    if (err instanceof PolicyConfigError)
      for (const p of err.problems)
        findings.push({
          file: relativeTo(dir, p.file),
          ...(p.line ? { line: p.line } : {}),
          message: p.message,
        });
    else if (err instanceof ConfigError)
      findings.push({
        file: relativeTo(dir, err.file ?? "shipmate.yaml"),
        ...(err.line ? { line: err.line } : {}),
        message: err.message,
      });
    else throw err;
  }
  return {
    findings,
    stats: `${stats.objects} objects in ${stats.yamlFiles} YAML files, ${stats.builds} kustomize builds, ${stats.markers} image policy markers`,
  };
}

function relativeTo(dir: string, file: string): string {
  return file.startsWith(`${dir}/`) ? file.slice(dir.length + 1) : file;
}
