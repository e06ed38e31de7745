/** What several benchmarks share: timing a child process, and the Renovate install they compare with. */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";

export const cacheRoot = process.env.SHIPMATE_CACHE ?? join(os.homedir(), ".cache", "shipmate");

export interface Timed {
  ms: number;
  code: number;
  out: string;
  peakRssMb: number;
  cpuS: number;
}

/**
 * Runs a command under GNU time for its wall time, CPU time and peak RSS. A
 * command still running after `timeoutMs` is stopped (its whole process
 * group) and reported with its exit code, so a hung peer never hangs the run.
 */
export function timed(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Timed> {
  if (!existsSync("/usr/bin/time"))
    throw new Error("benchmarks need /usr/bin/time (Debian package 'time') for CPU time and peak RSS");
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn("/usr/bin/time", ["-f", "%M %U %S", cmd, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          if (child.pid) process.kill(-child.pid, "SIGTERM");
        }, opts.timeoutMs)
      : undefined;
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      // GNU time's line is the last one on stderr: peak RSS (kB), user and system seconds.
      const [kb = 0, user = 0, sys = 0] = (err.trim().split("\n").at(-1) ?? "").split(" ").map(Number);
      resolve({
        ms: performance.now() - start,
        code: code ?? 1,
        out: out + err,
        peakRssMb: kb / 1024,
        cpuS: user + sys,
      });
    });
  });
}

/** Renovate, installed once into $SHIPMATE_CACHE/renovate (outside the repository). */
export function ensureRenovate(): string {
  const dir = join(cacheRoot, "renovate");
  const bin = join(dir, "node_modules", ".bin", "renovate");
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    console.error(`installing renovate into ${dir} …`);
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "renovate@44"], {
      cwd: dir,
      stdio: "inherit",
    });
  }
  return bin;
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown cpu";
  return `${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${os.platform()}`;
}
