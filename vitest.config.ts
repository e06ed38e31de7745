import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Suites start real servers (registry, git, API server); give them room, and
    // never let a missing server turn into a skip.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
    reporters: process.env.CI ? ["default"] : ["default"],
  },
});
