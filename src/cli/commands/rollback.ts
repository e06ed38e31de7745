/**
 * `shipmate rollback --env ENV`: rollback requests for the environment's
 * Failed Flagger canaries (src/promote/rollback.ts holds the rule), once, or
 * with --watch every --interval until stopped (SIGINT/SIGTERM).
 */
import { resolve } from "node:path";
import { parseDuration } from "../../agent/kustomization.ts";
import { UsageError } from "../../errors.ts";
import { Workspace } from "../../git/workspace.ts";
import { type RollbackResult, runRollback } from "../../promote/rollback.ts";
import { parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";

const USAGE = `shipmate rollback --env ENV [--repo PATH|URL] [--branch BRANCH] [--kubeconfig FILE] [--dry-run] [--json]
       [--watch [--interval 10s]] [--forge github|gitlab|gitea] [--forge-url URL] [--forge-repo OWNER/NAME]
       [--forge-token-env VAR] [--token-env VAR] [--label NAME]...`;

function human(io: CliIO, r: RollbackResult): void {
  if (r.rollbacks.length === 0) writeLine(io.stdout, `no Failed canary in ${r.environment}`);
  for (const b of r.rollbacks)
    writeLine(
      io.stdout,
      b.outcome === "skipped"
        ? `${r.environment} ${b.app} (${b.canary}): not rolled back — ${b.reason ?? ""}`
        : `${r.environment} ${b.app} (${b.canary}): ${b.from} → ${b.to} ${b.outcome === "dry-run" ? "(dry run)" : `${b.request?.action ?? ""}${b.request?.number !== undefined ? ` #${b.request.number}` : ""}${b.request?.url ? ` ${b.request.url}` : ""}`}${b.closed.map((c) => `; closed #${c.number} ${c.branch}`).join("")}`,
    );
}

export const command: Command = {
  summary:
    "Open rollback requests for an environment's Failed Flagger canaries (previous tag and digest from git)",
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseFlags("rollback", argv, {
      env: { type: "string" },
      repo: { type: "string" },
      branch: { type: "string" },
      kubeconfig: { type: "string" },
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      watch: { type: "boolean" },
      interval: { type: "string" },
      forge: { type: "string" },
      "forge-url": { type: "string" },
      "forge-repo": { type: "string" },
      "forge-token-env": { type: "string" },
      "token-env": { type: "string" },
      label: { type: "string", multiple: true },
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (!values.env)
      throw new UsageError("--env is required (the environment whose canaries are rolled back)");
    if (values.interval !== undefined && !/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/.test(values.interval))
      throw new UsageError(`--interval must be a duration such as 10s or 1m, got "${values.interval}"`);
    const repo = values.repo ?? io.cwd;
    const job = {
      repo: Workspace.isUrl(repo) ? repo : resolve(io.cwd, repo),
      ...(values.branch !== undefined ? { branch: values.branch } : {}),
      environment: values.env,
      env: io.env,
      ...(values["token-env"] !== undefined ? { tokenEnv: values["token-env"] } : {}),
      forge: {
        ...(values.forge !== undefined ? { forge: values.forge } : {}),
        ...(values["forge-url"] !== undefined ? { forgeUrl: values["forge-url"] } : {}),
        ...(values["forge-repo"] !== undefined ? { forgeRepo: values["forge-repo"] } : {}),
        ...(values["forge-token-env"] !== undefined ? { tokenEnv: values["forge-token-env"] } : {}),
      },
      ...(values.kubeconfig !== undefined ? { kubeconfig: resolve(io.cwd, values.kubeconfig) } : {}),
      ...(values.label ? { labels: values.label } : {}),
      dryRun: values["dry-run"] === true,
    };
    const report = (r: RollbackResult) =>
      values.json
        ? writeLine(
            io.stdout,
            JSON.stringify(r, values.watch ? undefined : null, values.watch ? undefined : 2),
          )
        : human(io, r);
    if (!values.watch) {
      report(await runRollback(job));
      return 0;
    }
    const every = parseDuration(values.interval ?? "10s");
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      // Only what changes is printed: one line per new outcome, not one per pass.
      let last = "";
      while (!stop.signal.aborted) {
        try {
          const r = await runRollback(job);
          const text = JSON.stringify(
            r.rollbacks.map(({ request, ...rest }) => ({ ...rest, request: request?.number })),
          );
          if (text !== last) report(r);
          last = text;
        } catch (err) {
          writeLine(io.stderr, `shipmate rollback: ${(err as Error).message.split("\n")[0]}`);
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, every);
          stop.signal.addEventListener("abort", () => {
            clearTimeout(t);
            r();
          });
        });
      }
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    return 0;
  },
};
