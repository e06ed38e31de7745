/**
 * The update use case: the one engine function behind `shipmate update`,
 * the Action's `update`, the App's refreshes and `shipmate serve`. One
 * checkout and one read of the policies per run; the run's plan (which
 * policies it covers, how each one is delivered) is decided by `planUpdate`
 * over src/config/policy-set.ts's rules; the selections are then written
 * and delivered: pushed, proposed as one pull request, or — for the CLI's
 * local deliveries — written, committed or pushed to a branch of its own.
 */
import { relative } from "node:path";
import type { FileUpdate } from "../changes.ts";
import { FleetContext } from "../config/context.ts";
import { environmentOfPath, FLEET_FILE, type Fleet, type FleetEnvironment } from "../config/fleet.ts";
import {
  loadRunPolicies,
  type ModeRequest,
  type PolicySet,
  type PolicySource,
} from "../config/policy-set.ts";
import type { Policy, UpdateAutomation, UpdateMode } from "../config/types.ts";
import { describeError, UsageError } from "../errors.ts";
import type { EnsureResult, Forge } from "../forge/types.ts";
import type { PushRefspec } from "../git/deliver.ts";
import { goTemplateToHandlebars } from "../git/message.ts";
import { type CloneStart, type Identity, Workspace } from "../git/workspace.ts";
import type { ImageSelection, PolicyClaim, Problem, UpdateInput } from "../manifest/types.ts";
import type { RunNotifications } from "../notify/run.ts";
import { normaliseImage } from "../registry/reference.ts";
import type { ScanOptions } from "../scan/index.ts";
import type { PolicyResult } from "../scan/types.ts";
import {
  NO_TIMINGS,
  type RunDefaults,
  runUpdateJob,
  type UpdateJob,
  type UpdateJobResult,
} from "../update/job.ts";
import { inputFromScan, inputFromSets, type SetFlag } from "../update/selections.ts";
import type { UpdateRequestResult } from "./deliver.ts";

/** What a run covers: some image repositories (normalised), or everything. */
export type ScanScope = { kind: "all" } | { kind: "images"; images: ReadonlySet<string> };

/** How the changes leave the machine. */
export type UpdateDelivery =
  /** Each policy pushed to the branch or proposed in one pull request, as its mode says. */
  | { kind: "by-mode"; mode?: ModeRequest }
  /** Every change the same way, modes aside: files edited, committed here, or a branch rebuilt and force-pushed. */
  | { kind: "files" }
  | { kind: "commit" }
  | { kind: "push-branch"; branch: string }
  /**
   * Every change pushed to `branch` on top of its tip, the branch created
   * from the checkout when it does not exist (Flux's `git.push.branch`).
   */
  | { kind: "push"; branch: string; refspec?: PushRefspec };

export interface UpdateRun {
  /** Fleet repository: a local checkout or a clone URL. */
  repo: string;
  /** Branch pushed to and base of requests; default: the checkout's, or the remote's default branch. */
  branch?: string;
  /**
   * A clone URL's checkout at a tag, reference or commit instead of a branch
   * (Flux's `git.checkout.ref`): `branch` is then absent, the delivery a
   * `push` to a named branch, and no request is opened (no base branch).
   */
  checkout?: CloneStart;
  /** Only files under this repository-relative folder are edited (default: the automation's update.path). */
  path?: string;
  policies: PolicySource;
  /** Explicit selections: nothing is scanned, and each is applied as given. */
  sets?: readonly SetFlag[];
  scope?: ScanScope;
  /** Default: by mode (each policy pushed or proposed as its mode says). */
  delivery?: UpdateDelivery;
  dryRun: boolean;
  env: NodeJS.ProcessEnv;
  /** Environment variable holding the git HTTPS token (default SHIPMATE_GIT_TOKEN). */
  tokenEnv?: string;
  scan?: Omit<ScanOptions, "only" | "env">;
  /** Needed when any change is delivered by pull request; made on demand. */
  forge?: Forge | (() => Forge | Promise<Forge>);
  author?: Identity;
  committer?: Identity;
  sign?: boolean;
  messageTemplate?: string;
  messageTemplateSource?: string;
  /** Flux's template data: `.AutomationObject` and `.Values` (default: the repository's one automation's). */
  automation?: string;
  messageValues?: Record<string, string>;
  maxAttempts?: number;
  maxFileBytes?: number;
  onRetry?: (attempt: number, reason: string) => void;
  /** The pull request's own options (besides the environments' shipmate.yaml settings). */
  request?: { branch?: string; labels?: string[]; reviewers?: string[]; autoMerge?: boolean };
  /**
   * A `push` delivery to a branch of its own whose request failed after the
   * push (the in-cluster automation remembers its changes): when this run
   * pushes nothing new, the request is asked for again with these changes.
   */
  pendingRequest?: readonly FileUpdate[];
  /**
   * What a failed request of a `push` delivery's branch does: `throw` (the
   * default, the CLI's) or `report` it in `pushRequestError`, the push
   * standing in the result.
   */
  requestFailure?: "throw" | "report";
  /**
   * Reads the checkout once the changes are delivered (the App's dashboard):
   * the same checkout, at the branch's tip after a delivery.
   */
  inspect?: (ctx: { dir: string; policies: PolicySet }) => Promise<void>;
}

/** A run's plan: pure, from the policy set and the run's asks. */
export interface UpdatePlan {
  /** Policies the run scans (after coverage, suspension and scope), with the delivery of each. */
  policies: { policy: Policy; mode: UpdateMode }[];
  /** Every image repository (normalised) the covered, unsuspended policies watch, in scope or not. */
  watched: string[];
  /** Why nothing is scanned, when nothing is: as a person reads it, and as a reason code reads it. */
  skipped?: string;
  skippedBecause?: "no-policies" | "out-of-scope" | "suspended";
}

export interface UpdateRunResult extends UpdatePlan {
  scan: PolicyResult[];
  /** The changes pushed to the branch (by-mode), or the one delivery of files/commit/push-branch. */
  push?: UpdateJobResult;
  /** The pull-request delivery, when any change used it. */
  request?: UpdateRequestResult;
  /** The request proposing a `push` delivery's branch into the checkout branch, when shipmate.yaml asks for one. */
  pushRequest?: EnsureResult;
  /** With `requestFailure: "report"`: why that request failed (the branch is pushed), and the changes it proposes. */
  pushRequestError?: { message: string; files: readonly FileUpdate[] };
  /** Dry runs of pull-request changes: what the request would change. */
  proposed?: UpdateJobResult;
  /** The scan's failures, as problems of the policies' files (registry errors are errors). */
  scanProblems: Problem[];
  /** Problems found before any delivery: refused policy files, the automation's warnings. */
  setup: Problem[];
  /** `setup`, then each delivery's problems. */
  problems: Problem[];
  /** What shipmate.yaml's `notifications:` sent about the run, when it has any and there was news. */
  notifications?: RunNotifications;
}

function inScope(p: Policy, scope: ScanScope | undefined): boolean {
  if (!scope || scope.kind === "all") return true;
  const image = normaliseImage(p.image);
  return image !== undefined && scope.images.has(image);
}

/**
 * Which policies a run scans and how each is delivered. A policy is scanned
 * when the policy set covers it (environments fed by promotion are not),
 * it is not suspended, and it watches an image in scope.
 */
export function planUpdate(
  set: Pick<PolicySet, "candidates" | "modeOf">,
  opts: { scope?: ScanScope; mode?: ModeRequest } = {},
): UpdatePlan {
  const active = set.candidates.filter((p) => !p.suspended);
  const policies = active
    .filter((p) => inScope(p, opts.scope))
    .map((policy) => ({ policy, mode: set.modeOf(policy, opts.mode) }));
  const watched = [
    ...new Set(active.map((p) => normaliseImage(p.image)).filter((i): i is string => i !== undefined)),
  ].sort();
  const plan: UpdatePlan = { policies, watched };
  if (policies.length === 0) {
    plan.skippedBecause =
      set.candidates.length === 0
        ? "no-policies"
        : opts.scope?.kind === "images"
          ? "out-of-scope"
          : "suspended";
    plan.skipped = {
      "no-policies": "no image policies found",
      "out-of-scope": `no policy watches ${opts.scope?.kind === "images" ? [...opts.scope.images].join(", ") : ""}`,
      suspended: "every policy is suspended",
    }[plan.skippedBecause];
  }
  return plan;
}

/**
 * Split an update's selections by delivery mode: the two halves run as two
 * jobs. Every policy stays known to both halves, and each half defers the
 * other's policies, so a marker naming a policy of the other half is left
 * alone quietly.
 */
export function splitByMode(
  input: UpdateInput,
  modeOf: (policy: string) => UpdateMode,
): Record<UpdateMode, UpdateInput> {
  const push = new Map<string, ImageSelection>();
  const pullRequest = new Map<string, ImageSelection>();
  for (const [id, sel] of input.selections) (modeOf(id) === "push" ? push : pullRequest).set(id, sel);
  const deferred = input.deferred ?? [];
  return {
    push: { selections: push, policies: input.policies, deferred: [...deferred, ...pullRequest.keys()] },
    "pull-request": {
      selections: pullRequest,
      policies: input.policies,
      deferred: [...deferred, ...push.keys()],
    },
  };
}

/** Flux's messageTemplate is Go text/template; only a template Handlebars can read is carried over. */
function looksLikeGoTemplate(t: string): boolean {
  return /\{\{-?\s*(range|end|if|else|with|\.)/.test(t);
}

/**
 * Delivery by pull request (./deliver.ts, and with it the forge request
 * code) loads only for a run that proposes: a files-only or pushed update
 * never holds it (the update benchmark's memory figure).
 */
const loadDelivery = () => import("./deliver.ts");

/** Flux's defaults of a run (author, update path, message template) from its one ImageUpdateAutomation. */
export function automationDefaults(a: UpdateAutomation, root: string, problems: Problem[]): RunDefaults {
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
      file: relative(root, a.source.file) || a.source.file,
      ...(a.source.line ? { line: a.source.line } : {}),
      kind: "unsupported-scalar",
      severity: "warning",
      message: `ImageUpdateAutomation ${a.id}: its messageTemplate uses Go template features beyond fields, range, if and with; shipmate's default message is used (write it as Handlebars to keep it)`,
    });
  return d;
}

function scanProblems(results: readonly PolicyResult[], root: string): Problem[] {
  return results.flatMap((r): Problem[] =>
    r.ok
      ? []
      : [
          {
            file: relative(root, r.policy.source.file) || r.policy.source.file,
            ...(r.policy.source.line ? { line: r.policy.source.line } : {}),
            kind: r.reason === "registry-error" ? "registry-error" : "no-selection",
            severity: r.reason === "registry-error" ? "error" : "warning",
            message: `policy ${r.policy.id}: ${r.message}`,
            policy: r.policy.id,
          },
        ],
  );
}

const claim = (p: Pick<Policy, "id" | "image" | "paths">): PolicyClaim => ({
  id: p.id,
  image: p.image,
  ...(p.paths ? { paths: p.paths } : {}),
});

export async function runUpdate(run: UpdateRun): Promise<UpdateRunResult> {
  const ws = await Workspace.acquire(run.repo, {
    ...(run.branch !== undefined ? { branch: run.branch } : {}),
    ...(run.checkout !== undefined ? { start: run.checkout } : {}),
    env: run.env,
    ...(run.tokenEnv !== undefined ? { tokenEnv: run.tokenEnv } : {}),
  });
  try {
    return await updateIn(ws, run);
  } finally {
    ws.dispose();
  }
}

async function updateIn(ws: Workspace, run: UpdateRun): Promise<UpdateRunResult> {
  const root = ws.dir;
  // One fleet context for the run: shipmate.yaml and the tree's walk, shared by the policies, both halves and inspect.
  const context = await FleetContext.open(root, { walk: "all" });
  ws.onFilesChanged = (paths) => context.changed(paths);
  const set = await loadRunPolicies(context, run.policies);
  const delivery: UpdateDelivery = run.delivery ?? { kind: "by-mode" };
  const byMode = delivery.kind === "by-mode" ? delivery : undefined;
  const plan = planUpdate(set, {
    ...(run.scope ? { scope: run.scope } : {}),
    ...(byMode?.mode ? { mode: byMode.mode } : {}),
  });
  const setup: Problem[] = set.refused.map((r) => ({
    file: r.file,
    ...(r.line ? { line: r.line } : {}),
    kind: "too-large",
    severity: "warning",
    message: r.message,
  }));
  const result: UpdateRunResult = { ...plan, scan: [], scanProblems: [], setup, problems: [] };
  const sets = run.sets ?? [];
  if (sets.length === 0 && plan.skipped) {
    result.problems.push(...setup);
    await run.inspect?.({ dir: root, policies: set });
    return result;
  }

  const active = set.automations.filter((a) => !a.suspended);
  const defaults = active.length === 1 && active[0] ? automationDefaults(active[0], root, setup) : undefined;
  result.problems.push(...setup);

  const claims = set.known.map(claim);
  let input: UpdateInput;
  if (sets.length > 0) {
    // Explicit selections: each is applied as given, wherever its policy is; the others' markers are warned of.
    input = inputFromSets(sets, claims);
  } else {
    const { scanPolicies } = await import("../scan/index.ts");
    const report = await scanPolicies(
      plan.policies.map((c) => c.policy),
      { ...run.scan, env: run.env },
    );
    result.scan = report.results;
    result.scanProblems = scanProblems(report.results, root);
    const selected = inputFromScan(report).selections;
    // A known policy this run did not set (not covered, out of scope, suspended, or undecided, which the scan
    // reports once) has its markers left alone quietly.
    input = {
      selections: selected,
      policies: claims,
      deferred: set.known.map((p) => p.id).filter((id) => !selected.has(id)),
    };
  }

  const base = run.branch ?? (await ws.currentBranch());
  const job: Omit<UpdateJob, "input" | "delivery" | "dryRun"> = {
    repo: run.repo,
    ...(base ? { branch: base } : {}),
    ...(run.path !== undefined ? { path: run.path } : {}),
    env: run.env,
    ...(run.tokenEnv ? { tokenEnv: run.tokenEnv } : {}),
    ...(run.author ? { author: run.author } : {}),
    ...(run.committer ? { committer: run.committer } : {}),
    ...(run.sign ? { sign: true } : {}),
    ...(run.messageTemplate !== undefined
      ? { messageTemplate: run.messageTemplate, messageTemplateSource: run.messageTemplateSource }
      : {}),
    ...(run.automation !== undefined ? { automation: run.automation } : {}),
    ...(run.messageValues !== undefined ? { messageValues: run.messageValues } : {}),
    ...(run.maxAttempts !== undefined ? { maxAttempts: run.maxAttempts } : {}),
    ...(run.maxFileBytes !== undefined ? { maxFileBytes: run.maxFileBytes } : {}),
    ...(run.onRetry ? { onRetry: run.onRetry } : {}),
    workspace: ws,
    context,
  };
  const withDefaults = (i: UpdateInput) => ({ ...i, ...(defaults ? { defaults } : {}) });

  if (delivery.kind !== "by-mode") {
    const d = delivery;
    result.push = await runUpdateJob({
      ...job,
      input: withDefaults(input),
      delivery: d.kind,
      ...(d.kind === "push-branch" || d.kind === "push" ? { pushBranch: d.branch } : {}),
      ...(d.kind === "push" && d.refspec ? { pushRefspec: d.refspec } : {}),
      dryRun: run.dryRun,
    });
    result.problems.push(...result.push.problems);
    // A request is asked for after a push, or again for an earlier push whose request failed.
    const proposed = result.push.pushed ? result.push.files : (run.pendingRequest ?? []);
    if (d.kind === "push" && base && d.branch !== base && proposed.length && !run.dryRun && set.fleet) {
      try {
        await requestPushBranch(run, result, set.fleet, d.branch, base, proposed);
      } catch (err) {
        if (run.requestFailure !== "report") throw err;
        result.pushRequestError = { message: describeError(err), files: proposed };
      }
    }
  } else {
    const known = new Map(set.known.map((p) => [p.id, p]));
    const modeOf = (id: string) => set.modeOf(known.get(id), byMode?.mode);
    const halves = splitByMode(input, modeOf);
    const pushInput = halves.push;
    if (pushInput.selections.size > 0) {
      result.push = await runUpdateJob({
        ...job,
        input: withDefaults(pushInput),
        delivery: "push",
        dryRun: run.dryRun,
      });
      result.problems.push(...result.push.problems);
    }
    const prInput = halves["pull-request"];
    if (prInput.selections.size > 0) {
      const selected = [...prInput.selections.keys()];
      if (run.dryRun) {
        result.proposed = await runUpdateJob({
          ...job,
          input: withDefaults(prInput),
          delivery: "files",
          dryRun: true,
        });
        result.problems.push(...result.proposed.problems);
      } else {
        const forge = typeof run.forge === "function" ? await run.forge() : run.forge;
        if (!forge)
          throw new UsageError(
            `policies ${selected.join(", ")} deliver by pull request, but no forge is configured`,
          );
        if (!base)
          throw new UsageError(
            "cannot tell the base branch of the pull request: the checkout is on a detached HEAD (give the branch)",
          );
        const { deliverUpdateAsPullRequest } = await loadDelivery();
        const request = await deliverUpdateAsPullRequest({
          job: { ...job, branch: base, input: withDefaults(prInput) },
          forge,
          imageOf: (id) => known.get(id)?.image ?? prInput.selections.get(id)?.image,
          settingsOf: (id) => set.requestSettingsOf(known.get(id)),
          ...(run.request?.branch ? { branch: run.request.branch } : {}),
          ...(run.request?.labels?.length ? { labels: run.request.labels } : {}),
          ...(run.request?.reviewers?.length ? { reviewers: run.request.reviewers } : {}),
          ...(run.request?.autoMerge ? { autoMerge: true } : {}),
        });
        result.request = request;
        result.problems.push(...request.update.problems);
      }
    }
  }
  if (run.inspect) {
    // A clone of shipmate's own is left at the tip it started from: bring it to what was just pushed.
    if (ws.temporary && base && !run.dryRun) {
      const tip = await ws.fetch(base);
      const head = await ws.head();
      if (tip && tip !== head) await ws.advance(await ws.headRef(), head, tip);
    }
    await run.inspect({ dir: root, policies: set });
  }
  if (!run.dryRun && set.fleet?.spec.notifications) {
    // Notification providers (and their rate limiter) load only for a fleet that has notifications.
    const { notifyRun, updateEvents } = await import("../notify/run.ts");
    const sent = await notifyRun(
      set.fleet.spec.notifications,
      updateEvents(set.fleet, result, changeRows(result)),
      {
        env: run.env,
      },
    );
    if (sent) {
      result.notifications = sent;
      for (const message of sent.warnings)
        result.problems.push({ file: FLEET_FILE, kind: "notification", severity: "warning", message });
    }
  }
  return result;
}

/**
 * After a push to a branch other than the checkout's (Flux's
 * `git.push.branch`): when shipmate.yaml says an environment whose manifests
 * the push changed delivers by pull request, the push branch is proposed
 * into the checkout branch through the run's forge. Without a forge the push
 * stands and a warning says why no request was opened.
 */
async function requestPushBranch(
  run: UpdateRun,
  result: UpdateRunResult,
  fleet: Fleet,
  branch: string,
  base: string,
  files: readonly FileUpdate[],
): Promise<void> {
  const envs = [
    ...new Set(
      files
        .map((f) => environmentOfPath(fleet, f.path, "manifests"))
        .filter((e): e is FleetEnvironment => e?.mode === "pull-request"),
    ),
  ];
  if (envs.length === 0) return;
  const forge = typeof run.forge === "function" ? await run.forge() : run.forge;
  if (!forge) {
    result.problems.push({
      file: FLEET_FILE,
      kind: "no-forge",
      severity: "warning",
      message: `environment ${envs.map((e) => e.name).join(", ")} delivers by pull request, but no forge is configured: branch ${branch} was pushed without a request`,
    });
    return;
  }
  const { requestForPushBranch } = await loadDelivery();
  result.pushRequest = await requestForPushBranch({
    forge,
    branch,
    base,
    files,
    settings: envs.map((e) => e.pullRequest),
  });
}

/** One report of a run: its deliveries merged (the CLI prints one), the scan's problems first. */
export function combined(r: UpdateRunResult): UpdateJobResult {
  const results = [r.push, r.request?.update, r.proposed].filter(
    (x): x is UpdateJobResult => x !== undefined,
  );
  const pushed = results.find((x) => x.pushed || x.commit) ?? results[0];
  return {
    ...(pushed ?? { commit: null, pushed: false, attempts: 0, timings: NO_TIMINGS }),
    files: results.flatMap((x) => x.files),
    problems: [
      ...r.setup,
      ...r.scanProblems,
      ...results.flatMap((x) => x.problems),
      ...r.problems.filter((p) => p.kind === "notification" || p.kind === "no-forge"),
    ],
    diff: results.map((x) => x.diff).join(""),
  };
}

/** One row per changed scalar, the shape the Action's `changes` output and summaries use. */
export interface ChangeRow {
  policy: string;
  file: string;
  line: number;
  old: string;
  new: string;
  mode: UpdateMode;
}

export function changeRows(r: UpdateRunResult): ChangeRow[] {
  const rows: ChangeRow[] = [];
  const add = (u: UpdateJobResult | undefined, mode: UpdateMode) => {
    for (const f of u?.files ?? [])
      for (const c of f.changes)
        rows.push({ policy: c.policy, file: f.path, line: c.line, old: c.old, new: c.new, mode });
  };
  add(r.push, "push");
  add(r.request?.update ?? r.proposed, "pull-request");
  return rows;
}
