/**
 * Promotion gates: what must hold before a promotion request is opened or
 * updated — of the source environment (checks, health, soak, conformance)
 * and of the target (canary: its previous rollout finished). The verdicts
 * are pure; the evidence (forge checks, agent health, when the source last
 * changed, Flagger's Canary status, the conformance run's outcome) is
 * gathered by the caller (./index.ts, ./canary.ts, ./conformance.ts).
 */
import { parseDuration } from "../agent/kustomization.ts";
import type { CommitChecks } from "../forge/types.ts";

export type GateName = "checks" | "health" | "soak" | "canary" | "conformance";

/** A conformance test: a Job made from a named CronJob's template, or a command; within `timeout`. */
export interface ConformanceConfig {
  job?: { name: string; namespace: string };
  command?: string[];
  timeout: string;
}

export interface GateConfig {
  /** The source commit's statuses/checks must be green on the forge. */
  checks?: boolean;
  /** The source environment's agent must report every Kustomization Ready at the source commit. */
  health?: boolean;
  /** Minimum time the source has run its current versions (`24h`, `90m`). */
  soak?: string;
  /** Every Canary of the promoted apps in the target environment has finished its last rollout (Succeeded). */
  canary?: boolean;
  /** A conformance test run against the source environment at the promoted revision must pass. */
  conformance?: ConformanceConfig;
}

/** `passed`; `waiting` (may pass later: checks running, soak not reached); `failed` (needs a person). */
export type GateState = "passed" | "waiting" | "failed";

export interface GateVerdict {
  gate: GateName;
  /** `not-evaluated`: a dry run that could not ask (no forge token, no cluster); it never blocks. */
  state: GateState | "not-evaluated";
  /** One line for a person. */
  message: string;
  /** More for the request body only (a log tail): never printed by the CLI. */
  detail?: string;
}

/** One Flagger Canary of a promoted app in the target environment, as the cluster reports it. */
export interface CanaryEvidence {
  namespace: string;
  name: string;
  /** Flagger's status.phase; undefined when it has not reported yet. */
  phase?: string;
  /** Not in the cluster (its manifest is in git but not applied yet). */
  missing?: boolean;
  /** targetRef names a Deployment that does not exist. */
  targetMissing?: string;
  failedChecks?: number;
  threshold?: number;
  canaryWeight?: number;
  iterations?: number;
  /** Flagger's own word: the last Warning event (metric query errors, halted advancement), else its condition message. */
  message?: string;
  /** Flagger's recent Warnings about it, oldest first (distinct, bounded): metric values and query errors. */
  events?: string[];
  lastTransitionTime?: string;
}

/** The outcome of the conformance run for this revision. */
export interface ConformanceEvidence {
  /** `job ns/name` or `command …`, for messages. */
  what: string;
  state: "succeeded" | "failed" | "running" | "timeout" | "error";
  elapsedMs: number;
  timeout: string;
  /** Why it failed or could not run, one line. */
  reason?: string;
  /** The last lines of its output (pod logs or the command's stdout/stderr). */
  logs?: string;
  /** How to read the whole log (`kubectl logs -n ns job/name`). */
  link?: string;
}

/** The agent's health report, as src/kube/control.ts `healthReport` returns it (subset read here). */
export interface HealthEvidence {
  healthy: boolean;
  /** Whether every Kustomization applied the source commit. */
  atRevision: boolean;
  /** What they applied, for the message. */
  revision: string | undefined;
  unready: string[];
}

export interface GateEvidence {
  from: string;
  revision: string;
  checks?: CommitChecks;
  health?: HealthEvidence;
  /** When the source environment's manifests last changed (undefined: unknown, e.g. a shallow clone). */
  changedAt?: Date;
  /** The target environment and its Canaries of the promoted apps (an error when they could not be read). */
  to?: string;
  canaries?: CanaryEvidence[] | { error: string };
  conformance?: ConformanceEvidence;
  now: Date;
}

export function formatDuration(ms: number): string {
  const m = Math.round(ms / 60_000);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
}

export function evaluateGates(config: GateConfig, ev: GateEvidence): GateVerdict[] {
  const out: GateVerdict[] = [];
  const short = ev.revision.slice(0, 12);
  if (config.checks) {
    const c = ev.checks;
    if (!c)
      out.push({ gate: "checks", state: "failed", message: "checks were not read (no forge configured)" });
    else if (c.state === "success")
      out.push({ gate: "checks", state: "passed", message: `${c.checks.length} checks green on ${short}` });
    else if (c.state === "pending") {
      const running = c.checks.filter((x) => x.state === "pending").map((x) => x.name);
      out.push({
        gate: "checks",
        state: "waiting",
        message: `checks still running on ${short}: ${running.join(", ")}`,
      });
    } else if (c.state === "none")
      out.push({ gate: "checks", state: "waiting", message: `no check has reported on ${short} yet` });
    else {
      const failed = c.checks.filter((x) => x.state === "failure").map((x) => x.name);
      out.push({
        gate: "checks",
        state: "failed",
        message: `checks failed on ${short}: ${failed.join(", ")}`,
      });
    }
  }
  if (config.health) {
    const h = ev.health;
    if (!h) out.push({ gate: "health", state: "failed", message: `no health report for ${ev.from}` });
    else if (h.healthy && h.atRevision)
      out.push({ gate: "health", state: "passed", message: `${ev.from} healthy at ${short}` });
    else if (h.healthy)
      out.push({
        gate: "health",
        state: "waiting",
        message: `${ev.from} has not applied ${short} yet (it runs ${h.revision ?? "mixed revisions"})`,
      });
    else
      out.push({
        gate: "health",
        state: "failed",
        message: `${ev.from} is not healthy: ${h.unready.join(", ") || "no Kustomization reports Ready"}`,
      });
  }
  if (config.soak) {
    const need = parseDuration(config.soak);
    if (!ev.changedAt)
      out.push({
        gate: "soak",
        state: "failed",
        message: `cannot tell how long ${ev.from} has run its versions (shallow clone?): promote from a full checkout or drop the soak gate`,
      });
    else {
      const ran = ev.now.getTime() - ev.changedAt.getTime();
      out.push(
        ran >= need
          ? {
              gate: "soak",
              state: "passed",
              message: `${ev.from} has run these versions for ${formatDuration(ran)} (≥ ${config.soak})`,
            }
          : {
              gate: "soak",
              state: "waiting",
              message: `${ev.from} has run these versions for ${formatDuration(ran)}; soak needs ${config.soak} (${formatDuration(need - ran)} left)`,
            },
      );
    }
  }
  if (config.canary) out.push(canaryVerdict(ev));
  if (config.conformance) out.push(conformanceVerdict(ev));
  return out;
}

/** Flagger phases of a rollout still under way (Flagger's CanaryPhase values). */
const CANARY_BUSY = new Set([
  "Initializing",
  "Waiting",
  "Progressing",
  "WaitingPromotion",
  "Promoting",
  "Finalising",
  "Terminating",
]);

/** One Canary as a person reads it: `web/web Failed (failed checks 5/5): <Flagger's message>`. */
export function describeCanary(c: CanaryEvidence): string {
  const checks =
    c.failedChecks !== undefined && c.failedChecks > 0
      ? ` (failed checks ${c.failedChecks}${c.threshold !== undefined ? `/${c.threshold}` : ""})`
      : "";
  return `${c.namespace}/${c.name} ${c.phase ?? "not reported"}${checks}${c.message ? `: ${c.message}` : ""}`;
}

function canaryVerdict(ev: GateEvidence): GateVerdict {
  const to = ev.to ?? "the target";
  const cs = ev.canaries;
  if (!cs) return { gate: "canary", state: "failed", message: `the Canaries of ${to} were not read` };
  if ("error" in cs)
    return { gate: "canary", state: "failed", message: `cannot read the Canaries of ${to}: ${cs.error}` };
  if (cs.length === 0)
    return { gate: "canary", state: "passed", message: `no Canary in ${to} for the promoted apps` };
  const broken = cs.filter((c) => c.targetMissing);
  if (broken.length)
    return {
      gate: "canary",
      state: "failed",
      message: broken
        .map(
          (c) =>
            `Canary ${c.namespace}/${c.name} targets Deployment ${c.targetMissing}, which does not exist`,
        )
        .join("; "),
    };
  const failed = cs.filter((c) => c.phase === "Failed");
  if (failed.length)
    return {
      gate: "canary",
      state: "failed",
      message: `rollout failed in ${to}: ${failed.map(describeCanary).join("; ")}`,
    };
  const missing = cs.filter((c) => c.missing);
  if (missing.length)
    return {
      gate: "canary",
      state: "waiting",
      message: `not in ${to}'s cluster yet: ${missing.map((c) => `Canary ${c.namespace}/${c.name}`).join(", ")}`,
    };
  const busy = cs.filter((c) => c.phase === undefined || CANARY_BUSY.has(c.phase));
  if (busy.length)
    return {
      gate: "canary",
      state: "waiting",
      message: `rollout still under way in ${to}: ${busy.map(describeCanary).join("; ")}`,
    };
  // Succeeded, or Initialized (set up, nothing rolled out since).
  return {
    gate: "canary",
    state: "passed",
    message: `${cs.length} Canar${cs.length === 1 ? "y" : "ies"} in ${to} finished: ${cs.map((c) => `${c.namespace}/${c.name} ${c.phase}`).join(", ")}`,
  };
}

function conformanceVerdict(ev: GateEvidence): GateVerdict {
  const c = ev.conformance;
  if (!c)
    return {
      gate: "conformance",
      state: "failed",
      message: `the conformance test did not run on ${ev.from}`,
    };
  const short = ev.revision.slice(0, 12);
  const took = c.elapsedMs < 60_000 ? `${Math.round(c.elapsedMs / 1000)}s` : formatDuration(c.elapsedMs);
  const detail = [c.link ? `Full log: \`${c.link}\`` : "", c.logs ? `\`\`\`\n${c.logs}\n\`\`\`` : ""]
    .filter(Boolean)
    .join("\n\n");
  const withDetail = (v: GateVerdict): GateVerdict => (detail ? { ...v, detail } : v);
  switch (c.state) {
    case "succeeded":
      return withDetail({
        gate: "conformance",
        state: "passed",
        message: `${c.what} passed on ${ev.from} at ${short} in ${took}`,
      });
    case "running":
      return withDetail({
        gate: "conformance",
        state: "waiting",
        message: `${c.what} still running on ${ev.from} at ${short} (${took} of ${c.timeout})`,
      });
    case "timeout":
      return withDetail({
        gate: "conformance",
        state: "failed",
        message: `${c.what} did not finish within ${c.timeout} on ${ev.from} at ${short}`,
      });
    case "failed":
      return withDetail({
        gate: "conformance",
        state: "failed",
        message: `${c.what} failed on ${ev.from} at ${short}${c.reason ? `: ${c.reason}` : ""}`,
      });
    default:
      return withDetail({
        gate: "conformance",
        state: "failed",
        message: `${c.what} could not run on ${ev.from}${c.reason ? `: ${c.reason}` : ""}`,
      });
  }
}

/** The gate lines of a request body: one per gate, and its detail (a log tail) folded beneath. */
export function gatesMarkdown(verdicts: readonly GateVerdict[]): string {
  const mark: Record<GateVerdict["state"], string> = {
    passed: "✅",
    waiting: "⏳",
    failed: "❌",
    "not-evaluated": "➖",
  };
  const lines = ["**Gates**", ""];
  for (const v of verdicts) {
    lines.push(`- ${mark[v.state]} \`${v.gate}\` ${v.state}: ${v.message.replace(/\r?\n/g, " ")}`);
    if (v.detail)
      lines.push(
        "",
        `  <details><summary>${v.gate} output</summary>`,
        "",
        ...v.detail.split("\n").map((l) => `  ${l}`),
        "",
        "  </details>",
      );
  }
  return lines.join("\n");
}

/** The verdict of all gates: the worst state wins. */
export function overall(verdicts: readonly GateVerdict[]): GateState {
  if (verdicts.some((v) => v.state === "failed")) return "failed";
  if (verdicts.some((v) => v.state === "waiting")) return "waiting";
  return "passed";
}
