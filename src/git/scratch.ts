/**
 * Temporary folders a run makes (clones, askpass scripts, extra worktrees):
 * named after the process that owns them, removed when the run ends, when
 * the process exits or is interrupted by a signal, and swept by the next run
 * when their owner died without a chance to clean up (kill -9, OOM).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Prefixes of every temporary folder shipmate makes; the ones the sweep looks at. */
export const SCRATCH_KINDS = ["clone", "msg", "askpass", "wt"] as const;
export type ScratchKind = (typeof SCRATCH_KINDS)[number];

/** Folders made before owners were named in them are swept once this old. */
const UNNAMED_STALE_MS = 60 * 60 * 1000;

const live = new Set<string>();
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

function removeAll(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
}

/** Signals the program handles itself (serve, the agent): it shuts down in its own time, and `exit` cleans up. */
const handledElsewhere = new Set<NodeJS.Signals>();

function onSignal(signal: NodeJS.Signals): void {
  if (handledElsewhere.has(signal) || process.listenerCount(signal) > 1) return;
  removeAll();
  uninstall();
  // Nobody else wanted the signal: end the way the default action would have.
  process.kill(process.pid, signal);
}

let installed = false;
function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", removeAll);
  handledElsewhere.clear();
  for (const s of SIGNALS) {
    if (process.listenerCount(s) > 0) handledElsewhere.add(s);
    process.on(s, onSignal);
  }
}
function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off("exit", removeAll);
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** A new private folder `shipmate-<kind>-<pid>-XXXXXX` in the temporary directory. */
export function scratchDir(kind: ScratchKind): string {
  const dir = mkdtempSync(join(tmpdir(), `shipmate-${kind}-${process.pid}-`));
  live.add(dir);
  install();
  return dir;
}

/** Removes a folder made by scratchDir (idempotent). */
export function releaseScratch(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
  if (live.size === 0) uninstall();
}

export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes temporary folders left by shipmate processes that are gone: those
 * naming a pid that no longer runs, and unnamed ones (older versions) over
 * an hour old. Only folders of this user are touched. Returns what it removed.
 */
export function sweepScratch(root = tmpdir(), now = Date.now()): string[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const name of names) {
    const m = /^shipmate-([a-z]+)-(?:(\d+)-)?[A-Za-z0-9]{6}$/.exec(name);
    if (!m || !(SCRATCH_KINDS as readonly string[]).includes(m[1] as string)) continue;
    const full = join(root, name);
    if (live.has(full)) continue;
    let st: import("node:fs").Stats;
    try {
      st = statSync(full);
    } catch {
      continue;
    }
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
    const stale = m[2] !== undefined ? !processAlive(Number(m[2])) : now - st.mtimeMs > UNNAMED_STALE_MS;
    if (!stale) continue;
    rmSync(full, { recursive: true, force: true });
    removed.push(full);
  }
  return removed;
}
