import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";

describe("cli", () => {
  it("prints help and exits 2 without a command", async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("usage: shipmate <command>");
  });
  it("rejects an unknown command with one line and exit 2", async () => {
    const r = await runCli(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });
  it("prints the package version", async () => {
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
