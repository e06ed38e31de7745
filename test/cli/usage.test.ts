import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { durationMs, formatDuration } from "../../src/cli/args.ts";
import { MAX_TIMER_MS, timerMs } from "../../src/config/duration.ts";
import { redact, registerSecret, UsageError } from "../../src/errors.ts";
import { startWebhookService } from "../../src/webhooks/service.ts";
import { runCli } from "../helpers/cli.ts";

const SECRET = { SHIPMATE_WEBHOOK_SECRET: "a-long-enough-shared-secret" };
const empty = mkdtempSync(join(tmpdir(), "shipmate-usage-"));
const aFile = join(empty, "file.txt");
writeFileSync(aFile, "x");

/** Library or Node wording that must never reach a user. */
const LEAKS =
  /Unknown option|ambiguous|To specify a positional|simple-git|^Error:|TypeError|ERR_|at .*\(.*:\d+/m;

describe("usage errors: one line in the project's words, exit 2, naming the flag and what it accepts", () => {
  it.each<[string, string[], RegExp, NodeJS.ProcessEnv?]>([
    [
      "an unknown flag",
      ["scan", "--bogus"],
      /^shipmate scan: unknown flag --bogus \(see 'shipmate scan --help'\)$/,
    ],
    [
      "a near-miss flag names the real one",
      ["update", "--polices", "x"],
      /unknown flag --polices \(did you mean --policies\?\)/,
    ],
    [
      "a negative count",
      ["update", "--max-attempts", "-5"],
      /^shipmate update: --max-attempts must be a positive integer, got "-5"$/,
    ],
    [
      "a count that is not a whole number",
      ["update", "--max-attempts", "1.5"],
      /--max-attempts must be a positive integer, got "1.5"/,
    ],
    [
      "a count in hex",
      ["update", "--max-file-bytes", "0x10"],
      /--max-file-bytes must be a positive integer, got "0x10"/,
    ],
    [
      "a flag without its value",
      ["update", "--max-attempts"],
      /^shipmate update: --max-attempts needs a value/,
    ],
    ["a flag followed by another flag", ["update", "--branch", "--push"], /--branch needs a value/],
    ["a switch given a value", ["update", "--push=yes"], /--push is a switch and takes no value/],
    [
      "a port out of range",
      ["serve", "--repo", ".", "--listen", "127.0.0.1:99999"],
      /^shipmate serve: --listen 127\.0\.0\.1:99999: expected HOST:PORT with a port from 0 to 65535$/,
      SECRET,
    ],
    [
      "an interval a timer cannot hold",
      ["serve", "--repo", ".", "--interval=999999999h"],
      /^shipmate serve: --interval must be a duration from 1s to 24d20h31m23s, got "999999999h"$/,
      SECRET,
    ],
    [
      "an interval under a second",
      ["serve", "--repo", ".", "--interval=10ms"],
      /--interval must be a duration from 1s to/,
      SECRET,
    ],
    [
      "a negative agent interval",
      ["agent", "--repo", "file:///x", "--path", "p", "--interval", "-1m"],
      /--interval must be a duration from 1ms to/,
    ],
    [
      "no helm process at all",
      ["agent", "--repo", "file:///x", "--path", "p", "--helm-concurrency", "0"],
      /--helm-concurrency must be a positive integer/,
    ],
    [
      "more helm processes than an agent should start",
      ["agent", "--repo", "file:///x", "--path", "p", "--helm-concurrency", "100"],
      /^shipmate agent: --helm-concurrency must be at most 64, got 100$/,
    ],
    [
      "a zero timeout",
      ["resume", "kustomization", "x", "--timeout", "0s"],
      /--timeout must be a duration from 1ms to/,
    ],
    [
      "a repository that does not exist",
      ["update", "--repo", "/nonexistent/fleet"],
      /^shipmate update: --repo \/nonexistent\/fleet: no such directory$/,
    ],
    ["a repository that is a file", ["update", "--repo", aFile], /--repo .*file\.txt: not a directory$/],
    [
      "a policies folder that does not exist",
      ["update", "--repo", empty, "--policies", "/nonexistent"],
      /--policies \/nonexistent: no such directory/,
    ],
    [
      "serve on a repository that does not exist",
      ["serve", "--repo", "/nonexistent/fleet"],
      /--repo \/nonexistent\/fleet: no such directory/,
      SECRET,
    ],
    [
      "promote on a repository that does not exist",
      ["promote", "--from", "a", "--to", "b", "--repo", "/nonexistent"],
      /\/nonexistent: no such directory/,
    ],
    [
      "a directory that is not a checkout",
      ["update", "--repo", empty, "--set", "ns:a=x:1"],
      /is not inside a git checkout/,
    ],
  ])("%s", async (_rule, argv, message, env) => {
    const r = await runCli(argv, env ? { env } : {});
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
    expect(r.stderr).not.toMatch(LEAKS);
  });

  it("an unreadable repository is one line, exit 2", async () => {
    const locked = mkdtempSync(join(tmpdir(), "shipmate-locked-"));
    chmodSync(locked, 0o000);
    try {
      const r = await runCli(["update", "--repo", locked, "--set", "ns:a=x:1"]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(LEAKS);
    } finally {
      chmodSync(locked, 0o700);
    }
  });
});

describe("durations: what a timer can hold", () => {
  it.each<[string, number]>([
    ["30s", 30_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["24d", Number.NaN],
  ])("%s", (text, ms) => {
    if (Number.isNaN(ms)) expect(() => durationMs(text, "--x", 0)).toThrow(UsageError);
    else expect(durationMs(text, "--x", 0)).toBe(ms);
  });
  it("refuses what overflows a timer, and clamps where a library is handed one", () => {
    expect(() => durationMs("596h31m24s", "--x", 0)).toThrow(
      /--x must be a duration from 1ms to 24d20h31m23s/,
    );
    expect(durationMs("596h31m23s", "--x", 0)).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(timerMs(3_599_999_996_400_000)).toBe(MAX_TIMER_MS);
    expect(timerMs(-5)).toBe(0);
    expect(timerMs(Number.NaN)).toBe(0);
    expect(formatDuration(MAX_TIMER_MS)).toBe("24d20h31m23s");
  });
  it("serve with an interval beyond a timer's reach runs nothing, instead of every millisecond", async () => {
    let runs = 0;
    const service = await startWebhookService({
      listen: "127.0.0.1:0",
      auth: { allowUnauthenticated: true },
      intervalMs: 999_999_999 * 3_600_000,
      log: pino({ level: "silent" }),
      job: { repo: "/nonexistent/fleet", policies: { kind: "repo" }, dryRun: true, env: {} },
      onResult: () => {
        runs++;
      },
    });
    await new Promise((r) => setTimeout(r, 300));
    await service.close();
    expect(runs).toBe(0);
  });
});

describe("redaction: a short secret only as a whole token, a long one anywhere", () => {
  registerSecret("short");
  registerSecret("k9-Xw2!pQ7vR3mZ8");
  it.each<[string, string]>([
    ["the webhook secret is shorter than 16 characters", "the webhook secret is shorter than 16 characters"],
    ["token short was refused", "token *** was refused"],
    ["?token=short&x=1", "?token=***&x=1"],
    ["key=k9-Xw2!pQ7vR3mZ8", "key=***"],
    ["glued:abck9-Xw2!pQ7vR3mZ8def", "glued:abc***def"],
    ["https://bot:whatever@host/x.git", "https://***@host/x.git"],
    ["Authorization: Bearer abc.def", "Authorization: Bearer ***"],
  ])("%s", (text, want) => {
    expect(redact(text)).toBe(want);
  });
});
