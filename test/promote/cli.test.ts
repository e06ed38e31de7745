import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";

describe("shipmate promote: usage", () => {
  it.each([
    [["--from", "staging"], "shipmate promote: --from and --to are required"],
    [
      ["--from", "a", "--to", "b", "extra"],
      `shipmate promote: unexpected argument "extra" (see 'shipmate promote --help')`,
    ],
    [
      ["--from", "a", "--to", "b", "--soak", "a day"],
      'shipmate promote: --soak must be a duration such as 30m, 24h or 1h30m, got "a day"',
    ],
    [
      ["--from", "a", "--to", "b", "--merge-method", "ff"],
      'shipmate promote: --merge-method must be one of merge, squash, rebase, got "ff"',
    ],
    [["--from", "a", "--to", "b", "--frobnicate"], /^shipmate promote: .*unknown flag --frobnicate/],
  ])("%j → exit 2 with one line", async (args, message) => {
    const r = await runCli(["promote", ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    if (typeof message === "string") expect(r.stderr.trim()).toBe(message);
    else expect(r.stderr.trim()).toMatch(message);
  });

  it("a directory without shipmate.yaml is a configuration error naming the file", async () => {
    const r = await runCli(["promote", "--from", "a", "--to", "b", "--repo", "."], { cwd: process.cwd() });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^shipmate promote: .*shipmate\.yaml: no shipmate\.yaml \(run 'shipmate init' or write one\)$/,
    );
  });
});
