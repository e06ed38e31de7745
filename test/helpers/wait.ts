/**
 * The one way a test waits on a condition: `waitFor` polls a probe until it
 * gives a value (anything but undefined or false), and fails naming what it
 * waited for, with whatever `detail` adds (a process's log tail), when the
 * time is up. No sleeps: a test waits only as long as the condition takes.
 */

export interface WaitOptions {
  /** How long before failing (default 10 s). */
  ms?: number;
  /** How often the probe runs (default 50 ms). */
  every?: number;
  /** Named in the failure: `timed out after 10000 ms waiting for <what>`. */
  what?: string;
  /** More for the failure message, read when it fails. */
  detail?: () => string;
  /** A probe that throws is asked again instead of failing the wait (servers still starting). */
  retryErrors?: boolean;
}

export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  opts: WaitOptions = {},
): Promise<T> {
  const ms = opts.ms ?? 10_000;
  const deadline = Date.now() + ms;
  for (;;) {
    const v = opts.retryErrors
      ? await Promise.resolve()
          .then(probe)
          .catch(() => undefined)
      : await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) {
      const more = opts.detail?.();
      throw new Error(
        `timed out after ${ms} ms waiting for ${opts.what ?? "the condition"}${more ? `\n${more}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.every ?? 50));
  }
}
