/**
 * A counting semaphore: at most `slots` holders at once, the rest waiting in
 * order. Shared by the passes that run reconciles concurrently (Kustomizations
 * in ./agent.ts, HelmReleases in ./helm/release.ts).
 */
export interface Limiter {
  acquire(): Promise<void>;
  release(): void;
}

export function createLimiter(slots: number): Limiter {
  let free = Math.max(1, slots);
  const waiters: (() => void)[] = [];
  return {
    async acquire() {
      while (free === 0) await new Promise<void>((r) => waiters.push(r));
      free--;
    },
    release() {
      free++;
      waiters.shift()?.();
    },
  };
}
