import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { parseIdentity, Workspace } from "../../git/workspace.ts";
import { runUpdateJob, type UpdateJobResult } from "../../update/job.ts";
import { parseSetFlag } from "../../update/selections.ts";
import { resolveInput } from "../../update/source.ts";
import { parseFlags } from "../args.ts";
import { type CliIO, writeLine } from "../io.ts";
import type { Command } from "../main.ts";

const USAGE = `shipmate update [--repo PATH|URL] [--branch BRANCH] [--path SUBDIR] [--policies DIR]
       [--set <namespace>:<name>=<image[:tag][@digest]>]... [--commit | --push | --push-branch NAME]
       [--dry-run] [--json] [--author "Name <email>"] [--committer "Name <email>"] [--sign]
       [--message-template FILE] [--token-env VAR] [--max-attempts N] [--max-file-bytes N]
       [--insecure-registry HOST:PORT]... [--pull-secret FILE]... [--no-cache]

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

exit: 0 done (also when nothing changed), 1 a file or push failed, 2 usage or configuration error`;

function report(io: CliIO, r: UpdateJobResult, json: boolean, dryRun: boolean): void {
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
  else if (r.pushed)
    writeLine(
      io.stdout,
      `pushed ${r.commit} to ${r.branch}${r.attempts > 1 ? ` (${r.attempts} attempts)` : ""}`,
    );
  else if (r.commit)
    writeLine(io.stdout, `committed ${r.commit}${r.branch ? ` (${r.branch} already up to date)` : ""}`);
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${flag} must be a positive integer, got "${value}"`);
  return n;
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
    });
    if (positionals.length > 0)
      throw new UsageError(`unexpected argument "${positionals[0]}" (see 'shipmate update --help')`);
    const modes = [
      values.commit && "--commit",
      values.push && "--push",
      values["push-branch"] !== undefined && "--push-branch",
    ].filter(Boolean);
    if (modes.length > 1) throw new UsageError(`${modes.join(" and ")} cannot be combined`);
    const dryRun = values["dry-run"] === true;
    const repo = values.repo ?? io.cwd;
    const isUrl = Workspace.isUrl(repo);
    if (isUrl && !dryRun && modes.length === 0)
      throw new UsageError("--repo URL needs --push, --push-branch or --dry-run");
    if (isUrl && values.commit)
      throw new UsageError("--commit works on a local checkout; with --repo URL use --push or --push-branch");
    const sets = (values.set ?? []).map(parseSetFlag);
    const policiesDir =
      values.policies === undefined
        ? undefined
        : isAbsolute(values.policies)
          ? values.policies
          : resolve(io.cwd, values.policies);
    let template: string | undefined;
    if (values["message-template"] !== undefined) {
      const file = resolve(io.cwd, values["message-template"]);
      try {
        template = readFileSync(file, "utf8");
      } catch (err) {
        throw new UsageError(`--message-template ${values["message-template"]}: ${(err as Error).message}`);
      }
    }
    const result = await runUpdateJob({
      repo: isUrl ? repo : resolve(io.cwd, repo),
      ...(values.branch !== undefined ? { branch: values.branch } : {}),
      ...(values.path !== undefined ? { path: values.path } : {}),
      input: (dir) =>
        resolveInput({
          sets,
          ...(policiesDir !== undefined ? { policiesDir } : {}),
          repoDir: dir,
          env: io.env,
          insecureRegistries: values["insecure-registry"] ?? [],
          pullSecrets: (values["pull-secret"] ?? []).map((f) => resolve(io.cwd, f)),
          ...(values["no-cache"] ? { cacheDir: false as const } : {}),
        }),
      delivery: values.push
        ? "push"
        : values["push-branch"] !== undefined
          ? "push-branch"
          : values.commit
            ? "commit"
            : "files",
      ...(values["push-branch"] !== undefined ? { pushBranch: values["push-branch"] } : {}),
      dryRun,
      env: io.env,
      ...(values["token-env"] !== undefined ? { tokenEnv: values["token-env"] } : {}),
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
      onRetry: (attempt, reason) =>
        writeLine(io.stderr, `push rejected (${reason}); retrying on the new head (attempt ${attempt + 1})`),
    });
    report(io, result, values.json === true, dryRun);
    return result.problems.some((p) => p.severity === "error") ? 1 : 0;
  },
};
