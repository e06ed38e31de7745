import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";

const SECRET = { SHIPMATE_WEBHOOK_SECRET: "a-long-enough-shared-secret" };

describe("shipmate serve: usage errors (exit 2, one line, nothing started)", () => {
  it.each<[string, string[], NodeJS.ProcessEnv, RegExp]>([
    ["no repository", [], SECRET, /--repo is required/],
    [
      "no secret and no --allow-unauthenticated",
      ["--repo", "."],
      { SHIPMATE_WEBHOOK_SECRET: "" },
      /no webhook secret: set \$SHIPMATE_WEBHOOK_SECRET/,
    ],
    [
      "a secret in another variable that is empty",
      ["--repo", ".", "--secret-env", "HOOK_SECRET"],
      { HOOK_SECRET: "" },
      /set \$HOOK_SECRET/,
    ],
    ["a short secret", ["--repo", "."], { SHIPMATE_WEBHOOK_SECRET: "zq7w3" }, /shorter than 16 characters/],
    ["an unknown mode", ["--repo", ".", "--mode", "yolo"], SECRET, /--mode must be push or pull-request/],
    [
      "an interval that is no duration",
      ["--repo", ".", "--interval", "often"],
      SECRET,
      /--interval must be a duration/,
    ],
    [
      "a body limit that is no number",
      ["--repo", ".", "--max-body-bytes", "lots"],
      SECRET,
      /--max-body-bytes must be a positive integer/,
    ],
    [
      "pull-request mode without a forge",
      ["--repo", ".", "--mode", "pull-request"],
      { ...SECRET, GITHUB_TOKEN: "" },
      /cannot tell which forge/,
    ],
    ["an unknown flag", ["--repo", ".", "--port", "1"], SECRET, /unknown flag --port/],
  ])("%s", async (_name, args, env, message) => {
    const r = await runCli(["serve", ...args], { env });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain(SECRET.SHIPMATE_WEBHOOK_SECRET);
  });

  it("--help prints the usage", async () => {
    const r = await runCli(["serve", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("usage: shipmate serve --repo PATH|URL");
  });
});
