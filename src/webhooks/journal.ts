/**
 * `shipmate serve` keeps the deliveries it accepted (202) and has not yet
 * run in a small journal file, so a process killed between the answer and
 * the run replays them when it starts again: an accepted delivery is never
 * lost to a crash, and since a run is idempotent (it moves a marker only to a
 * newer selection) a replay never delivers twice. The file is written whole
 * and renamed into place; an unreadable one is reported and ignored.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { CoalescingQueue, mergeScopes, type RefreshScope } from "./queue.ts";

const MAX_JOURNAL_BYTES = 1024 * 1024;

/** Where `serve` journals deliveries for one repository, branch and path: `$XDG_STATE_HOME/shipmate/serve/<hash>.json`. */
export function defaultJournalPath(target: string, env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  const id = createHash("sha256").update(target).digest("hex").slice(0, 16);
  return join(state, "shipmate", "serve", `${id}.json`);
}

type Stored = { kind: "all" } | { kind: "images"; images: string[] };

export class DeliveryJournal {
  readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  /** What was accepted and not run, or undefined; throws one line when the file is unusable. */
  load(): RefreshScope | undefined {
    let text: string;
    try {
      if (statSync(this.file).size > MAX_JOURNAL_BYTES)
        throw new Error(`${this.file}: larger than ${MAX_JOURNAL_BYTES} bytes, not a delivery journal`);
      text = readFileSync(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    let stored: Stored;
    try {
      stored = JSON.parse(text) as Stored;
    } catch {
      throw new Error(`${this.file}: not JSON; the deliveries it held are not replayed`);
    }
    if (stored?.kind === "all") return { kind: "all" };
    if (stored?.kind === "images" && Array.isArray(stored.images))
      return { kind: "images", images: new Set(stored.images.filter((i) => typeof i === "string")) };
    throw new Error(`${this.file}: not a delivery journal; the deliveries it held are not replayed`);
  }

  /** Records `scope` (undefined: nothing pending), whole or not at all. */
  save(scope: RefreshScope | undefined): void {
    if (!scope) {
      rmSync(this.file, { force: true });
      return;
    }
    const stored: Stored =
      scope.kind === "all" ? scope : { kind: "images", images: [...scope.images].sort() };
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(stored)}\n`);
    renameSync(tmp, this.file);
  }
}

/**
 * The coalescing queue with a journal: `accept` records the scope before the
 * caller answers 202; a run's scopes leave the journal when it ends (whatever
 * its outcome, which the runner reports), those accepted meanwhile stay.
 */
export class JournaledQueue {
  readonly queue: CoalescingQueue<RefreshScope>;
  readonly #journal: DeliveryJournal | undefined;
  #accepted: RefreshScope | undefined;
  #inflight: RefreshScope | undefined;

  constructor(run: (scope: RefreshScope) => Promise<void>, journal?: DeliveryJournal) {
    this.#journal = journal;
    this.queue = new CoalescingQueue<RefreshScope>(async (scope) => {
      // The queue hands over everything accepted so far, merged.
      this.#inflight = this.#accepted ? mergeScopes(this.#accepted, scope) : undefined;
      this.#accepted = undefined;
      try {
        await run(scope);
      } finally {
        this.#inflight = undefined;
        this.#record();
      }
    }, mergeScopes);
  }

  /** A delivery accepted: journaled first, then queued. */
  accept(scope: RefreshScope): Promise<void> {
    this.#accepted = mergeScopes(this.#accepted, scope);
    this.#record();
    return this.queue.request(scope);
  }

  /** Work that needs no journal (the polling interval comes again by itself). */
  request(scope: RefreshScope): Promise<void> {
    return this.queue.request(scope);
  }

  /** Replays what a previous process accepted and did not run; returns it (for a log line). */
  replay(): RefreshScope | undefined {
    const pending = this.#journal?.load();
    if (pending) void this.accept(pending);
    return pending;
  }

  #record(): void {
    // What runs now and what waits for the next run; either alone as it is.
    const keep =
      this.#inflight && this.#accepted
        ? mergeScopes(this.#inflight, this.#accepted)
        : (this.#inflight ?? this.#accepted);
    this.#journal?.save(keep);
  }
}
