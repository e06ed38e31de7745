import { readFileSync } from "node:fs";
import { join } from "node:path";
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
    ["an unknown flag", ["--frobnicate"], /unknown flag --frobnicate/],
    ["an invalid branch name", ["--push", "--branch=-x", "--set", "ns:a=x:1"], /invalid branch name "-x"/],
  ])("%s", async (_rule, args, message) => {
    const r = await runCli(["update", ...(args.includes("--repo") ? [] : ["--repo", work]), ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});

describe("shipmate update: the repository's other files", () => {
  it("a broken YAML file elsewhere is reported with its line and left alone; the policy load does not stop for it", async () => {
    const { work } = seedCheckout({
      "apps/good.yaml": 'image: x:1 # {"$imagepolicy": "ns:a"}\n',
      "apps/broken.yaml": 'kind: Pod\n  bad: [\nimage: x:1 # {"$imagepolicy": "ns:a"}\n',
      "apps/broken-unmarked.yaml": "kind: Pod\n  bad: [\n",
      "policies/a.yaml":
        "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a, namespace: ns}\nspec: {image: x, strategy: semver, range: '>=1'}\n",
    });
    const r = await runCli(["update", "--repo", work, "--set", "ns:a=x:2", "--json"]);
    expect(r.code, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout) as {
      files: Record<string, unknown>;
      problems: { file: string; line?: number }[];
    };
    expect(Object.keys(out.files)).toEqual(["apps/good.yaml"]);
    expect(out.problems.map((p) => `${p.file}:${p.line}`)).toEqual(["apps/broken.yaml:1"]);
    expect(readFileSync(join(work, "apps/good.yaml"), "utf8")).toBe(
      'image: x:2 # {"$imagepolicy": "ns:a"}\n',
    );
    expect(readFileSync(join(work, "apps/broken.yaml"), "utf8")).toContain("image: x:1 #");
  });
});
