/**
 * The promote use case: the one engine function behind `shipmate promote`,
 * the Action's `promote` and the App's promotions (a merged pull request,
 * `/shipmate promote`). One checkout and one read of shipmate.yaml per run;
 * which environments a run promotes into is decided here (named; the one
 * whose policies folder the run was pointed at; or each environment fed by
 * one whose manifests a change touched), and each promotion is made by
 * src/promote from that checkout.
 */
import { join } from "node:path";
import { FleetContext } from "../config/context.ts";
import { environmentOfPath, FLEET_FILE, type Fleet, NoFleetError } from "../config/fleet.ts";
import { UsageError } from "../errors.ts";
import { Workspace } from "../git/workspace.ts";
import { type PromoteJob, type PromoteResult, runPromotion } from "../promote/index.ts";

/** Which environments a run promotes into. */
export type PromoteTarget =
  /** One environment; `from` defaults to its promotion source (src/config/fleet.ts). */
  | { kind: "environment"; to: string; from?: string }
  /** The environment that keeps its policies in this repository-relative folder (the Action's `policies` input). */
  | { kind: "policies-folder"; path: string; from?: string }
  /** Every environment promoted from one whose manifests these repository-relative files are in. */
  | { kind: "changed"; files: readonly string[] };

export interface PromoteRun extends Omit<PromoteJob, "to" | "from" | "workspace" | "fleet"> {
  target: PromoteTarget;
}

/** The run was pointed at a folder no environment keeps its policies in: told apart by class. */
export class NoTargetEnvironmentError extends UsageError {
  override name = "NoTargetEnvironmentError";
}

/** The environments a run promotes into, with their sources, from shipmate.yaml (pure). */
export function promotionTargets(
  fleet: Fleet | undefined,
  target: PromoteTarget,
): { to: string; from?: string }[] {
  if (target.kind === "environment")
    return [{ to: target.to, ...(target.from !== undefined ? { from: target.from } : {}) }];
  if (target.kind === "policies-folder") {
    const want =
      target.path
        .replace(/\\/g, "/")
        .replace(/^\.\/?/, "")
        .replace(/\/$/, "") || ".";
    const env = fleet && environmentOfPath(fleet, want, "policies");
    if (!env)
      throw new NoTargetEnvironmentError(
        fleet
          ? `no environment in ${FLEET_FILE} keeps its policies in ${want}`
          : `no ${FLEET_FILE} says which environment keeps its policies in ${want}`,
      );
    return [{ to: env.name, ...(target.from !== undefined ? { from: target.from } : {}) }];
  }
  if (!fleet) return [];
  const changed = new Set(
    target.files.map((f) => environmentOfPath(fleet, f, "manifests")?.name).filter((n) => n !== undefined),
  );
  return fleet.spec.environments
    .filter((e) => e.promoteFrom !== undefined && changed.has(e.promoteFrom))
    .map((e) => ({ to: e.name, ...(e.promoteFrom ? { from: e.promoteFrom } : {}) }));
}

/**
 * Runs the promotions a target names, in order, from one checkout of the
 * fleet and one read of shipmate.yaml.
 * A named environment needs shipmate.yaml (NoFleetError); a change in a
 * repository without one promotes nothing.
 */
export async function runPromote(run: PromoteRun): Promise<PromoteResult[]> {
  const { target, ...job } = run;
  const ws = await Workspace.acquire(run.repo, {
    ...(run.branch !== undefined ? { branch: run.branch } : {}),
    env: run.env,
    ...(run.tokenEnv !== undefined ? { tokenEnv: run.tokenEnv } : {}),
  });
  try {
    // One fleet context for the run: shipmate.yaml read once, each environment's files walked and read once.
    const context = await FleetContext.open(ws.dir);
    ws.onFilesChanged = (paths) => context.changed(paths);
    const fleet = context.fleet;
    if (!fleet && target.kind !== "changed") throw new NoFleetError(join(ws.dir, FLEET_FILE));
    const results: PromoteResult[] = [];
    for (const t of promotionTargets(fleet, target))
      results.push(
        await runPromotion({
          ...job,
          to: t.to,
          ...(t.from !== undefined ? { from: t.from } : {}),
          workspace: ws,
          context,
          ...(fleet ? { fleet } : {}),
        }),
      );
    return results;
  } finally {
    ws.dispose();
  }
}

/** A run into one environment (named, or by its policies folder): its one promotion. */
export async function runPromoteInto(
  run: PromoteRun & { target: Exclude<PromoteTarget, { kind: "changed" }> },
): Promise<PromoteResult> {
  const [result] = await runPromote(run);
  // promotionTargets gives exactly one target for these kinds, or throws.
  if (!result) throw new Error(`no promotion was made into ${JSON.stringify(run.target)}`);
  return result;
}
