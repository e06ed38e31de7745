/**
 * The dashboard's data, live: the fleet repository fetched on an interval
 * (./repo.ts), the cluster watched (./cluster.ts) when a kubeconfig is
 * given, open promotion requests read from the forge when one is reachable,
 * the registry scanned when asked — folded into the read model
 * (./model.ts) whenever any of them changes, with a version number the
 * server streams to browsers. Actions go through the engine's own calls:
 * `runPromotion` (what `shipmate promote` runs) and the agent's control
 * functions (what `shipmate reconcile|suspend|resume` run).
 */
import type { Logger } from "pino";
import { type Fleet, loadFleet } from "../config/fleet.ts";
import { loadRunPolicies } from "../config/policy-set.ts";
import { describeError } from "../errors.ts";
import { createForge, type ForgeFlags, forgeOptions } from "../forge/index.ts";
import { BOT_PREFIX } from "../forge/propose.ts";
import type { CommitChecks, Forge, PullRequest } from "../forge/types.ts";
import { KubeClient, loadKubeConfig } from "../kube/client.ts";
import type { SelectionPolicy } from "../policy/types.ts";
import type { PromoteResult } from "../promote/index.ts";
import type { EnvTree } from "../promote/plan.ts";
import { parseReference, repositoryName } from "../registry/index.ts";
import type { ScanOptions } from "../scan/index.ts";
import { ClusterWatcher } from "./cluster.ts";
import { buildView, type ScanSnapshot } from "./model.ts";
import { RepoMirror } from "./repo.ts";
import { readOwners } from "./teams.ts";
import type { AppHistory, FleetView } from "./types.ts";

export interface DashboardOptions {
  /** Fleet repository: a clone URL or a local path (its committed state is shown). */
  repo: string;
  branch?: string;
  env: NodeJS.ProcessEnv;
  /** Variable holding the git HTTPS token (default SHIPMATE_GIT_TOKEN). */
  tokenEnv?: string;
  kubeconfig?: string;
  /** Watch the cluster of the default kubeconfig (in-cluster in a pod) when no kubeconfig file is named. */
  cluster?: boolean;
  /** How to reach the forge (requests, checks, promotions); inferred from the remote where possible. */
  forge?: Omit<ForgeFlags, "remote">;
  forgeClient?: Forge;
  /** How often the repository is fetched (default 30 s). */
  syncIntervalMs?: number;
  /** Scan the registries this often; never when absent. */
  scanIntervalMs?: number;
  scan?: ScanOptions;
  log?: Logger;
}

/**
 * The engine's heavier parts — promotion (forges, git delivery, gates), the
 * registry scan, the control calls — load when first used: a read-only
 * dashboard never holds their code (the RSS figure in bench/RESULTS.md).
 */
async function controls() {
  return import("../kube/control.ts");
}

/** Commits read per environment for an app's page (its list and its 30-day timeline). */
const HISTORY_LIMIT = 30;

/** The kinds the page's reconcile action takes. */
export type ActionKind = "Kustomization" | "GitRepository" | "HelmRelease";

export interface DashboardState {
  version: number;
  view?: FleetView;
  fleet?: Fleet;
  fleetError?: string;
  syncedAt?: string;
}

function strategyOf(s: SelectionPolicy): string {
  const st = s.strategy;
  if (st.kind === "semver") return `semver ${st.range}`;
  if (st.kind === "alphabetical" || st.kind === "numerical") return `${st.kind} ${st.order}`;
  if (st.kind === "digest") return `digest of ${st.tag}`;
  return st.kind;
}

export class Dashboard {
  readonly opts: DashboardOptions;
  private readonly mirror: RepoMirror;
  private readonly others = new Map<string, RepoMirror>();
  private readonly watcher: ClusterWatcher | undefined;
  private readonly kube: KubeClient | undefined;
  private readonly forge: Forge | undefined;
  private readonly listeners = new Set<(version: number) => void>();
  private state: DashboardState = { version: 0 };
  private trees = new Map<string, EnvTree>();
  private owners = new Map<string, string>();
  private ownersProblem: string | undefined;
  private changedAt = new Map<string, Date | undefined>();
  private requests: PullRequest[] = [];
  private checks = new Map<string, CommitChecks>();
  private scan: ScanSnapshot | undefined;
  private revision = "";
  private timers: NodeJS.Timeout[] = [];
  private pending: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private closed = false;

  constructor(opts: DashboardOptions) {
    this.opts = opts;
    this.mirror = new RepoMirror(opts.repo, opts.branch, opts.env, opts.tokenEnv);
    if (opts.kubeconfig || opts.cluster) {
      const kc = loadKubeConfig(opts.kubeconfig);
      this.kube = new KubeClient(kc, { retryForMs: 5_000 });
      this.watcher = new ClusterWatcher(new KubeClient(kc, { retryForMs: 1_000 }), () => this.recompute());
    }
    this.forge = opts.forgeClient ?? this.makeForge();
  }

  private makeForge(): Forge | undefined {
    const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(this.opts.repo);
    if (!this.opts.forge?.forge && !isUrl) return undefined;
    try {
      return createForge(
        forgeOptions({ ...this.opts.forge, ...(isUrl ? { remote: this.opts.repo } : {}) }, this.opts.env),
      );
    } catch (err) {
      this.opts.log?.info(`no forge: promotion requests and checks are not shown (${describeError(err)})`);
      return undefined;
    }
  }

  /** Fetches once and starts the intervals. */
  async start(): Promise<void> {
    await this.sync();
    const every = this.opts.syncIntervalMs ?? 30_000;
    this.timers.push(setInterval(() => void this.sync(), every));
    // Soak time left moves with the clock alone.
    this.timers.push(setInterval(() => this.recompute(), 60_000));
    if (this.opts.scanIntervalMs) {
      void this.runScan();
      this.timers.push(setInterval(() => void this.runScan(), this.opts.scanIntervalMs));
    }
  }

  get current(): DashboardState {
    return this.state;
  }

  subscribe(fn: (version: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Fetches the repository (and the environments' own), rereads what changed, asks the forge. */
  sync(): Promise<void> {
    this.syncing ??= this.doSync().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async doSync(): Promise<void> {
    let fleet: Fleet;
    // Only news is published: an unchanged fetch sends the browsers nothing.
    let news = false;
    try {
      const { head, changed } = await this.mirror.sync();
      fleet = changed || !this.state.fleet ? await loadFleet(this.mirror.dir) : this.state.fleet;
      if (changed || this.state.fleetError || !this.state.fleet) {
        news = true;
        const trees = new Map<string, EnvTree>();
        const changedAt = new Map<string, Date | undefined>();
        const owners = await readOwners(this.mirror.dir);
        for (const env of fleet.spec.environments) {
          const m = env.repository
            ? await this.otherMirror(env.repository.url, env.repository.branch)
            : this.mirror;
          const tree = m.readEnv(env.name, env.path);
          if (tree) trees.set(env.name, tree);
          changedAt.set(env.name, await m.lastChange(env.path));
          if (m !== this.mirror)
            for (const [app, team] of (await readOwners(m.dir)).owners)
              if (!owners.owners.has(app)) owners.owners.set(app, team);
        }
        this.owners = owners.owners;
        this.ownersProblem = owners.problem;
        this.trees = trees;
        this.changedAt = changedAt;
        this.revision = head;
        if (!this.scan?.at) this.scan = await this.policiesUnscanned();
      }
      this.state = { ...this.state, fleet, syncedAt: new Date().toISOString() };
      delete this.state.fleetError;
    } catch (err) {
      // The last good view stays; the page says why it is not current.
      const message = describeError(err);
      if (this.state.fleetError !== message) {
        this.state = { ...this.state, fleetError: message };
        this.opts.log?.warn(`fleet repository: ${message}`);
        this.publish();
      }
      return;
    }
    if (this.forge) {
      try {
        const requests = (await this.forge.listOpenPullRequests(BOT_PREFIX)).filter((r) => r.meta?.promotion);
        const key = (list: PullRequest[]) =>
          JSON.stringify(list.map((r) => [r.number, r.url, r.meta?.promotion]));
        if (key(requests) !== key(this.requests)) news = true;
        this.requests = requests;
        if (fleet.spec.environments.some((e) => e.gates?.checks) && !this.checks.has(this.revision)) {
          this.checks.set(this.revision, await this.forge.commitChecks(this.revision));
          news = true;
        }
      } catch (err) {
        this.opts.log?.warn(`forge: ${describeError(err)}`);
      }
    }
    if (news) this.recompute(true);
  }

  private async otherMirror(url: string, branch: string): Promise<RepoMirror> {
    const key = `${url}#${branch}`;
    let m = this.others.get(key);
    if (!m) {
      m = new RepoMirror(url, branch, this.opts.env, this.opts.tokenEnv);
      this.others.set(key, m);
    }
    await m.sync();
    return m;
  }

  private async policiesUnscanned(): Promise<ScanSnapshot> {
    const set = await loadRunPolicies(this.mirror.dir, { kind: "repo" });
    return {
      requests: 0,
      policies: set.known.map((p) => {
        const env = set.environmentOf(p)?.name;
        return {
          id: p.id,
          ...(env ? { env } : {}),
          image: p.image,
          strategy: strategyOf(p.selection),
          reason: "not scanned",
        };
      }),
    };
  }

  private async runScan(): Promise<void> {
    if (!this.state.fleet) return;
    try {
      const set = await loadRunPolicies(this.mirror.dir, { kind: "repo" });
      const { scanPolicies } = await import("../scan/index.ts");
      const report = await scanPolicies(set.known, { ...this.opts.scan, env: this.opts.env });
      this.scan = {
        at: new Date().toISOString(),
        requests: report.requests.total,
        policies: report.results.map((r) => {
          const env = set.environmentOf(r.policy)?.name;
          const cost = report.requests.byRepository[repositoryName(parseReference(r.policy.image))];
          const base = {
            id: r.policy.id,
            ...(env ? { env } : {}),
            image: r.policy.image,
            strategy: strategyOf(r.policy.selection),
            ...(cost !== undefined ? { requests: cost } : {}),
          };
          return r.ok
            ? { ...base, tag: r.tag, ...(r.digest ? { digest: r.digest } : {}) }
            : { ...base, reason: r.message };
        }),
      };
      this.recompute(true);
    } catch (err) {
      this.opts.log?.warn(`scan: ${describeError(err)}`);
    }
  }

  /** Rebuilds the view soon (changes arriving together are folded into one). */
  private recompute(now = false): void {
    if (this.closed) return;
    if (now) {
      if (this.pending) clearTimeout(this.pending);
      this.pending = undefined;
      this.build();
      return;
    }
    this.pending ??= setTimeout(() => {
      this.pending = undefined;
      this.build();
    }, 50);
  }

  private build(): void {
    const fleet = this.state.fleet;
    if (!fleet) return;
    try {
      const view = buildView({
        fleet,
        revision: this.revision,
        trees: this.trees,
        changedAt: this.changedAt,
        ...(this.watcher ? { cluster: this.watcher.snapshot() } : {}),
        ...(this.scan ? { scan: this.scan } : {}),
        teams: this.owners,
        requests: this.requests,
        checks: this.checks,
        now: new Date(),
      });
      if (this.ownersProblem) view.problems.push(this.ownersProblem);
      this.state = { ...this.state, view };
    } catch (err) {
      this.state = { ...this.state, fleetError: describeError(err) };
    }
    this.publish();
  }

  private publish(): void {
    this.state = { ...this.state, version: this.state.version + 1 };
    for (const fn of this.listeners) fn(this.state.version);
  }

  /** An app's history in every environment that runs it (newest first). */
  async history(app: string): Promise<AppHistory[]> {
    const fleet = this.state.fleet;
    if (!fleet) return [];
    const out: AppHistory[] = [];
    for (const env of fleet.spec.environments) {
      if (!this.trees.get(env.name)?.files.some((f) => f.path.startsWith(`${env.path}/${app}/`))) continue;
      const m = env.repository
        ? await this.otherMirror(env.repository.url, env.repository.branch)
        : this.mirror;
      const path = `${env.path}/${app}`;
      const entries = await m.history(path, HISTORY_LIMIT);
      out.push({ env: env.name, path, entries, complete: entries.length < HISTORY_LIMIT });
    }
    return out;
  }

  /** `shipmate promote --from FROM --to TO`, as the CLI runs it. */
  async promote(to: string, from: string | undefined): Promise<PromoteResult> {
    const { runPromotion } = await import("../promote/index.ts");
    const result = await runPromotion({
      repo: this.opts.repo,
      ...(this.opts.branch ? { branch: this.opts.branch } : {}),
      ...(from ? { from } : {}),
      to,
      dryRun: false,
      env: this.opts.env,
      ...(this.opts.tokenEnv ? { tokenEnv: this.opts.tokenEnv } : {}),
      ...(this.opts.forge ? { forge: this.opts.forge } : {}),
      ...(this.opts.forgeClient ? { forgeClient: this.opts.forgeClient } : {}),
      ...(this.opts.kubeconfig ? { kubeconfig: this.opts.kubeconfig } : {}),
    });
    void this.sync();
    return result;
  }

  private client(): KubeClient {
    if (!this.kube) throw new Error("no cluster: start the dashboard with --kubeconfig");
    return this.kube;
  }

  /** `shipmate reconcile` of one object: the control path every kind shares (src/kube/control.ts). */
  async reconcile(kind: ActionKind, namespace: string, name: string): Promise<void> {
    const client = this.client();
    const { requestReconcile } = await controls();
    await requestReconcile(client, kind, namespace, name);
  }

  /** `shipmate suspend|resume` of a Kustomization or HelmRelease, through the same path. */
  async setSuspended(
    kind: "Kustomization" | "HelmRelease",
    namespace: string,
    name: string,
    suspended: boolean,
  ): Promise<void> {
    const client = this.client();
    const { setSuspended } = await controls();
    await setSuspended(client, kind, namespace, name, suspended);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    if (this.pending) clearTimeout(this.pending);
    await this.syncing?.catch(() => undefined);
    await this.watcher?.close();
    this.kube?.close();
    this.mirror.close();
    for (const m of this.others.values()) m.close();
    this.listeners.clear();
  }
}
