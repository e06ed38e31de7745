/**
 * The dashboard's read model, pure: from what the fleet repository holds
 * (each environment's files, read as `shipmate promote` reads them), what the
 * cluster's objects say (watched by ./cluster.ts), the latest scan and the
 * open promotion requests, it computes what the page shows — the matrix of
 * apps × environments with its marks, the promotions per environment pair
 * with their gates, the cluster's sources and Kustomizations, the policies.
 * Every rule is the engine's own: pins come from src/promote/pins.ts, what
 * would move from planPromotion, gate verdicts from evaluateGates.
 */
import { environmentOfPath, type Fleet, promotionSource } from "../config/fleet.ts";
import type { CommitChecks, PullRequest } from "../forge/types.ts";
import { canonicalRepository, refParts } from "../manifest/ref.ts";
import { evaluateGates, type GateConfig, type HealthEvidence, overall } from "../promote/gates.ts";
import { scanPins, versionOf } from "../promote/pins.ts";
import { appOf, type EnvTree, planPromotion } from "../promote/plan.ts";
import { differs } from "./format.ts";
import type {
  Cell,
  ClusterRow,
  EventRow,
  FleetView,
  Mark,
  PolicyRow,
  PromotionView,
  Row,
  Version,
} from "./types.ts";

export interface ClusterSnapshot {
  /** False while the API server cannot be reached; `error` says why. */
  connected: boolean;
  error?: string;
  /** Raw objects by kind: GitRepository, OCIRepository, Kustomization, HelmRelease, Deployment. */
  objects: Record<string, readonly KubeObject[]>;
  /** Kinds the API server does not serve (no CRD). */
  missing?: string[];
}

export interface ScanSnapshot {
  /** When the registry was last scanned; undefined when the dashboard does not scan. */
  at?: string;
  requests: number;
  policies: {
    id: string;
    env?: string;
    image: string;
    strategy: string;
    tag?: string;
    digest?: string;
    reason?: string;
    /** Registry requests the last scan made for the policy's repository (shared by the policies on it). */
    requests?: number;
  }[];
}

export interface ModelInput {
  fleet: Fleet;
  revision: string;
  /** Each environment's files as read from its repository; absent when it could not be read. */
  trees: ReadonlyMap<string, EnvTree>;
  /** When each environment's path last changed in git (soak). */
  changedAt?: ReadonlyMap<string, Date | undefined>;
  cluster?: ClusterSnapshot;
  scan?: ScanSnapshot;
  /** App → team, as the fleet records owners (./teams.ts). */
  teams?: ReadonlyMap<string, string>;
  /** Open requests of shipmate's bots (meta read from their bodies). */
  requests?: readonly PullRequest[];
  /** Checks of source revisions, by revision, when a forge was asked. */
  checks?: ReadonlyMap<string, CommitChecks>;
  now: Date;
}

/** What a Kubernetes object read from a watch carries that the dashboard reads (full objects). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    namespace?: string;
    name?: string;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

const conditions = (o: KubeObject): Condition[] =>
  Array.isArray(o.status?.conditions) ? (o.status.conditions as Condition[]) : [];

const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** The revision an object last acted on, as `flux get` shows it. */
function revisionOf(kind: string, o: KubeObject): string {
  const s = o.status ?? {};
  if (kind === "Kustomization") return str(s.lastAppliedRevision) || str(s.lastAttemptedRevision);
  if (kind === "HelmRelease") {
    const history = Array.isArray(s.history) ? (s.history as { chartVersion?: string }[]) : [];
    return str(history[0]?.chartVersion) || str(s.lastAttemptedRevision);
  }
  return str((s.artifact as { revision?: unknown } | undefined)?.revision);
}

/** Kustomization `spec.path` as a repository-relative folder (`./apps/staging/` → `apps/staging`). */
export function ksFolder(path: unknown): string {
  const p = str(path)
    .replace(/^\.?\/+/, "")
    .replace(/\/+$/, "");
  return p === "" ? "." : p;
}

export function clusterRow(kind: string, o: KubeObject, fleet?: Fleet): ClusterRow {
  const ready = conditions(o).find((c) => c.type === "Ready");
  const status = ready?.status === "True" || ready?.status === "False" ? ready.status : "Unknown";
  const inventory = (o.status?.inventory as { entries?: unknown[] } | undefined)?.entries;
  const env =
    kind === "Kustomization" && fleet
      ? environmentOfPath(fleet, ksFolder(o.spec?.path), "manifests")
      : undefined;
  return {
    kind,
    namespace: o.metadata?.namespace ?? "",
    name: o.metadata?.name ?? "",
    ready: status,
    reason: ready?.reason ?? "",
    message: ready?.message ?? (status === "Unknown" ? "waiting to be reconciled" : ""),
    revision: revisionOf(kind, o),
    suspended: o.spec?.suspend === true,
    since: ready?.lastTransitionTime ?? "",
    ...(Array.isArray(inventory) ? { inventory: inventory.length } : {}),
    ...(env ? { env: env.name } : {}),
  };
}

/** Events as ./cluster.ts keeps them, newest first (by time, then by name: stable for equal times). */
export function eventRows(events: readonly KubeObject[]): EventRow[] {
  return events
    .map((o): EventRow => {
      const e = o as KubeObject & {
        involvedObject?: { kind?: string; namespace?: string; name?: string };
        type?: string;
        reason?: string;
        message?: string;
        time?: string;
        count?: number;
      };
      return {
        kind: str(e.involvedObject?.kind),
        namespace: str(e.involvedObject?.namespace),
        name: str(e.involvedObject?.name),
        type: str(e.type),
        reason: str(e.reason),
        message: str(e.message),
        time: str(e.time),
        count: typeof e.count === "number" ? e.count : 1,
      };
    })
    .sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : a.name.localeCompare(b.name)));
}

/** `namespace_name_group_kind`, as Flux writes inventory ids. */
function inventoryDeployments(o: KubeObject): { namespace: string; name: string }[] {
  const entries = (o.status?.inventory as { entries?: { id?: unknown }[] } | undefined)?.entries ?? [];
  const out: { namespace: string; name: string }[] = [];
  for (const e of entries) {
    const parts = str(e.id).split("_");
    if (parts.length === 4 && parts[2] === "apps" && parts[3] === "Deployment")
      out.push({ namespace: parts[0]!, name: parts[1]! });
  }
  return out;
}

/** Container images of a workload's pod template. */
function podImages(o: KubeObject): Version[] {
  const tpl = (o.spec?.template as { spec?: { containers?: unknown; initContainers?: unknown } } | undefined)
    ?.spec;
  const out: Version[] = [];
  for (const list of [tpl?.containers, tpl?.initContainers]) {
    if (!Array.isArray(list)) continue;
    for (const c of list as { image?: unknown }[]) {
      const parts = refParts(str(c.image));
      const repository = parts ? canonicalRepository(parts.name) : undefined;
      if (!parts || !repository) continue;
      out.push({
        image: parts.name,
        repository,
        ...(parts.tag !== undefined ? { tag: parts.tag } : {}),
        ...(parts.digest !== undefined ? { digest: parts.digest } : {}),
      });
    }
  }
  return out;
}

/**
 * Pins and plans depend on the trees alone, which are replaced (never edited)
 * when git moves: remembered by identity, a cluster event costs no YAML parse.
 */
const pinsMemo = new WeakMap<EnvTree, { pins: Map<string, Version[]>; problems: string[] }>();
const planMemo = new WeakMap<EnvTree, WeakMap<EnvTree, ReturnType<typeof planPromotion>>>();

function pinsOf(tree: EnvTree, problems: string[]): Map<string, Version[]> {
  const memo = pinsMemo.get(tree);
  if (memo) {
    problems.push(...memo.problems);
    return memo.pins;
  }
  const own: string[] = [];
  const pins = readPins(tree, own);
  pinsMemo.set(tree, { pins, problems: own });
  problems.push(...own);
  return pins;
}

function planOf(from: EnvTree, to: EnvTree): ReturnType<typeof planPromotion> {
  let inner = planMemo.get(from);
  if (!inner) {
    inner = new WeakMap();
    planMemo.set(from, inner);
  }
  let plan = inner.get(to);
  if (!plan) {
    plan = planPromotion(from, to);
    inner.set(to, plan);
  }
  return plan;
}

function readPins(tree: EnvTree, problems: string[]): Map<string, Version[]> {
  const byApp = new Map<string, Version[]>();
  for (const f of tree.files) {
    const { sites, problems: p } = scanPins(f.path, f.content);
    for (const x of p) problems.push(`${x.file}${x.line ? `:${x.line}` : ""}: ${x.message}`);
    for (const s of sites) {
      const app = appOf(tree.path, f.path);
      const list = byApp.get(app) ?? [];
      if (!list.some((v) => v.repository === s.repository && versionOf(v) === versionOf(s)))
        list.push({
          image: s.name,
          repository: s.repository,
          ...(s.tag !== undefined ? { tag: s.tag } : {}),
          ...(s.digest !== undefined ? { digest: s.digest } : {}),
        });
      byApp.set(app, list);
    }
  }
  return byApp;
}

/** The promotion request into `to` (and app), from the metadata shipmate writes in its bodies. */
function requestFor(requests: readonly PullRequest[], to: string, app?: string): PullRequest | undefined {
  return requests.find((r) => {
    const p = r.meta?.promotion;
    if (!p || p.to !== to) return false;
    return app === undefined || !p.apps?.length || p.apps.includes(app);
  });
}

/** What the cluster says of the Kustomizations applying `env`: the gate's health evidence. */
function healthOf(rows: readonly ClusterRow[], env: string): HealthEvidence {
  const mine = rows.filter((r) => r.kind === "Kustomization" && r.env === env);
  const revisions = new Set(mine.map((r) => r.revision));
  return {
    healthy: mine.length > 0 && mine.every((r) => r.ready === "True" && !r.suspended),
    atRevision: false,
    revision: revisions.size === 1 ? [...revisions][0] || undefined : undefined,
    unready: mine
      .filter((r) => r.ready !== "True" || r.suspended)
      .map((r) => `${r.namespace}/${r.name} (${r.suspended ? "suspended" : r.message})`),
  };
}

/** Whether every Kustomization of `env` applied `commit` (as src/kube/control.ts healthyAt reads revisions). */
function appliedAt(rows: readonly ClusterRow[], env: string, commit: string): boolean {
  const mine = rows.filter((r) => r.kind === "Kustomization" && r.env === env);
  return (
    commit.length >= 7 &&
    mine.length > 0 &&
    mine.every((r) => (r.revision.split(":").pop() ?? "").startsWith(commit))
  );
}

/** A policy's image as a repository key (tag or digest dropped), to tell which policies share a listing. */
const repositoryOf = (image: string) => canonicalRepository(image.replace(/[:@][^/]*$/, "")) ?? image;

const CLUSTER_KINDS = ["GitRepository", "OCIRepository", "Kustomization", "HelmRelease"];

export function buildView(input: ModelInput): FleetView {
  const { fleet } = input;
  const envs = fleet.spec.environments.map((e) => e.name);
  const problems: string[] = [];
  const pins = new Map<string, Map<string, Version[]>>();
  for (const e of fleet.spec.environments) {
    const tree = input.trees.get(e.name);
    if (!tree) {
      problems.push(`environment ${e.name}: its manifests could not be read`);
      continue;
    }
    pins.set(e.name, pinsOf(tree, problems));
  }

  // The cluster: rows per object, and what each Kustomization's Deployments run.
  const cluster = input.cluster;
  const clusterRows: ClusterRow[] = [];
  const running = new Map<string, { versions: Version[]; ks: ClusterRow }>();
  if (cluster) {
    for (const kind of CLUSTER_KINDS)
      for (const o of cluster.objects[kind] ?? []) clusterRows.push(clusterRow(kind, o, fleet));
    const deployments = new Map(
      (cluster.objects.Deployment ?? []).map((d) => [`${d.metadata?.namespace}/${d.metadata?.name}`, d]),
    );
    for (const o of cluster.objects.Kustomization ?? []) {
      const row = clusterRow("Kustomization", o, fleet);
      const env = row.env ? fleet.spec.environments.find((e) => e.name === row.env) : undefined;
      if (!env) continue;
      // A Kustomization of one app's folder covers that app; one of the environment's folder covers all.
      const app = appOf(env.path, `${ksFolder(o.spec?.path)}/x`);
      const versions: Version[] = [];
      for (const ref of inventoryDeployments(o)) {
        const d = deployments.get(`${ref.namespace}/${ref.name}`);
        if (d) versions.push(...podImages(d));
      }
      for (const [candidate] of pins.get(env.name) ?? new Map<string, Version[]>()) {
        if (app !== "" && candidate !== app) continue;
        const key = `${env.name}\u0000${candidate}`;
        const seen = running.get(key);
        // The most specific Kustomization (an app's own) wins over the environment's.
        if (!seen || app !== "") running.set(key, { versions, ks: row });
      }
    }
    clusterRows.sort(
      (a, b) =>
        CLUSTER_KINDS.indexOf(a.kind) - CLUSTER_KINDS.indexOf(b.kind) ||
        a.namespace.localeCompare(b.namespace) ||
        a.name.localeCompare(b.name),
    );
  }

  const newest = new Map<string, Version>();
  for (const p of input.scan?.policies ?? []) {
    const repository = canonicalRepository(p.image.replace(/[:@][^/]*$/, ""));
    if (!p.env || !repository || p.tag === undefined) continue;
    newest.set(`${p.env}\u0000${repository}`, {
      image: p.image,
      repository,
      tag: p.tag,
      ...(p.digest ? { digest: p.digest } : {}),
    });
  }

  const requests = input.requests ?? [];
  const apps = [...new Set([...pins.values()].flatMap((m) => [...m.keys()]))].sort();
  const rows: Row[] = apps.map((app) => ({
    app,
    ...(input.teams?.get(app) ? { team: input.teams.get(app)! } : {}),
    cells: envs.map((env) => {
      const git = pins.get(env)?.get(app);
      if (!git) return undefined;
      const marks: Mark[] = [];
      const cell: Cell = { app, env, git, marks };
      const run = running.get(`${env}\u0000${app}`);
      if (run) {
        cell.kustomization = {
          namespace: run.ks.namespace,
          name: run.ks.name,
          ready: run.ks.ready,
          reason: run.ks.reason,
          message: run.ks.message,
        };
        const matched = git.flatMap((g) => run.versions.filter((v) => v.repository === g.repository));
        cell.cluster = matched;
        if (git.some((g) => matched.some((v) => v.repository === g.repository && differs(g, v))))
          marks.push("drifted");
        if (run.ks.ready === "False") marks.push("failing");
      }
      const allowed = git.flatMap((g) => {
        const n = newest.get(`${env}\u0000${g.repository}`);
        return n ? [n] : [];
      });
      if (allowed.length) {
        cell.newest = allowed;
        if (
          git.some((g) =>
            allowed.some((n) => n.repository === g.repository && (n.tag ?? "") !== (g.tag ?? "")),
          )
        )
          marks.push("behind");
      }
      const pr = requestFor(requests, env, app);
      if (pr) {
        marks.push("pending");
        cell.request = { number: pr.number, url: pr.url };
      }
      return cell;
    }),
  }));

  const promotions: PromotionView[] = [];
  for (const env of fleet.spec.environments) {
    // The pair `shipmate promote --to ENV` acts on by default.
    const from = promotionSource(fleet, env.name);
    if (!from) continue;
    const fromTree = input.trees.get(from.name);
    const toTree = input.trees.get(env.name);
    if (!fromTree || !toTree) continue;
    const plan = planOf(fromTree, toTree);
    const config: GateConfig = { ...env.gates };
    const health = config.health ? healthOf(clusterRows, from.name) : undefined;
    if (health) health.atRevision = health.healthy && appliedAt(clusterRows, from.name, input.revision);
    const checks = input.checks?.get(input.revision);
    const gates = evaluateGates(config, {
      from: from.name,
      revision: input.revision,
      ...(checks ? { checks } : {}),
      ...(health && cluster ? { health } : {}),
      ...(input.changedAt?.get(from.name) ? { changedAt: input.changedAt.get(from.name)! } : {}),
      now: input.now,
    });
    const pr = requestFor(requests, env.name);
    promotions.push({
      from: from.name,
      to: env.name,
      changes: plan.changes.map((c) => ({ app: c.app, image: c.image, from: c.from, to: c.to })),
      gates,
      gateState: overall(gates),
      problems: plan.problems
        .filter((p) => p.severity === "error")
        .map((p) => `${p.file ? `${p.file}${p.line ? `:${p.line}` : ""}: ` : ""}${p.message}`),
      ...(pr ? { request: { number: pr.number, url: pr.url, title: pr.title } } : {}),
    });
  }

  const onRepository = new Map<string, number>();
  for (const p of input.scan?.policies ?? [])
    onRepository.set(repositoryOf(p.image), (onRepository.get(repositoryOf(p.image)) ?? 0) + 1);
  const policies: PolicyRow[] = (input.scan?.policies ?? []).map((p) => ({
    id: p.id,
    ...(p.requests !== undefined
      ? { cost: { requests: p.requests, sharedBy: onRepository.get(repositoryOf(p.image)) ?? 1 } }
      : {}),
    ...(p.env ? { env: p.env } : {}),
    image: p.image,
    strategy: p.strategy,
    ...(p.tag !== undefined ? { selected: { tag: p.tag, ...(p.digest ? { digest: p.digest } : {}) } } : {}),
    ...(p.reason ? { reason: p.reason } : {}),
    ...(input.scan?.at ? { scannedAt: input.scan.at } : {}),
  }));

  return {
    name: fleet.metadata.name,
    revision: input.revision,
    environments: envs,
    teams: [...new Set(input.teams?.values() ?? [])].sort(),
    rows,
    promotions,
    ...(cluster
      ? {
          cluster: {
            connected: cluster.connected,
            ...(cluster.error ? { error: cluster.error } : {}),
            missing: cluster.missing ?? [],
            rows: clusterRows,
            events: eventRows(cluster.objects.Event ?? []),
          },
        }
      : {}),
    policies,
    problems,
  };
}
