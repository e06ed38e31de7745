import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Suites start real servers (registry, git, API server); give them room, and
    // never let a missing server turn into a skip.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
    // Most suites wait on servers rather than compute: two files at a time
    // overlap those waits (vitest's default on 2 cores is one at a time).
    maxWorkers: Number(process.env.SHIPMATE_TEST_WORKERS ?? 2),
  },
});
