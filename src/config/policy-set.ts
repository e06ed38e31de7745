/**
 * The policies a run starts from, read once, and the rules every front end
 * shares about them: which policies a scan covers (environments fed by
 * promotion are not scanned), which delivery mode each policy uses, and
 * which `pullRequest` settings its environment adds. The CLI, the Action,
 * the App and `shipmate serve` all ask these questions here and nowhere else.
 */
import { existsSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { FleetContext } from "./context.ts";
import { environmentOfFile, type Fleet, type FleetEnvironment, type PullRequestSettings } from "./fleet.ts";
import type { LimitRefusal } from "./limits.ts";
import { loadPolicyConfig } from "./load.ts";
import type { Policy, UpdateAutomation, UpdateMode } from "./types.ts";

/**
 * Where the policies come from:
 * - `dir`: a folder named by the caller (`--policies`, the Action's `policies`
 *   input): every policy in it is covered, whatever environment it is in;
 * - `repo`: inside the fleet repository. With `path`, that folder (covered as
 *   `dir` is); without, the policies of the environments shipmate.yaml lists
 *   in this repository, of which a scan covers those of environments without
 *   `promoteFrom` (the others move by promotion); every policy in the tree
 *   when there is no shipmate.yaml.
 */
export type PolicySource = { kind: "dir"; dir: string } | { kind: "repo"; path?: string };

/**
 * How a run asks for delivery besides what the policies and shipmate.yaml say:
 * `all` overrides everything (the CLI's `--pull-request`); `fallback` applies to
 * policies that name no mode themselves, before their environment's (the
 * Action's `mode` input).
 */
export interface ModeRequest {
  all?: UpdateMode;
  fallback?: UpdateMode;
}

export interface PolicySet {
  root: string;
  fleet: Fleet | undefined;
  /** The run's view of the checkout the policies were read in: its one walk and one read of each file. */
  context: FleetContext;
  /** Every policy read: the update knows their markers, whether or not this run sets them. */
  known: Policy[];
  /** The policies a scan covers (before suspension and scope): see `coveredByScan`. */
  candidates: Policy[];
  /** The ImageUpdateAutomations beside the policies (Flux's defaults of a run). */
  automations: UpdateAutomation[];
  /** Policy files refused by a bound of src/config/limits.ts, repository-relative; the policies beside them are used. */
  refused: LimitRefusal[];
  /** The shipmate.yaml environment a policy belongs to, by the folder its file is in. */
  environmentOf(p: Policy): FleetEnvironment | undefined;
  /** The delivery of a policy (undefined: a policy id this run does not know, e.g. a `--set` of another). */
  modeOf(p: Policy | undefined, request?: ModeRequest): UpdateMode;
  requestSettingsOf(p: Policy | undefined): PullRequestSettings | undefined;
}

/**
 * Whether a scan covers a policy: yes when the caller named the folder it
 * came from; otherwise unless its environment is fed by promotion from
 * another (those environments get versions that ran before them, never a
 * fresh image from the registry).
 */
export function coveredByScan(source: PolicySource, env: FleetEnvironment | undefined): boolean {
  if (source.kind === "dir" || source.path !== undefined) return true;
  return env?.promoteFrom === undefined;
}

/** The delivery of a policy: `all`, else its own mode, else `fallback`, else its environment's, else push. */
export function deliveryMode(
  policy: Pick<Policy, "mode"> | undefined,
  env: Pick<FleetEnvironment, "mode"> | undefined,
  request: ModeRequest = {},
): UpdateMode {
  return request.all ?? policy?.mode ?? request.fallback ?? env?.mode ?? "push";
}

async function loadDirs(
  dirs: string[],
  refused: LimitRefusal[],
  context: FleetContext,
): Promise<{ policies: Policy[]; automations: UpdateAutomation[] }> {
  const seen = new Set<string>();
  const policies: Policy[] = [];
  const automations: UpdateAutomation[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    const config = await loadPolicyConfig(dir, context);
    for (const r of config.skipped ?? []) if (!refused.some((q) => q.file === r.file)) refused.push(r);
    for (const p of config.policies) {
      if (seen.has(p.id)) continue;
      seen.add(p.id);
      policies.push(p);
    }
    for (const a of config.automations) if (!automations.some((b) => b.id === a.id)) automations.push(a);
  }
  return { policies, automations };
}

/**
 * Reads the policies a run starts from in the checkout at `root`, or in the
 * run's FleetContext (shipmate.yaml loaded once, the tree walked once, each
 * policy file read once). Given a folder, it opens a context of its own that
 * walks only the policies' folders.
 */
export async function loadRunPolicies(at: string | FleetContext, source: PolicySource): Promise<PolicySet> {
  const context = typeof at === "string" ? await FleetContext.open(at) : at;
  const root = context.root;
  const fleet = context.fleet;
  const refused: LimitRefusal[] = [];
  let dirs: string[];
  if (source.kind === "dir") dirs = [source.dir];
  else if (source.path !== undefined) dirs = [resolve(root, source.path)];
  else if (!fleet) dirs = [root];
  else
    dirs = fleet.spec.environments.filter((e) => !e.repository).map((e) => join(root, e.policies ?? e.path));
  const { policies, automations } = await loadDirs(dirs, refused, context);
  const environmentOf = (p: Policy) => environmentOfFile(root, fleet, p.source.file);
  return {
    root,
    fleet,
    context,
    known: policies,
    candidates: policies.filter((p) => coveredByScan(source, environmentOf(p))),
    automations,
    refused: refused.map((r) => ({ ...r, file: relative(root, r.file) || r.file })),
    environmentOf,
    modeOf: (p, request) => deliveryMode(p, p ? environmentOf(p) : undefined, request),
    requestSettingsOf: (p) => (p ? environmentOf(p)?.pullRequest : undefined),
  };
}
