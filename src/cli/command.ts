/**
 * The shape of a subcommand, in a module of its own so the commands and the
 * dispatcher in main.ts that loads them do not import each other.
 */
import type { CliIO } from "./io.ts";

/** A subcommand: parses its own flags and returns the process exit code. */
export interface Command {
  summary: string;
  usage: string;
  run(argv: string[], io: CliIO): Promise<number>;
}
