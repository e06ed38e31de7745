import { PassThrough } from "node:stream";
import { main } from "../../src/cli/main.ts";

/** Runs the CLI in-process and captures what a user would see. */
export async function runCli(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d) => {
    out += d;
  });
  stderr.on("data", (d) => {
    err += d;
  });
  const code = await main(argv, {
    stdout,
    stderr,
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd ?? process.cwd(),
  });
  return { code, stdout: out, stderr: err };
}
