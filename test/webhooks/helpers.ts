/**
 * `shipmate serve` as users run it: a child process of the CLI, its pino
 * log lines parsed as they arrive.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../src/cli/index.ts", import.meta.url));

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface ServeProcess {
  child: ChildProcess;
  lines: LogLine[];
  /** Raw stderr, for failure messages. */
  output(): string;
  /** Resolves with the first line (counting from `from`) matching `test`, or rejects after `ms`. */
  waitFor(test: (l: LogLine) => boolean, ms?: number, from?: number): Promise<LogLine>;
  stop(): Promise<number | null>;
}

export { freePort } from "../infra/net.ts";

export function spawnServe(args: string[], env: NodeJS.ProcessEnv): ServeProcess {
  const child = spawn(process.execPath, [CLI, "serve", ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: LogLine[] = [];
  let raw = "";
  let partial = "";
  const watchers = new Set<() => void>();
  child.stderr?.on("data", (d: Buffer) => {
    raw += d.toString("utf8");
    partial += d.toString("utf8");
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p) as LogLine);
      } catch {
        lines.push({ level: 50, msg: p });
      }
    }
    for (const w of watchers) w();
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    child,
    lines,
    output: () => raw,
    waitFor(test, ms = 10_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.slice(from).find(test);
          if (hit) {
            watchers.delete(check);
            clearTimeout(timer);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(
            new Error(`serve did not log the expected line within ${ms} ms; output:\n${raw.slice(-4000)}`),
          );
        }, ms);
        watchers.add(check);
        void exited.then(() => {
          if (watchers.has(check)) {
            watchers.delete(check);
            clearTimeout(timer);
            reject(new Error(`serve exited; output:\n${raw.slice(-4000)}`));
          }
        });
        check();
      });
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
