import { join, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { validateTree } from "../../validate/validate.ts";
import { parseFlags } from "../args.ts";
import { type CliIO, writeLine } from "../io.ts";
import type { Command } from "../main.ts";

export const command: Command = {
  summary: "Check a fleet repository: kustomize builds, object schemas, image policy markers, dependsOn",
  usage: `shipmate validate [DIR] [--json]

  Exit 0 when the tree is valid, 1 with one line per problem (file:line: message).`,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("validate", argv, { json: { type: "boolean" } });
    if (positionals.length > 1) throw new UsageError(`one DIR at most`);
    const shown = positionals[0] ?? ".";
    const started = performance.now();
    const { problems, stats } = await validateTree(resolve(io.cwd, shown), { env: io.env });
    const seconds = (performance.now() - started) / 1000;
    if (values.json) {
      writeLine(io.stdout, JSON.stringify({ ok: problems.length === 0, problems, stats, seconds }));
      return problems.length ? 1 : 0;
    }
    for (const p of problems)
      writeLine(io.stdout, `${join(shown, p.file)}${p.line ? `:${p.line}` : ""}: ${p.message}`);
    writeLine(
      io.stderr,
      `${problems.length ? `${problems.length} problem(s)` : "ok"}: ${stats.objects} objects, ${stats.yamlFiles} YAML files, ${stats.builds} kustomize builds${stats.tool ? ` (${stats.tool})` : ""}, ${stats.markers} image policy markers, ${seconds.toFixed(1)}s`,
    );
    return problems.length ? 1 : 0;
  },
};
