#!/usr/bin/env node
// Runs the TypeScript sources directly (Node >= 22.18 strips types natively).
await import("../src/cli/index.ts");
