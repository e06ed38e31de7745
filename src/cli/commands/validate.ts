import { join, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { validateTree } from "../../validate/validate.ts";
import { parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";

export const command: Command = {
  summary: "Check a fleet repository: kustomize builds, object schemas, image policy markers, dependsOn",
  usage: `shipmate validate [DIR] [--json]

  Exit 0 when the tree is valid, 1 with one line per problem (file:line: message).
  Objects no schema defines (a custom resource whose CRD is not in the tree)
  are not checked: one "warning:" line per kind, never a failure.
  HelmReleases whose chart is reachable (a chart in this tree, or in a
  HelmRepository without credentials) are rendered with helm and checked too;
  the others get one "note:" line on stderr each.`,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("validate", argv, { json: { type: "boolean" } });
    if (positionals.length > 1) throw new UsageError(`one DIR at most`);
    const shown = positionals[0] ?? ".";
    const started = performance.now();
    const { problems, warnings, unrendered, stats } = await validateTree(resolve(io.cwd, shown), {
      env: io.env,
    });
    const seconds = (performance.now() - started) / 1000;
    if (values.json) {
      writeLine(
        io.stdout,
        JSON.stringify({ ok: problems.length === 0, problems, warnings, unrendered, stats, seconds }),
      );
      return problems.length ? 1 : 0;
    }
    const where = (p: { file: string; line?: number }) =>
      `${join(shown, p.file)}${p.line ? `:${p.line}` : ""}`;
    for (const p of problems) writeLine(io.stdout, `${where(p)}: ${p.message}`);
    for (const w of warnings) writeLine(io.stdout, `${where(w)}: warning: ${w.message}`);
    const outcome = problems.length ? `${problems.length} problem(s)` : "ok";
    const charts = stats.charts ? `, ${stats.charts} Helm chart(s) rendered` : "";
    const warned = warnings.length ? `, ${warnings.length} warning(s)` : "";
    writeLine(
      io.stderr,
      `${outcome}${warned}: ${stats.objects} objects, ${stats.yamlFiles} YAML files, ${stats.builds} kustomize builds${stats.tool ? ` (${stats.tool})` : ""}${charts}, ${stats.markers} image policy markers, ${seconds.toFixed(1)}s`,
    );
    for (const u of unrendered) writeLine(io.stderr, `${where(u)}: note: ${u.message}`);
    return problems.length ? 1 : 0;
  },
};
