import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  isExcluded,
  parsePattern,
  readPatterns,
  sourceIgnoreMatcher,
  withDefaults,
} from "../../src/validate/sourceignore.ts";

const excludedBy = (text: string, path: string, domain: string[] = []) =>
  isExcluded(readPatterns(text, domain), path.split("/"));

describe("sourceignore: Flux's .gitignore-format rules", () => {
  it.each<[string, string, string, boolean]>([
    ["a name without / matches at any depth", "*.md", "apps/staging/NOTES.md", true],
    [
      "a name matches a folder on the path, excluding what is beneath",
      "scripts",
      "scripts/ci/kind.yaml",
      true,
    ],
    ["a trailing / matches folders only: not a file of that name", "config/", "apps/config", false],
    ["a trailing / matches folders only: files beneath it", "config/", "apps/config/a.yaml", true],
    ["a pattern with / is anchored to its folder", "docs/*.yaml", "docs/a.yaml", true],
    [
      "an anchored pattern does not match deeper folders of that name",
      "docs/*.yaml",
      "apps/docs/a.yaml",
      false,
    ],
    ["a leading / anchors to the root", "/tests", "apps/tests/a.yaml", false],
    ["an anchored pattern matches everything beneath what it names", "/deploy", "deploy/apps/a.yaml", true],
    ["** spans folders", "**/secret.yaml", "a/b/c/secret.yaml", true],
    ["** spans zero folders", "**/secret.yaml", "secret.yaml", true],
    ["** in the middle", "apps/**/values.yaml", "apps/x/y/values.yaml", true],
    ["a trailing ** takes all beneath", "apps/**", "apps/x/y.yaml", true],
    ["? is one character", "v?.yaml", "v1.yaml", true],
    ["character classes", "[ab].yaml", "b.yaml", true],
    ["negated character classes (Go's ^)", "[^ab].yaml", "b.yaml", false],
    ["* stays within one element", "apps*", "apps/x.yaml", true],
    ["comments and blank lines are no patterns", "# *.yaml\n\n", "a.yaml", false],
    ["trailing spaces are trimmed", "*.md   ", "a.md", true],
    ["the last matching pattern decides: ! re-includes", "/*\n!/deploy", "deploy/app.yaml", false],
    ["the last matching pattern decides: everything else stays out", "/*\n!/deploy", "README.md", true],
    ["a malformed class never matches", "[.yaml", "[.yaml", false],
  ])("%s", (_rule, text, path, expected) => {
    expect(excludedBy(text, path)).toBe(expected);
  });

  it("a .sourceignore in a folder speaks only about that folder", () => {
    expect(excludedBy("*.yaml", "apps/a.yaml", ["apps"])).toBe(true);
    expect(excludedBy("*.yaml", "infra/a.yaml", ["apps"])).toBe(false);
    expect(excludedBy("/a.yaml", "apps/a.yaml", ["apps"])).toBe(true);
  });

  it.each<[string, string[], string, boolean]>([
    ["Git files always", ["!x"], ".git/config", true],
    ["Git files always (.gitignore)", [], "apps/.gitignore", true],
    ["images and archives by default", [], "docs/logo.png", true],
    ["CI configs by default", [], ".github/workflows/ci.yaml", true],
    ["CI configs by default (.gitlab-ci.yml at the root)", [], ".gitlab-ci.yml", true],
    ["SOPS and goreleaser configs anywhere by default", [], "clusters/prod/.sops.yaml", true],
    ["a manifest is not excluded by default", [], "apps/deploy.yaml", false],
    ["user patterns replace the default list (but not Git files)", ["scripts/"], "docs/logo.png", false],
    ["user patterns replace the default list: .sops.yaml is then kept", ["scripts/"], ".sops.yaml", false],
  ])("defaults: %s", (_rule, user, path, expected) => {
    const patterns = withDefaults(user.map((p) => parsePattern(p)));
    expect(isExcluded(patterns, path.split("/"))).toBe(expected);
  });
});

describe("sourceignore: read from the checkout", () => {
  const root = mkdtempSync(join(tmpdir(), "shipmate-sourceignore-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const put = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };

  it("every .sourceignore, each scoped to its folder; spec.ignore last", () => {
    put(".sourceignore", "*.md\n");
    put("apps/.sourceignore", "local/\n");
    put(".git/.sourceignore", "*.yaml\n");
    const excluded = sourceIgnoreMatcher(root);
    expect(excluded("README.md")).toBe(true);
    expect(excluded("apps/local/x.yaml")).toBe(true);
    expect(excluded("infra/local/x.yaml")).toBe(false);
    expect(excluded("apps/x.yaml"), "a .sourceignore inside .git is not read").toBe(false);
    expect(sourceIgnoreMatcher(root, "!README.md")("README.md")).toBe(false);
  });
});
