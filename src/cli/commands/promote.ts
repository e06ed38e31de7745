import { resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import type { MergeMethod } from "../../forge/types.ts";
import { parseIdentity, Workspace } from "../../git/workspace.ts";
import type { PromoteResult } from "../../promote/index.ts";
import { runPromoteInto } from "../../run/promote.ts";
import { parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";

const USAGE = `shipmate promote --from ENV --to ENV [--repo PATH|URL] [--branch BRANCH] [--app NAME]...
       [--dry-run] [--json] [--per-app] [--skip-gates] [--checks] [--health] [--soak DURATION] [--canary]
       [--kubeconfig FILE] [--target-kubeconfig FILE] [--health-namespace NS]
       [--forge github|gitlab|gitea] [--forge-url URL] [--forge-repo OWNER/NAME] [--forge-token-env VAR]
       [--label NAME]... [--reviewer USER]... [--auto-merge] [--merge-method merge|squash|rebase]
       [--token-env VAR] [--author "Name <email>"] [--committer "Name <email>"] [--sign]`;

const MERGE_METHODS = ["merge", "squash", "rebase"];

function human(io: CliIO, r: PromoteResult): void {
  writeLine(io.stdout, `promote ${r.from} → ${r.to} (source ${r.revision.slice(0, 12)}, mode ${r.mode})`);
  for (const c of r.changes)
    writeLine(io.stdout, `  ${c.app || "-"}  ${c.image}  ${c.from} → ${c.to}  (${c.files.join(", ")})`);
  for (const s of r.skipped)
    writeLine(io.stdout, `  skipped ${s.image}${s.app ? ` (${s.app})` : ""}: ${s.reason}`);
  for (const g of r.gates) writeLine(io.stdout, `gate ${g.gate}: ${g.state} — ${g.message}`);
  for (const b of r.rollback?.rollbacks ?? [])
    writeLine(
      io.stdout,
      b.outcome === "skipped"
        ? `rollback ${b.app} (${b.canary}): not proposed — ${b.reason ?? ""}`
        : `rollback ${b.app} (${b.canary}): ${b.from} → ${b.to}${b.request ? ` ${b.request.action}${b.request.number !== undefined ? ` #${b.request.number}` : ""}${b.request.url ? ` ${b.request.url}` : ""}` : ""}${b.closed.map((c) => `; closed #${c.number}`).join("")}`,
    );
  for (const q of r.requests)
    writeLine(
      io.stdout,
      `${q.outcome} ${q.number !== undefined ? `#${q.number} ` : ""}${q.branch}${q.url ? ` ${q.url}` : ""}`,
    );
  const status: Record<PromoteResult["status"], string> = {
    "nothing-to-promote": `nothing to promote: ${r.to} already runs what ${r.from} runs`,
    "dry-run": `dry run: ${r.changes.length} image(s) would be promoted`,
    blocked: "not promoted: a gate failed",
    waiting: "not promoted yet: waiting for the gates",
    pushed: `pushed ${r.commit ?? ""}`.trim(),
    "up-to-date": `${r.to} is already up to date`,
    proposed: "promotion proposed",
  };
  writeLine(io.stdout, status[r.status]);
}

export const command: Command = {
  summary: "Promote the exact images one environment runs into the next (push or pull request, behind gates)",
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseFlags("promote", argv, {
      from: { type: "string" },
      to: { type: "string" },
      repo: { type: "string" },
      branch: { type: "string" },
      app: { type: "string", multiple: true },
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      "per-app": { type: "boolean" },
      "skip-gates": { type: "boolean" },
      checks: { type: "boolean" },
      health: { type: "boolean" },
      soak: { type: "string" },
      canary: { type: "boolean" },
      kubeconfig: { type: "string" },
      "target-kubeconfig": { type: "string" },
      "health-namespace": { type: "string" },
      forge: { type: "string" },
      "forge-url": { type: "string" },
      "forge-repo": { type: "string" },
      "forge-token-env": { type: "string" },
      label: { type: "string", multiple: true },
      reviewer: { type: "string", multiple: true },
      "auto-merge": { type: "boolean" },
      "merge-method": { type: "string" },
      "token-env": { type: "string" },
      author: { type: "string" },
      committer: { type: "string" },
      sign: { type: "boolean" },
    });
    if (positionals.length > 0)
      throw new UsageError(`unexpected argument "${positionals[0]}" (see 'shipmate promote --help')`);
    if (!values.from || !values.to) throw new UsageError("--from and --to are required");
    if (values.soak !== undefined && !/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/.test(values.soak))
      throw new UsageError(`--soak must be a duration such as 30m, 24h or 1h30m, got "${values.soak}"`);
    const method = values["merge-method"];
    if (method !== undefined && !MERGE_METHODS.includes(method))
      throw new UsageError(`--merge-method must be one of ${MERGE_METHODS.join(", ")}, got "${method}"`);
    const repo = values.repo ?? io.cwd;
    const gates = {
      ...(values.checks ? { checks: true } : {}),
      ...(values.health ? { health: true } : {}),
      ...(values.soak !== undefined ? { soak: values.soak } : {}),
      ...(values.canary ? { canary: true } : {}),
    };
    const result = await runPromoteInto({
      repo: Workspace.isUrl(repo) ? repo : resolve(io.cwd, repo),
      ...(values.branch !== undefined ? { branch: values.branch } : {}),
      target: { kind: "environment", from: values.from, to: values.to },
      ...(values.app ? { apps: values.app } : {}),
      dryRun: values["dry-run"] === true,
      perApp: values["per-app"] === true,
      skipGates: values["skip-gates"] === true,
      gates,
      env: io.env,
      forge: {
        ...(values.forge !== undefined ? { forge: values.forge } : {}),
        ...(values["forge-url"] !== undefined ? { forgeUrl: values["forge-url"] } : {}),
        ...(values["forge-repo"] !== undefined ? { forgeRepo: values["forge-repo"] } : {}),
        ...(values["forge-token-env"] !== undefined ? { tokenEnv: values["forge-token-env"] } : {}),
      },
      ...(values.kubeconfig !== undefined ? { kubeconfig: resolve(io.cwd, values.kubeconfig) } : {}),
      ...(values["target-kubeconfig"] !== undefined
        ? { targetKubeconfig: resolve(io.cwd, values["target-kubeconfig"]) }
        : {}),
      ...(values["health-namespace"] !== undefined ? { healthNamespace: values["health-namespace"] } : {}),
      ...(values.label ? { labels: values.label } : {}),
      ...(values.reviewer ? { reviewers: values.reviewer } : {}),
      ...(values["auto-merge"] ? { autoMerge: true } : {}),
      ...(method !== undefined ? { mergeMethod: method as MergeMethod } : {}),
      ...(values["token-env"] !== undefined ? { tokenEnv: values["token-env"] } : {}),
      ...(values.author !== undefined ? { author: parseIdentity(values.author, "--author") } : {}),
      ...(values.committer !== undefined
        ? { committer: parseIdentity(values.committer, "--committer") }
        : {}),
      sign: values.sign === true,
    });
    for (const p of result.problems)
      writeLine(
        io.stderr,
        `${p.severity}: ${p.file ? `${p.file}${p.line ? `:${p.line}` : ""}: ` : ""}${p.message}`,
      );
    if (values.json) writeLine(io.stdout, JSON.stringify(result, null, 2));
    else human(io, result);
    if (result.problems.some((p) => p.severity === "error") || result.status === "blocked") return 1;
    return 0;
  },
};
