import { describe, expect, it } from "vitest";
import { ignoreFileOrder, scopePattern, sourceIgnoreMatcher } from "../../src/config/sourceignore.ts";

// The GitRepository docs' `spec.ignore` example, and the .sourceignore of Flux 2.7's example repository layout.
const docsIgnore =
  "# exclude all\n/*\n# include deploy dir\n!/deploy\n# exclude file extensions from deploy dir\n/deploy/**/*.md\n/deploy/**/*.txt\n";
const exampleSourceignore =
  "# Exclude all\n/*\n\n# Include manifest directories\n!/apps/\n!/clusters/\n!/infrastructure/\n";

describe("source ignore rules (Flux's GitRepository artifact)", () => {
  it.each<[string, Parameters<typeof sourceIgnoreMatcher>[0], string, boolean]>([
    ["defaults: version control files", {}, ".gitignore", true],
    ["defaults: the .git directory", {}, ".git/config", true],
    ["defaults: images at any depth", {}, "docs/img/logo.png", true],
    ["defaults: archives", {}, "charts/app-1.0.0.tar.gz", true],
    ["defaults: CI configuration", {}, ".github/workflows/ci.yaml", true],
    ["defaults: tool files at any depth", {}, "apps/x/.sops.yaml", true],
    ["defaults: manifests stay", {}, "apps/x/deploy.yaml", false],
    ["defaults: matching is case-sensitive, as git on Linux", {}, "docs/LOGO.PNG", false],
    [
      "spec.ignore (docs example): everything outside deploy/ goes",
      { specIgnore: docsIgnore },
      "README.md",
      true,
    ],
    [
      "spec.ignore (docs example): deploy/ is re-included",
      { specIgnore: docsIgnore },
      "deploy/app.yaml",
      false,
    ],
    [
      "spec.ignore (docs example): *.md under deploy/ goes",
      { specIgnore: docsIgnore },
      "deploy/a/notes.md",
      true,
    ],
    ["spec.ignore can re-include a default exclusion", { specIgnore: "!*.png" }, "deploy/a.png", false],
    [
      "root .sourceignore: exclude all but the manifest directories",
      { files: new Map([["", exampleSourceignore]]) },
      "scripts/validate.sh",
      true,
    ],
    [
      "root .sourceignore: a manifest directory stays",
      { files: new Map([["", exampleSourceignore]]) },
      "clusters/staging/apps.yaml",
      false,
    ],
    [
      "a nested .sourceignore is relative to its directory",
      { files: new Map([["apps", "*.txt\n/local.yaml\n"]]) },
      "apps/a/notes.txt",
      true,
    ],
    [
      "a nested anchored pattern only matches in its directory",
      { files: new Map([["apps", "/local.yaml\n"]]) },
      "local.yaml",
      false,
    ],
    [
      "spec.ignore has the last word over a .sourceignore",
      { files: new Map([["", "*.yaml\n"]]), specIgnore: "!keep.yaml" },
      "keep.yaml",
      false,
    ],
    [
      "a file inside an excluded directory stays excluded",
      { specIgnore: "/tmp/\n!/tmp/x.yaml" },
      "tmp/x.yaml",
      true,
    ],
  ])("%s", (_rule, input, path, expected) => {
    expect(sourceIgnoreMatcher(input)(path)).toBe(expected);
  });

  it.each([
    ["*.txt", "apps", "apps/**/*.txt"],
    ["/local.yaml", "apps", "apps/local.yaml"],
    ["!keep/", "apps", "!apps/**/keep/"],
    ["sub/x.yaml", "a/b", "a/b/sub/x.yaml"],
    ["*.txt", "", "*.txt"],
  ])("scopePattern(%s, %s) = %s", (pattern, dir, expected) => {
    expect(scopePattern(pattern, dir)).toBe(expected);
  });

  it("ignore files are read root first, then depth first in name order", () => {
    expect(ignoreFileOrder(["b", "a/c", "", "a", "a/b"])).toEqual(["", "a", "a/b", "a/c", "b"]);
  });
});
