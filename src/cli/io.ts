import type { Writable } from "node:stream";

/** Where a command writes: stdout for results (human or --json), stderr for diagnostics. */
export interface CliIO {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function processIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

export function writeLine(stream: Writable, line = ""): void {
  stream.write(`${line}\n`);
}
