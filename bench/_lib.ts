/** What several benchmarks share: timing a child process, and the Renovate install they compare with. */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
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

/** The Renovate release the benchmarks compare with (the newest 44.x when installed). */
const RENOVATE_SPEC = "renovate@44";

/** Where Renovate is installed, outside the repository, and the file that says the install finished. */
const renovateDir = join(cacheRoot, "renovate");
const renovateMarker = join(renovateDir, ".shipmate-installed");

/** Renovate's executable if a finished install is in the cache, else undefined (nothing is installed). */
export function installedRenovate(): string | undefined {
  return existsSync(renovateMarker) ? join(renovateDir, "node_modules", ".bin", "renovate") : undefined;
}

/**
 * Renovate, installed once into $SHIPMATE_CACHE/renovate. The install runs in
 * a folder of its own and replaces the cache folder only once npm has
 * finished, then leaves a marker: an install cut short (or a folder left by
 * an older helper without the marker) is redone, never used half-way.
 *
 * Optional dependencies are left out (`--omit=optional`): for Renovate 44
 * they are `re2` and `openpgp`. re2 has no prebuilt binary reachable here, so
 * npm compiled Google's RE2 from source (tens of minutes on 2 shared cores);
 * Renovate falls back to JavaScript's RegExp when re2 cannot be loaded, and
 * the benchmarks set RENOVATE_X_IGNORE_RE2 anyway, so the peer runs without
 * it either way. openpgp only decrypts encrypted config, which they do not use.
 */
export function ensureRenovate(): string {
  const ready = installedRenovate();
  if (ready) return ready;
  const partial = `${renovateDir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  console.error(`installing ${RENOVATE_SPEC} into ${renovateDir} (without optional dependencies) …`);
  try {
    execFileSync(
      "nice",
      ["npm", "install", "--omit=optional", "--no-audit", "--no-fund", "--loglevel=error", RENOVATE_SPEC],
      { cwd: partial, stdio: "inherit" },
    );
    const version = execFileSync(join(partial, "node_modules", ".bin", "renovate"), ["--version"], {
      encoding: "utf8",
      env: { ...process.env, RENOVATE_X_IGNORE_RE2: "true" },
    }).trim();
    writeFileSync(join(partial, ".shipmate-installed"), `${RENOVATE_SPEC} ${version} --omit=optional\n`);
    // Another run may have finished first; its install is as good as ours.
    if (!existsSync(renovateMarker)) {
      rmSync(renovateDir, { recursive: true, force: true });
      renameSync(partial, renovateDir);
    }
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  const bin = installedRenovate();
  if (!bin) throw new Error(`renovate install into ${renovateDir} did not finish`);
  return bin;
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown cpu";
  return `${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${os.platform()}`;
}
