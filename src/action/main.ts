/**
 * The GitHub Action: inputs in, one engine call, outputs and a job summary
 * out. `scan` reports what each policy selects; `update` scans and
 * delivers (runUpdate: pushed or proposed per policy); `promote` runs
 * the promotion; `push-artifact` publishes a folder as a Flux OCI
 * artifact. Problems become annotations on the files they are in,
 * and fail the step; the token is masked before anything is printed.
 */
import { isAbsolute, relative, resolve } from "node:path";
import * as core from "@actions/core";
import { PolicyConfigError } from "../config/errors.ts";
import { FLEET_FILE } from "../config/fleet.ts";
import type { PolicySource } from "../config/policy-set.ts";
import type { UpdateMode } from "../config/types.ts";
import { ConfigError, describeError, registerSecret, UsageError } from "../errors.ts";
import { createForge, PROVIDERS, parseForgeKind } from "../forge/index.ts";
import type { Forge, MergeMethod } from "../forge/types.ts";
import { parseIdentity } from "../git/workspace.ts";
import { buildArtifact, parseOciUrl, pushArtifact } from "../registry/artifact.ts";
import { RegistryClient } from "../registry/client.ts";
import { defaultCredentials } from "../registry/index.ts";
import { NoTargetEnvironmentError, type PromoteTarget, runPromoteInto } from "../run/promote.ts";
import { runScan } from "../run/scan.ts";
import { changeRows, runUpdate } from "../run/update.ts";
import { promoteRows, promoteSummary, scanRows, scanSummary, updateSummary } from "./summary.ts";

/** The bot GitHub shows for commits made with the workflow's token. */
const ACTIONS_BOT = "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>";

const input = (name: string) => core.getInput(name).trim();
const optional = (name: string) => input(name) || undefined;

/** A list input: one item per line or comma. */
function list(name: string): string[] {
  return core
    .getInput(name)
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function bool(name: string): boolean {
  const v = input(name).toLowerCase();
  if (v === "" || v === "false") return false;
  if (v === "true") return true;
  throw new UsageError(`input ${name} must be true or false, got "${input(name)}"`);
}

function mode(): UpdateMode | undefined {
  const m = optional("mode");
  if (m === undefined || m === "push" || m === "pull-request") return m;
  throw new UsageError(`input mode must be push or pull-request, got "${m}"`);
}

interface Context {
  workspace: string;
  env: NodeJS.ProcessEnv;
  token: string | undefined;
}

/** A path for annotations: relative to the repository root, as GitHub wants it. */
function annotationFile(ctx: Context, file: string): string {
  const rel = relative(ctx.workspace, isAbsolute(file) ? file : resolve(ctx.workspace, file));
  return rel.startsWith("..") ? file : rel;
}

function forgeFor(ctx: Context): () => Forge {
  return () => {
    const kind = parseForgeKind(optional("forge") ?? "github");
    const repo = optional("repository") ?? ctx.env.GITHUB_REPOSITORY;
    if (!repo) throw new UsageError("input repository is empty and GITHUB_REPOSITORY is not set");
    // The runner of the forge says where its API is (GitHub Actions: GITHUB_API_URL).
    const url = optional("forge-url") ?? PROVIDERS[kind].runnerUrl?.(ctx.env);
    if (!ctx.token) throw new UsageError("pull requests need a token: set the token input");
    return createForge({
      kind,
      repo,
      token: ctx.token,
      ...(url ? { url } : {}),
      tokenSource: "the token input",
    });
  };
}

function who() {
  const author = parseIdentity(optional("author") ?? ACTIONS_BOT, "input author");
  return { author, committer: author };
}

function policySource(ctx: Context): PolicySource {
  const p = optional("policies");
  return p ? { kind: "dir", dir: resolve(ctx.workspace, p) } : { kind: "repo" };
}

async function scanOptions(ctx: Context) {
  return {
    credentials: await defaultCredentials({
      env: ctx.env,
      secretFiles: list("pull-secrets").map((f) => resolve(ctx.workspace, f)),
    }),
    insecureRegistries: list("insecure-registries"),
    ...(optional("platform") ? { platform: optional("platform") } : {}),
  };
}

async function scan(ctx: Context): Promise<boolean> {
  const { report } = await runScan({
    root: ctx.workspace,
    policies: policySource(ctx),
    scan: await scanOptions(ctx),
    env: ctx.env,
    onRefused: (r) =>
      core.warning(r.message, {
        title: "policy file refused",
        file: annotationFile(ctx, r.file),
        ...(r.line ? { startLine: r.line } : {}),
      }),
  });
  for (const r of report.results)
    if (!r.ok)
      core.warning(`${r.policy.id}: ${r.message}`, {
        title: "no selection",
        file: annotationFile(ctx, r.policy.source.file),
        ...(r.policy.source.line ? { startLine: r.policy.source.line } : {}),
      });
  core.setOutput("changes", JSON.stringify(scanRows(report.results)));
  core.setOutput("pull-request-url", "");
  core.setOutput("commit", "");
  await core.summary.addRaw(scanSummary(report.results)).write();
  return report.results.every((r) => r.ok);
}

async function update(ctx: Context): Promise<boolean> {
  const dryRun = bool("dry-run");
  const m = mode();
  const path = optional("path");
  const branch = optional("branch");
  const labels = list("labels");
  const result = await runUpdate({
    repo: ctx.workspace,
    ...(branch ? { branch } : {}),
    ...(path ? { path } : {}),
    policies: policySource(ctx),
    delivery: { kind: "by-mode", ...(m ? { mode: { fallback: m } } : {}) },
    dryRun,
    env: ctx.env,
    scan: await scanOptions(ctx),
    forge: forgeFor(ctx),
    ...who(),
    ...(labels.length ? { request: { labels } } : {}),
    onRetry: (attempt, reason) =>
      core.info(`push rejected (${reason}); retrying on the new head (attempt ${attempt + 1})`),
  });
  for (const s of result.scan)
    if (!s.ok)
      core.error(`${s.policy.id}: ${s.message}`, {
        title: "no selection",
        file: annotationFile(ctx, s.policy.source.file),
        ...(s.policy.source.line ? { startLine: s.policy.source.line } : {}),
      });
  for (const p of result.problems) {
    const props = { file: annotationFile(ctx, p.file), ...(p.line ? { startLine: p.line } : {}) };
    if (p.severity === "error") core.error(p.message, props);
    else core.warning(p.message, props);
  }
  const pr =
    result.request && "pullRequest" in result.request.request
      ? result.request.request.pullRequest
      : undefined;
  core.setOutput("changes", JSON.stringify(changeRows(result)));
  core.setOutput("pull-request-url", pr?.url ?? "");
  core.setOutput("commit", result.push?.pushed ? (result.push.commit ?? "") : "");
  await core.summary.addRaw(updateSummary(result, dryRun)).write();
  return result.scan.every((s) => s.ok) && !result.problems.some((p) => p.severity === "error");
}

/**
 * `to` defaults to the environment whose policies folder the `policies` input
 * names (scaffolded workflows); `from` to its promotion source (src/config).
 * runPromote reads shipmate.yaml once for both.
 */
async function promote(ctx: Context): Promise<boolean> {
  const to = optional("to");
  const from = optional("from");
  const policies = optional("policies");
  if (!to && !policies) throw new UsageError("promote needs the to input (the environment to promote into)");
  const target: PromoteTarget = to
    ? { kind: "environment", to, ...(from ? { from } : {}) }
    : {
        kind: "policies-folder",
        path: relative(ctx.workspace, resolve(ctx.workspace, policies ?? "."))
          .split("\\")
          .join("/"),
        ...(from ? { from } : {}),
      };
  const m = mode();
  const merge = optional("merge-method");
  if (merge && !["merge", "squash", "rebase"].includes(merge))
    throw new UsageError(`input merge-method must be merge, squash or rebase, got "${merge}"`);
  const branch = optional("branch");
  const labels = list("labels");
  const reviewers = list("reviewers");
  let forge: Forge | undefined;
  try {
    forge = forgeFor(ctx)();
  } catch (err) {
    // Push-mode promotions without gates on checks need no forge; runPromotion says so if one was needed.
    if (!(err instanceof UsageError)) throw err;
  }
  const result = await runPromoteInto({
    repo: ctx.workspace,
    ...(branch ? { branch } : {}),
    target,
    apps: list("apps"),
    dryRun: bool("dry-run"),
    perApp: bool("per-app"),
    env: ctx.env,
    ...(forge ? { forgeClient: forge } : {}),
    skipGates: bool("skip-gates"),
    ...(labels.length ? { labels } : {}),
    ...(reviewers.length ? { reviewers } : {}),
    autoMerge: bool("auto-merge"),
    ...(merge ? { mergeMethod: merge as MergeMethod } : {}),
    ...who(),
  }).catch((err: unknown) => {
    if (err instanceof NoTargetEnvironmentError) throw new UsageError(`${err.message}: set the to input`);
    throw err;
  });
  if (m && m !== result.mode)
    core.notice(
      `${result.to} is delivered by ${result.mode} as ${FLEET_FILE} says; the mode input (${m}) does not change that`,
    );
  for (const p of result.problems) {
    const props = p.file
      ? { file: annotationFile(ctx, p.file), ...(p.line ? { startLine: p.line } : {}) }
      : {};
    if (p.severity === "error") core.error(p.message, props);
    else core.warning(p.message, props);
  }
  for (const g of result.gates)
    if (g.state !== "passed") core.notice(`gate ${g.gate}: ${g.message}`, { title: `promotion ${g.state}` });
  const pr = result.requests.find((q) => q.url && q.outcome !== "closed");
  core.setOutput("changes", JSON.stringify(promoteRows(result)));
  core.setOutput("pull-request-url", pr?.url ?? "");
  core.setOutput("commit", result.status === "pushed" ? (result.commit ?? "") : "");
  await core.summary.addRaw(promoteSummary(result)).write();
  return result.status !== "blocked" && !result.problems.some((p) => p.severity === "error");
}

/**
 * Publishes a folder of the checkout as a Flux OCI artifact. Source and
 * revision default to what `flux push artifact` is documented with: the
 * repository URL and `<branch>@sha1:<commit>` of the workflow run.
 */
async function pushArtifactCommand(ctx: Context): Promise<boolean> {
  const url = optional("artifact");
  if (!url) throw new UsageError("push-artifact needs the artifact input, oci://HOST/REPO:TAG");
  const ref = parseOciUrl(url);
  if (!ref.tag || ref.digest)
    throw new UsageError(`input artifact ${url}: push to a tag, oci://HOST/REPO:TAG`);
  const dir = resolve(ctx.workspace, optional("path") ?? ".");
  const e = ctx.env;
  const repoUrl =
    e.GITHUB_SERVER_URL && e.GITHUB_REPOSITORY ? `${e.GITHUB_SERVER_URL}/${e.GITHUB_REPOSITORY}` : undefined;
  const gitRevision = e.GITHUB_SHA ? `${e.GITHUB_REF_NAME ?? "HEAD"}@sha1:${e.GITHUB_SHA}` : undefined;
  const source = optional("source") ?? repoUrl;
  const revision = optional("revision") ?? gitRevision;
  const client = new RegistryClient({
    credentials: (await scanOptions(ctx)).credentials,
    cacheDir: false,
    insecureRegistries: list("insecure-registries"),
    env: ctx.env,
  });
  const built = await buildArtifact(dir, {
    ...(source ? { source } : {}),
    ...(revision ? { revision } : {}),
  });
  const pushed = bool("dry-run") ? undefined : await pushArtifact(client, ref, built);
  core.setOutput("changes", JSON.stringify([{ artifact: pushed?.reference ?? "", digest: built.digest }]));
  core.setOutput("pull-request-url", "");
  core.setOutput("commit", "");
  await core.summary
    .addRaw(
      `### shipmate push-artifact\n\n${bool("dry-run") ? "Would push" : "Pushed"} \`${url}\` (${built.layer.files} files, \`${built.digest}\`).\n`,
    )
    .write();
  return true;
}

function report(ctx: Context, err: unknown): void {
  if (err instanceof PolicyConfigError) {
    for (const p of err.problems)
      core.error(p.message, {
        title: "invalid policy",
        file: annotationFile(ctx, p.file),
        ...(p.line ? { startLine: p.line } : {}),
      });
    process.exitCode = core.ExitCode.Failure;
    return;
  }
  if (err instanceof ConfigError && err.file) {
    core.error(describeError(err), {
      file: annotationFile(ctx, err.file),
      ...(err.line ? { startLine: err.line } : {}),
    });
    process.exitCode = core.ExitCode.Failure;
    return;
  }
  core.setFailed(describeError(err));
}

export async function run(): Promise<void> {
  const env = process.env;
  const token = core.getInput("token") || undefined;
  if (token) {
    core.setSecret(token);
    registerSecret(token);
  }
  const ctx: Context = {
    workspace: resolve(optional("working-directory") ?? env.GITHUB_WORKSPACE ?? process.cwd()),
    // The engine reads tokens from the environment it is given, never from process.env directly.
    env: token ? { ...env, SHIPMATE_GIT_TOKEN: token, SHIPMATE_FORGE_TOKEN: token } : env,
    token,
  };
  try {
    const command = input("command") || "update";
    let ok: boolean;
    if (command === "scan") ok = await scan(ctx);
    else if (command === "update") ok = await update(ctx);
    else if (command === "promote") ok = await promote(ctx);
    else if (command === "push-artifact") ok = await pushArtifactCommand(ctx);
    else
      throw new UsageError(`input command must be scan, update, promote or push-artifact, got "${command}"`);
    if (!ok) core.setFailed(`shipmate ${command} finished with problems (see the annotations)`);
  } catch (err) {
    report(ctx, err);
  }
}
