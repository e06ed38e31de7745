import { describeError, ShipmateError } from "../errors.ts";
import type { Command } from "./command.ts";
import { type CliIO, writeLine } from "./io.ts";

export type { Command } from "./command.ts";

type Loader = () => Promise<{ command: Command }>;

/** Commands load lazily so `shipmate scan` never pays for the agent's Kubernetes client. */
const commands: Record<string, Loader> = {
  scan: () => import("./commands/scan.ts"),
  agent: () => import("./commands/agent.ts"),
  get: () => import("./commands/get.ts"),
  suspend: () => import("./commands/suspend.ts"),
  resume: () => import("./commands/resume.ts"),
  update: () => import("./commands/update.ts"),
  init: () => import("./commands/init.ts"),
  add: () => import("./commands/add.ts"),
  validate: () => import("./commands/validate.ts"),
  serve: () => import("./commands/serve.ts"),
  promote: () => import("./commands/promote.ts"),
  rollback: () => import("./commands/rollback.ts"),
  bootstrap: () => import("./commands/bootstrap.ts"),
  create: () => import("./commands/create.ts"),
  reconcile: () => import("./commands/reconcile.ts"),
  push: () => import("./commands/push.ts"),
  build: () => import("./commands/build.ts"),
  dashboard: () => import("./commands/dashboard.ts"),
};

function help(io: CliIO): void {
  writeLine(io.stdout, "shipmate — keeps Kubernetes fleets in step with their container registries");
  writeLine(io.stdout);
  writeLine(io.stdout, "usage: shipmate <command> [flags]   (shipmate <command> --help for details)");
  writeLine(io.stdout);
  writeLine(io.stdout, `commands: ${Object.keys(commands).join(", ")}`);
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    help(io);
    return name ? 0 : 2;
  }
  if (name === "--version") {
    const pkg = await import("../../package.json", { with: { type: "json" } });
    writeLine(io.stdout, pkg.default.version);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    writeLine(
      io.stderr,
      `shipmate: unknown command '${name}' (commands: ${Object.keys(commands).join(", ")})`,
    );
    return 2;
  }
  const { command } = await load();
  if (rest.includes("--help") || rest.includes("-h")) {
    writeLine(io.stdout, `${command.summary}\n\nusage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    writeLine(io.stderr, `shipmate ${name}: ${describeError(err)}`);
    if (!(err instanceof ShipmateError) && io.env.SHIPMATE_DEBUG)
      writeLine(io.stderr, String((err as Error).stack));
    return err instanceof ShipmateError ? err.exitCode : 1;
  }
}
