import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { seedCheckout } from "../infra/git.ts";

describe("shipmate update: usage errors exit 2 with one line", () => {
  const { work } = seedCheckout({ "a.yaml": 'image: x:1 # {"$imagepolicy": "ns:a"}\n' });
  it.each([
    ["--set without '='", ["--set", "ns:a"], /--set ns:a: missing '='/],
    ["--set with a bad policy id", ["--set", "a=x:1"], /"a" is not <namespace>:<name>/],
    ["--set without tag or digest", ["--set", "ns:a=nginx"], /give a tag, a digest or both/],
    ["--set with a bad digest", ["--set", "ns:a=nginx@sha256:zz"], /not an image reference|is not sha256/],
    ["--set twice for one policy", ["--set", "ns:a=x:1", "--set", "ns:a=x:2"], /names ns:a twice/],
    [
      "a URL without a delivery mode",
      ["--repo", "https://example.invalid/x.git", "--set", "ns:a=x:1"],
      /needs --push/,
    ],
    [
      "--commit with a URL",
      ["--repo", "https://example.invalid/x.git", "--commit"],
      /--commit works on a local checkout/,
    ],
    [
      "two delivery modes",
      ["--push", "--push-branch", "b", "--set", "ns:a=x:1"],
      /--push and --push-branch cannot be combined/,
    ],
    ["a stray argument", ["extra"], /unexpected argument "extra"/],
    [
      "a malformed --author",
      ["--commit", "--author", "bot", "--set", "ns:a=x:1"],
      /--author must look like "Name <email>"/,
    ],
    [
      "--max-attempts 0",
      ["--push", "--max-attempts", "0", "--set", "ns:a=x:1"],
      /--max-attempts must be a positive integer/,
    ],
    ["an unknown flag", ["--frobnicate"], /Unknown option '--frobnicate'/],
    ["an invalid branch name", ["--push", "--branch=-x", "--set", "ns:a=x:1"], /invalid branch name "-x"/],
  ])("%s", async (_rule, args, message) => {
    const r = await runCli(["update", ...(args.includes("--repo") ? [] : ["--repo", work]), ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});
