/**
 * One refresh at a time per fleet repository, and never a backlog: requests
 * that arrive while a run is going are merged into the next run. A burst of
 * fifty tag pushes costs at most two runs, and two runs never race each
 * other for the same branch.
 */

import type { ScanScope } from "../run/update.ts";

/** What a run covers: some image repositories, or everything. */
export type RefreshScope = ScanScope;

export function mergeScopes(a: RefreshScope | undefined, b: RefreshScope): RefreshScope {
  if (!a) return b;
  if (a.kind === "all" || b.kind === "all") return { kind: "all" };
  return { kind: "images", images: new Set([...a.images, ...b.images]) };
}

export class CoalescingQueue<T> {
  readonly #run: (work: T) => Promise<void>;
  readonly #merge: (pending: T | undefined, next: T) => T;
  #pending: T | undefined;
  #waiters: (() => void)[] = [];
  #running: Promise<void> | undefined;

  constructor(run: (work: T) => Promise<void>, merge: (pending: T | undefined, next: T) => T) {
    this.#run = run;
    this.#merge = merge;
  }

  /** Resolves when a run that includes `work` has finished (its errors are the runner's to report). */
  request(work: T): Promise<void> {
    this.#pending = this.#merge(this.#pending, work);
    const done = new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#running ??= this.#loop();
    return done;
  }

  /** Resolves once nothing is running or waiting. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  get busy(): boolean {
    return this.#running !== undefined;
  }

  async #loop(): Promise<void> {
    while (this.#pending !== undefined) {
      const work = this.#pending;
      const waiters = this.#waiters;
      this.#pending = undefined;
      this.#waiters = [];
      try {
        await this.#run(work);
      } catch {
        // The runner reports its own failures; the queue only guarantees the next run happens.
      }
      for (const w of waiters) w();
    }
    this.#running = undefined;
  }
}
