import { join, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { type AddKind, add, displayPath } from "../../scaffold/scaffold.ts";
import { parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";

const KINDS: AddKind[] = ["app", "env", "team"];

export const command: Command = {
  summary: "Add an app, environment or team to a scaffolded fleet, leaving files you changed alone",
  usage: `shipmate add app|env|team NAME [--repo DIR] [--team TEAM] [--canary [--canary-provider P]]
       [--dry-run] [--no-git] [--json]

  --repo     a repository of the fleet (default: the current directory)
  --team     add app: the team that owns the app
  --canary   add app: it rolls out in the last environment as a Flagger Canary (Flagger is
             installed there if the fleet had no canary yet; --canary-provider picks its router)
  --dry-run  list what would change, write nothing`,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("add", argv, {
      repo: { type: "string" },
      team: { type: "string" },
      canary: { type: "boolean" },
      "canary-provider": { type: "string" },
      "dry-run": { type: "boolean" },
      "no-git": { type: "boolean" },
      json: { type: "boolean" },
    });
    const [kind, name, extra] = positionals;
    if (!kind || !KINDS.includes(kind as AddKind))
      throw new UsageError(`say what to add: ${KINDS.join(", ")} (e.g. 'shipmate add app web')`);
    if (!name) throw new UsageError(`add ${kind}: NAME is required`);
    if (extra) throw new UsageError(`unexpected argument ${extra}`);
    const repo = resolve(io.cwd, values.repo ?? ".");
    const result = await add(kind as AddKind, name, {
      repo,
      ...(values.team ? { team: values.team } : {}),
      ...(values.canary ? { canary: true } : {}),
      ...(values["canary-provider"] ? { canaryProvider: values["canary-provider"] } : {}),
      dryRun: values["dry-run"] ?? false,
      noGit: values["no-git"] ?? false,
      env: io.env,
    });
    const changed = result.changes.filter((c) => c.action !== "unchanged");
    if (values.json) {
      writeLine(
        io.stdout,
        JSON.stringify({ changes: changed, created: result.created, missing: result.missing }),
      );
      return 0;
    }
    const root = resolve(repo, result.spec.layout === "monorepo" ? "." : "..");
    const show = (r: string, p: string) => displayPath(io.cwd, join(root, r, p));
    const verb = values["dry-run"] ? "would be " : "";
    for (const c of changed)
      writeLine(io.stdout, `${verb}${c.action} ${show(c.repo, c.path)}${c.reason ? ` (${c.reason})` : ""}`);
    for (const r of result.created) writeLine(io.stdout, `${verb}created repository ${show(r, ".")}`);
    for (const r of result.missing)
      writeLine(io.stderr, `repository ${show(r, ".")} is not checked out next to this one; not updated`);
    const skipped = changed.filter((c) => c.action === "skipped").length;
    if (skipped)
      writeLine(
        io.stderr,
        `${skipped} file(s) skipped because they differ from what shipmate wrote; merge the ${kind} into them by hand (see 'shipmate add ${kind} ${name} --dry-run')`,
      );
    return 0;
  },
};
