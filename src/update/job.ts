/**
 * One `update` run end to end, shared by the CLI, the Action and the App:
 * open or clone the repository, apply the selections to the tree (pure
 * engine + atomic writes), and deliver the result through git.
 */

import type { FleetContext } from "../config/context.ts";
import { diskTree } from "../config/tree.ts";
import { UsageError } from "../errors.ts";
import { type DeliveryMode, deliver, type PushRefspec } from "../git/deliver.ts";
import { messageData, renderMessage } from "../git/message.ts";
import { type Identity, Workspace } from "../git/workspace.ts";
import { unifiedDiff } from "../manifest/diff.ts";
import type { FileUpdate, Problem, UpdateInput } from "../manifest/types.ts";
import { type PipelineTimings, updateTree } from "./pipeline.ts";

/** Flux's defaults of a run, from its ImageUpdateAutomation (the job's own options win). */
export interface RunDefaults {
  author?: { name: string; email: string };
  messageTemplate?: string;
  messageTemplateSource?: string;
  messageValues?: Record<string, string>;
  automation?: string;
  path?: string;
}

/** Selections with what the run found before writing: problems reported with the job's, and Flux's defaults. */
export interface ResolvedInput extends UpdateInput {
  problems?: Problem[];
  defaults?: RunDefaults;
}

export interface UpdateJob {
  /** A local path (default: the current directory) or a clone URL. */
  repo: string;
  /** The branch to push to / base branch; default: the checkout's branch, or the remote's default branch. */
  branch?: string;
  /** Only files under this repository-relative directory are looked at. */
  path?: string;
  /** The selections, or a function that loads them from the checked-out tree (policies inside the repo). */
  input: ResolvedInput | ((dir: string) => Promise<ResolvedInput>);
  delivery: "files" | "commit" | "push" | "push-branch";
  /** push-branch: the branch rebuilt; push: the branch pushed to, when not `branch` itself. */
  pushBranch?: string;
  /** push: a further destination of the commit, or the only one (Flux's `git.push.refspec`). */
  pushRefspec?: PushRefspec;
  dryRun: boolean;
  env: NodeJS.ProcessEnv;
  /** Environment variable holding an HTTPS token (default SHIPMATE_GIT_TOKEN). */
  tokenEnv?: string;
  author?: Identity;
  committer?: Identity;
  sign?: boolean;
  messageTemplate?: string;
  messageTemplateSource?: string;
  messageValues?: Record<string, string>;
  automation?: string;
  maxAttempts?: number;
  backoffMs?: number;
  maxFileBytes?: number;
  onRetry?: (attempt: number, reason: string) => void;
  /** The run's checkout, when it has one already (neither opened nor disposed here). */
  workspace?: Workspace;
  /** The run's view of that checkout: its one walk and one read of each file (src/config/context.ts). */
  context?: FleetContext;
}

/** Where a run's time went: the walk, then the pipeline (reading and rewriting here, writing beside). */
export interface Timings extends PipelineTimings {
  walkMs: number;
  pipelineMs: number;
}

export const NO_TIMINGS: Timings = {
  walkMs: 0,
  pipelineMs: 0,
  readMs: 0,
  rewriteMs: 0,
  writeMs: 0,
  writers: 0,
};

export interface UpdateJobResult {
  files: FileUpdate[];
  problems: Problem[];
  commit: string | null;
  pushed: boolean;
  attempts: number;
  /** Unified diff of the changes (computed for --dry-run only). */
  diff: string;
  /** Of the attempt that counted. */
  timings: Timings;
  branch?: string;
}

const DEFAULT_IDENTITY: Identity = { name: "shipmate", email: "shipmate@users.noreply.invalid" };

/** Reads, rewrites and (unless dry) writes the tree under `dir`. */
export async function updateDirectory(
  dir: string,
  input: UpdateInput,
  opts: {
    path?: string;
    dryRun: boolean;
    /** Write the files (default: unless a dry run); without, each changed file comes back with its content. */
    write?: boolean;
    maxFileBytes?: number;
    writers?: number;
    /** The run's FleetContext: when `dir` is its checkout, the tree is listed and read from it. */
    context?: FleetContext;
  },
): Promise<{ files: FileUpdate[]; problems: Problem[]; diff: string; timings: Timings }> {
  const t0 = performance.now();
  const context = opts.context?.covers(dir) ? opts.context : undefined;
  const source = context ?? diskTree(dir);
  const walked = source.list({
    ...(opts.path !== undefined ? { subdir: opts.path } : {}),
    ...(opts.maxFileBytes !== undefined ? { maxFileBytes: opts.maxFileBytes } : {}),
  });
  const t1 = performance.now();
  const write = opts.write ?? !opts.dryRun;
  const r = await updateTree(
    {
      realRoot: walked.realRoot,
      candidates: walked.files,
      source,
      input,
      write,
      originals: opts.dryRun,
    },
    opts.writers !== undefined ? { writers: opts.writers } : {},
  );
  const timings: Timings = {
    walkMs: Math.round(t1 - t0),
    pipelineMs: Math.round(performance.now() - t1),
    ...r.timings,
  };
  // What this run wrote is looked at again before the context's walk is next used.
  if (write) context?.changed(r.files.map((f) => f.path));
  const problems = [...walked.problems, ...r.problems];
  const diff = opts.dryRun ? unifiedDiff(r.files, r.originals) : "";
  return { files: r.files, problems, diff, timings };
}

export async function runUpdateJob(job: UpdateJob): Promise<UpdateJobResult> {
  const ws =
    job.workspace ??
    (await Workspace.acquire(job.repo, {
      ...(job.branch !== undefined ? { branch: job.branch } : {}),
      env: job.env,
      ...(job.tokenEnv !== undefined ? { tokenEnv: job.tokenEnv } : {}),
    }));
  try {
    const input: ResolvedInput = typeof job.input === "function" ? await job.input(ws.dir) : job.input;
    const defaults = input.defaults ?? {};
    const path = job.path ?? defaults.path;
    const problems: Problem[] = [];
    let diff = "";
    let timings: Timings = NO_TIMINGS;
    const apply = async (how: { dir: string; write: boolean }) => {
      // Each attempt starts from a fresh tree: problems and diff describe the attempt that counted.
      problems.length = 0;
      problems.push(...(input.problems ?? []));
      const r = await updateDirectory(how.dir, input, {
        dryRun: job.dryRun,
        write: how.write && !job.dryRun,
        ...(path !== undefined ? { path } : {}),
        ...(job.maxFileBytes !== undefined ? { maxFileBytes: job.maxFileBytes } : {}),
        ...(job.context ? { context: job.context } : {}),
      });
      problems.push(...r.problems);
      diff = r.diff;
      timings = r.timings;
      return r.files;
    };
    if (job.dryRun) {
      const files = await apply({ dir: ws.dir, write: false });
      return { files, problems, commit: null, pushed: false, attempts: 1, diff, timings };
    }
    const branch = job.branch ?? (await ws.currentBranch());
    let mode: DeliveryMode;
    if (job.delivery === "push" || job.delivery === "push-branch") {
      // A push names its branch even from a detached HEAD (an automation's tag or commit checkout).
      const target = job.delivery === "push" ? (job.pushBranch ?? branch) : branch;
      if (!target)
        throw new UsageError(
          "cannot tell which branch to push: the checkout is on a detached HEAD (pass --branch)",
        );
      mode =
        job.delivery === "push"
          ? {
              kind: "push",
              branch: target,
              ...(job.pushRefspec ? { refspec: job.pushRefspec } : {}),
            }
          : { kind: "push-branch", branch: job.pushBranch ?? "", base: target };
    } else mode = { kind: job.delivery };
    const author = job.author ?? defaults.author ?? (await configIdentity(ws)) ?? DEFAULT_IDENTITY;
    const template = job.messageTemplate ?? defaults.messageTemplate;
    const templateSource =
      job.messageTemplate !== undefined ? job.messageTemplateSource : defaults.messageTemplateSource;
    const automation = job.automation ?? defaults.automation;
    const values = job.messageValues ?? defaults.messageValues;
    const committer = job.committer ?? author;
    const delivery = await deliver(ws, {
      mode,
      apply,
      message: (files) =>
        renderMessage(
          template,
          messageData(files, {
            ...(automation !== undefined ? { automation } : {}),
            ...(values !== undefined ? { values } : {}),
          }),
          templateSource,
        ),
      author,
      committer,
      sign: job.sign ?? false,
      ...(job.maxAttempts !== undefined ? { maxAttempts: job.maxAttempts } : {}),
      ...(job.backoffMs !== undefined ? { backoffMs: job.backoffMs } : {}),
      ...(job.onRetry ? { onRetry: job.onRetry } : {}),
    });
    return {
      files: delivery.files,
      problems,
      commit: delivery.commit,
      pushed: delivery.pushed,
      attempts: delivery.attempts,
      diff,
      timings,
      ...(mode.kind === "push-branch" || mode.kind === "push" ? { branch: mode.branch } : {}),
    };
  } finally {
    if (ws !== job.workspace) ws.dispose();
  }
}

async function configIdentity(ws: Workspace): Promise<Identity | undefined> {
  const name = await ws.config("user.name");
  const email = await ws.config("user.email");
  return name && email ? { name, email } : undefined;
}
