/**
 * Where an `update` run's selections come from, with I/O: explicit `--set`
 * flags (no registry is contacted), or the policies of a directory scanned
 * against their registries. A single ImageUpdateAutomation in that directory
 * supplies Flux's defaults (author, update path, message template).
 */
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { environmentOfFile, FLEET_FILE, loadFleet, type PullRequestSettings } from "../config/fleet.ts";
import { loadPolicyConfig } from "../config/index.ts";
import type { LimitRefusal } from "../config/limits.ts";
import type { Policy, UpdateAutomation, UpdateMode } from "../config/types.ts";
import { UsageError } from "../errors.ts";
import { goTemplateToHandlebars } from "../git/message.ts";
import { inputFromScan, inputFromSets, type SetFlag } from "./selections.ts";
import type { PolicyClaim, Problem, UpdateInput } from "./types.ts";

export interface RunDefaults {
  author?: { name: string; email: string };
  messageTemplate?: string;
  messageTemplateSource?: string;
  messageValues?: Record<string, string>;
  automation?: string;
  path?: string;
}

export interface ResolvedInput extends UpdateInput {
  /** Policies the scan could not decide (registry errors are errors, the rest warnings). */
  problems?: Problem[];
  defaults?: RunDefaults;
  /**
   * How each known policy wants its changes delivered: the policy's own `mode`,
   * else its environment's in shipmate.yaml. Policies with neither are absent.
   */
  modes?: Map<string, UpdateMode>;
  /** The `pullRequest` settings of each policy's environment in shipmate.yaml, where it has some. */
  requestSettings?: Map<string, PullRequestSettings>;
}

export interface SourceOptions {
  sets: readonly SetFlag[];
  /** Directory (or file) of policy documents; default: the repository checkout. */
  policiesDir?: string;
  repoDir: string;
  env: NodeJS.ProcessEnv;
  insecureRegistries?: string[];
  pullSecrets?: string[];
  cacheDir?: string | false;
}

function claims(policies: readonly Policy[]): PolicyClaim[] {
  return policies.map((p) => ({ id: p.id, image: p.image, ...(p.paths ? { paths: p.paths } : {}) }));
}

/** Flux's messageTemplate is Go text/template; only a template Handlebars can read is carried over. */
function looksLikeGoTemplate(t: string): boolean {
  return /\{\{-?\s*(range|end|if|else|with|\.)/.test(t);
}

function automationDefaults(a: UpdateAutomation, repoDir: string, problems: Problem[]): RunDefaults {
  const d: RunDefaults = { automation: a.id };
  if (a.commit.author.email)
    d.author = { name: a.commit.author.name ?? a.commit.author.email, email: a.commit.author.email };
  if (a.update.path && a.update.path !== "." && a.update.path !== "./")
    d.path = a.update.path.replace(/^\.\//, "");
  if (a.commit.messageTemplateValues) d.messageValues = a.commit.messageTemplateValues;
  const t = a.commit.messageTemplate;
  const template = t && looksLikeGoTemplate(t) ? goTemplateToHandlebars(t) : t;
  if (template) {
    d.messageTemplate = template;
    d.messageTemplateSource = `${a.source.file} (ImageUpdateAutomation ${a.id})`;
  } else if (t)
    problems.push({
      file: relative(repoDir, a.source.file) || a.source.file,
      ...(a.source.line ? { line: a.source.line } : {}),
      kind: "unsupported-scalar",
      severity: "warning",
      message: `ImageUpdateAutomation ${a.id}: its messageTemplate uses Go template features beyond fields, range, if and with; shipmate's default message is used (write it as Handlebars to keep it)`,
    });
  return d;
}

/** Each policy's delivery mode (its own, else its environment's) and its environment's request settings. */
async function delivery(
  repoDir: string,
  policies: readonly Policy[],
): Promise<Pick<ResolvedInput, "modes" | "requestSettings">> {
  const fleet = existsSync(join(repoDir, FLEET_FILE)) ? await loadFleet(repoDir) : undefined;
  const modes = new Map<string, UpdateMode>();
  const requestSettings = new Map<string, PullRequestSettings>();
  for (const p of policies) {
    const env = environmentOfFile(repoDir, fleet, p.source.file);
    const mode = p.mode ?? env?.mode;
    if (mode) modes.set(p.id, mode);
    if (env?.pullRequest) requestSettings.set(p.id, env.pullRequest);
  }
  return { modes, requestSettings };
}

/** Policy files refused by a bound, as warnings of the run (the other policies are used). */
function refused(skipped: readonly LimitRefusal[], repoDir: string): Problem[] {
  return skipped.map((r) => ({
    file: relative(repoDir, r.file) || r.file,
    ...(r.line ? { line: r.line } : {}),
    kind: "too-large",
    severity: "warning",
    message: r.message,
  }));
}

export async function resolveInput(opts: SourceOptions): Promise<ResolvedInput> {
  const dir = opts.policiesDir ?? opts.repoDir;
  if (opts.sets.length > 0) {
    // Explicit selections never scan; the policies (by default the repository's own) add path claims,
    // known ids and delivery modes.
    const config = await loadPolicyConfig(dir);
    const policies = config.policies;
    return {
      ...inputFromSets(opts.sets, claims(policies)),
      ...(config.skipped ? { problems: refused(config.skipped, opts.repoDir) } : {}),
      ...(await delivery(opts.repoDir, policies)),
    };
  }
  const config = await loadPolicyConfig(dir);
  const policies = config.policies.filter((p) => !p.suspended);
  if (policies.length === 0)
    throw new UsageError(
      `no image policies found in ${dir}; give --policies DIR or --set <namespace>:<name>=<image:tag>`,
    );
  const problems: Problem[] = refused(config.skipped ?? [], opts.repoDir);
  const active = config.automations.filter((a) => !a.suspended);
  const defaults =
    active.length === 1 && active[0] ? automationDefaults(active[0], opts.repoDir, problems) : undefined;
  // The registry client loads only for a scan: explicit selections never pay for it.
  const [{ defaultCredentials }, { scanPolicies }] = await Promise.all([
    import("../registry/index.ts"),
    import("../scan/index.ts"),
  ]);
  const credentials = await defaultCredentials({ env: opts.env, secretFiles: opts.pullSecrets ?? [] });
  const report = await scanPolicies(policies, {
    credentials,
    env: opts.env,
    insecureRegistries: opts.insecureRegistries ?? [],
    ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
  });
  for (const r of report.results) {
    if (r.ok) continue;
    problems.push({
      file: relative(opts.repoDir, r.policy.source.file) || r.policy.source.file,
      ...(r.policy.source.line ? { line: r.policy.source.line } : {}),
      kind: r.reason === "registry-error" ? "registry-error" : "no-selection",
      severity: r.reason === "registry-error" ? "error" : "warning",
      message: `policy ${r.policy.id}: ${r.message}`,
    });
  }
  return {
    ...inputFromScan(report),
    problems,
    ...(await delivery(opts.repoDir, config.policies)),
    ...(defaults ? { defaults } : {}),
  };
}
