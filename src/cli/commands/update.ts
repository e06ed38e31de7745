import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import type { ProposalOutcome } from "../../forge/propose.ts";
import { parseIdentity, Workspace } from "../../git/workspace.ts";
import { combined, runUpdate, type UpdateDelivery } from "../../run/update.ts";
import type { UpdateJobResult } from "../../update/job.ts";
import { parseSetFlag } from "../../update/selections.ts";
import { parseFlags, positiveInt, readableDir } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";

const USAGE = `shipmate update [--repo PATH|URL] [--branch BRANCH] [--path SUBDIR] [--policies DIR]
       [--set <namespace>:<name>=<image[:tag][@digest]>]... [--commit | --push | --push-branch NAME]
       [--dry-run] [--json] [--author "Name <email>"] [--committer "Name <email>"] [--sign]
       [--message-template FILE] [--token-env VAR] [--max-attempts N] [--max-file-bytes N]
       [--insecure-registry HOST:PORT]... [--pull-secret FILE]... [--no-cache]
       [--pull-request] [--forge github|gitlab|gitea] [--forge-url URL] [--forge-repo OWNER/NAME]
       [--forge-token-env VAR] [--pr-branch shipmate/NAME] [--label L]... [--reviewer R]... [--auto-merge]

  --repo PATH|URL        local checkout (default: .) or a URL to clone shallow into a temporary directory
  --branch BRANCH        branch to push to / base of --push-branch (default: the checkout's branch)
  --path SUBDIR          only files under this directory (default: ImageUpdateAutomation update.path, or all)
  --policies DIR         policy documents (Flux or shipmate.dev/v1alpha1); default: the repository itself
  --set NS:NAME=REF      apply this selection without scanning (repeatable)
  --commit               commit the changed files on the current branch (local checkout)
  --push                 commit on top of origin's BRANCH and push; on a race, fetch and re-apply, with backoff
  --push-branch NAME     rebuild NAME from BRANCH with exactly these changes; force-push with a lease
  --dry-run              print a unified diff, write nothing
  --json                 {"files": {path: [{setter, old, new, line, via, object}]}, "commit": sha|null, …}
  --author, --committer  "Name <email>" (default: the automation's author, git config, or shipmate)
  --sign                 sign the commit (git's own GPG or SSH signing configuration)
  --message-template F   Handlebars commit message template (data: changes, files, Changed.Changes, …)
  --token-env VAR        HTTPS token variable (default SHIPMATE_GIT_TOKEN; user: SHIPMATE_GIT_USERNAME)
  --pull-request         deliver every change as one pull/merge request (with --push, only the policies
                         whose mode, or whose environment's mode in shipmate.yaml, is pull-request)
  --forge KIND           github, gitlab or gitea (default: from the remote's host)
  --forge-url URL        API base of GitHub Enterprise, self-managed GitLab, Gitea/Forgejo
  --forge-repo O/N       the repository on the forge (default: from the remote URL)
  --forge-token-env VAR  forge token variable (default: GITHUB_TOKEN, GITLAB_TOKEN or GITEA_TOKEN)
  --pr-branch NAME       bot branch of the request (default shipmate/update-<base>)
  --label L, --reviewer R, --auto-merge   request labels, reviewers, merge when checks pass (besides
                                         shipmate.yaml's pullRequest settings of the environments changed)

exit: 0 done (also when nothing changed), 1 a file or push failed, 2 usage or configuration error`;

function requestLine(outcome: ProposalOutcome): string {
  if (outcome.action === "none") return "no pull request needed";
  if (outcome.action === "closed")
    return `closed the pull request of ${outcome.branch}: nothing left to change`;
  return `${outcome.action} pull request #${outcome.pullRequest.number} ${outcome.pullRequest.url}`;
}

function report(
  io: CliIO,
  r: UpdateJobResult,
  json: boolean,
  dryRun: boolean,
  request?: ProposalOutcome,
): void {
  for (const p of r.problems)
    writeLine(io.stderr, `${p.severity}: ${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`);
  if (json) {
    const files: Record<string, unknown[]> = {};
    for (const f of r.files)
      files[f.path] = f.changes.map((c) => ({
        setter: c.setter,
        old: c.old,
        new: c.new,
        line: c.line,
        via: c.via,
        object: c.object,
      }));
    const out: Record<string, unknown> = {
      files,
      commit: r.commit,
      pushed: r.pushed,
      problems: r.problems,
      timings: r.timings,
    };
    if (r.branch) out.branch = r.branch;
    if (dryRun) out.diff = r.diff;
    if (request)
      out.pullRequest =
        "pullRequest" in request
          ? { action: request.action, number: request.pullRequest.number, url: request.pullRequest.url }
          : request;
    writeLine(io.stdout, JSON.stringify(out, null, 2));
    return;
  }
  if (dryRun) {
    if (r.diff) io.stdout.write(r.diff);
    else writeLine(io.stdout, "nothing to change");
    return;
  }
  for (const f of r.files) {
    writeLine(io.stdout, f.path);
    for (const c of f.changes) writeLine(io.stdout, `  ${c.line}: ${c.setter} ${c.old} -> ${c.new}`);
  }
  if (r.files.length === 0) writeLine(io.stdout, "nothing to change");
  if (request) writeLine(io.stdout, requestLine(request));
  if (r.files.length === 0) return;
  if (r.pushed)
    writeLine(
      io.stdout,
      `pushed ${r.commit} to ${r.branch}${r.attempts > 1 ? ` (${r.attempts} attempts)` : ""}`,
    );
  else if (r.commit)
    writeLine(io.stdout, `committed ${r.commit}${r.branch ? ` (${r.branch} already up to date)` : ""}`);
}

function exitCode(r: UpdateJobResult): number {
  return r.problems.some((p) => p.severity === "error") ? 1 : 0;
}

export const command: Command = {
  summary: "Write the selected images into the fleet repository (format-preserving) and commit or push them",
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseFlags("update", argv, {
      repo: { type: "string" },
      branch: { type: "string" },
      path: { type: "string" },
      policies: { type: "string" },
      set: { type: "string", multiple: true },
      commit: { type: "boolean" },
      push: { type: "boolean" },
      "push-branch": { type: "string" },
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      author: { type: "string" },
      committer: { type: "string" },
      sign: { type: "boolean" },
      "message-template": { type: "string" },
      "token-env": { type: "string" },
      "max-attempts": { type: "string" },
      "max-file-bytes": { type: "string" },
      "insecure-registry": { type: "string", multiple: true },
      "pull-secret": { type: "string", multiple: true },
      "no-cache": { type: "boolean" },
      "pull-request": { type: "boolean" },
      forge: { type: "string" },
      "forge-url": { type: "string" },
      "forge-repo": { type: "string" },
      "forge-token-env": { type: "string" },
      "pr-branch": { type: "string" },
      label: { type: "string", multiple: true },
      reviewer: { type: "string", multiple: true },
      "auto-merge": { type: "boolean" },
    });
    if (positionals.length > 0)
      throw new UsageError(`unexpected argument "${positionals[0]}" (see 'shipmate update --help')`);
    const modes = [
      values.commit && "--commit",
      values.push && "--push",
      values["push-branch"] !== undefined && "--push-branch",
    ].filter(Boolean);
    const allRequests = values["pull-request"] === true;
    if (allRequests && (values.commit || values["push-branch"] !== undefined))
      throw new UsageError(
        "--pull-request delivers through a request; it cannot be combined with --commit or --push-branch",
      );
    if (modes.length > 1) throw new UsageError(`${modes.join(" and ")} cannot be combined`);
    const dryRun = values["dry-run"] === true;
    const repo = values.repo ?? io.cwd;
    const isUrl = Workspace.isUrl(repo);
    if (isUrl && !dryRun && modes.length === 0 && !allRequests)
      throw new UsageError("--repo URL needs --push, --push-branch, --pull-request or --dry-run");
    if (isUrl && values.commit)
      throw new UsageError("--commit works on a local checkout; with --repo URL use --push or --push-branch");
    if (!isUrl) readableDir(resolve(io.cwd, repo), "--repo");
    const policiesDir =
      values.policies === undefined
        ? undefined
        : readableDir(
            isAbsolute(values.policies) ? values.policies : resolve(io.cwd, values.policies),
            "--policies",
          );
    let template: string | undefined;
    if (values["message-template"] !== undefined) {
      const file = resolve(io.cwd, values["message-template"]);
      try {
        template = readFileSync(file, "utf8");
      } catch (err) {
        throw new UsageError(`--message-template ${values["message-template"]}: ${(err as Error).message}`);
      }
    }
    const sets = (values.set ?? []).map(parseSetFlag);
    const delivery: UpdateDelivery =
      values.push || allRequests
        ? { kind: "by-mode", ...(allRequests ? { mode: { all: "pull-request" as const } } : {}) }
        : values["push-branch"] !== undefined
          ? { kind: "push-branch", branch: values["push-branch"] }
          : { kind: values.commit ? "commit" : "files" };
    // The registry client loads only for a scan: explicit selections never pay for it.
    const credentials =
      sets.length > 0
        ? undefined
        : await (await import("../../registry/index.ts")).defaultCredentials({
            env: io.env,
            secretFiles: (values["pull-secret"] ?? []).map((f) => resolve(io.cwd, f)),
          });
    const repoPath = isUrl ? repo : resolve(io.cwd, repo);
    const result = await runUpdate({
      repo: repoPath,
      ...(values.branch !== undefined ? { branch: values.branch } : {}),
      ...(values.path !== undefined ? { path: values.path } : {}),
      policies: policiesDir !== undefined ? { kind: "dir", dir: policiesDir } : { kind: "repo" },
      sets,
      delivery,
      dryRun,
      env: io.env,
      ...(values["token-env"] !== undefined ? { tokenEnv: values["token-env"] } : {}),
      scan: {
        ...(credentials ? { credentials } : {}),
        insecureRegistries: values["insecure-registry"] ?? [],
        ...(values["no-cache"] ? { cacheDir: false as const } : {}),
      },
      // The forge clients load only when a request is wanted: a plain update never pays for them.
      forge: async () =>
        (await import("../../forge/index.ts")).forgeFromFlags(
          {
            ...(values.forge !== undefined ? { forge: values.forge } : {}),
            ...(values["forge-url"] !== undefined ? { forgeUrl: values["forge-url"] } : {}),
            ...(values["forge-repo"] !== undefined ? { forgeRepo: values["forge-repo"] } : {}),
            ...(values["forge-token-env"] !== undefined ? { tokenEnv: values["forge-token-env"] } : {}),
          },
          repoPath,
          io.env,
        ),
      ...(values.author !== undefined ? { author: parseIdentity(values.author, "--author") } : {}),
      ...(values.committer !== undefined
        ? { committer: parseIdentity(values.committer, "--committer") }
        : {}),
      sign: values.sign === true,
      ...(template !== undefined
        ? { messageTemplate: template, messageTemplateSource: values["message-template"] }
        : {}),
      ...(values["max-attempts"] !== undefined
        ? { maxAttempts: positiveInt(values["max-attempts"], "--max-attempts") }
        : {}),
      ...(values["max-file-bytes"] !== undefined
        ? { maxFileBytes: positiveInt(values["max-file-bytes"], "--max-file-bytes") }
        : {}),
      onRetry: (attempt: number, reason: string) =>
        writeLine(io.stderr, `push rejected (${reason}); retrying on the new head (attempt ${attempt + 1})`),
      request: {
        ...(values["pr-branch"] !== undefined ? { branch: values["pr-branch"] } : {}),
        ...(values.label ? { labels: values.label } : {}),
        ...(values.reviewer ? { reviewers: values.reviewer } : {}),
        ...(values["auto-merge"] ? { autoMerge: true } : {}),
      },
    });
    if (sets.length === 0 && result.skipped)
      throw new UsageError(
        `${result.skipped} in ${policiesDir ?? repo}; give --policies DIR or --set <namespace>:<name>=<image:tag>`,
      );
    const merged = combined(result);
    report(io, merged, values.json === true, dryRun, result.request?.request);
    return exitCode(merged);
  },
};
