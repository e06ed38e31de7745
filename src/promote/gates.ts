/**
 * Promotion gates: what must hold for the source environment before a
 * promotion request is opened or updated. The verdicts are pure; the
 * evidence (forge checks, agent health, when the source last changed) is
 * gathered by the caller.
 */
import { parseDuration } from "../agent/kustomization.ts";
import type { CommitChecks } from "../forge/types.ts";

export type GateName = "checks" | "health" | "soak";

export interface GateConfig {
  /** The source commit's statuses/checks must be green on the forge. */
  checks?: boolean;
  /** The source environment's agent must report every Kustomization Ready at the source commit. */
  health?: boolean;
  /** Minimum time the source has run its current versions (`24h`, `90m`). */
  soak?: string;
}

/** `passed`; `waiting` (may pass later: checks running, soak not reached); `failed` (needs a person). */
export type GateState = "passed" | "waiting" | "failed";

export interface GateVerdict {
  gate: GateName;
  /** `not-evaluated`: a dry run that could not ask (no forge token, no cluster); it never blocks. */
  state: GateState | "not-evaluated";
  /** One line for a person. */
  message: string;
}

/** The agent's health report, as src/agent/control.ts `healthReport` returns it (subset read here). */
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
  return out;
}

/** The verdict of all gates: the worst state wins. */
export function overall(verdicts: readonly GateVerdict[]): GateState {
  if (verdicts.some((v) => v.state === "failed")) return "failed";
  if (verdicts.some((v) => v.state === "waiting")) return "waiting";
  return "passed";
}
