import { describe, expect, it } from "vitest";
import {
  type CopyOperation,
  doublestarMatch,
  fsGlob,
  planArtifact,
  SourceTree,
} from "../../src/agent/artifacts/copy.ts";

const source = new SourceTree([
  "config.yaml",
  "README.md",
  "configs/a.yaml",
  "configs/b.yaml",
  "configs/notes.md",
  "configs/sub/c.yaml",
  "configs/testdata/t.yaml",
  "apps/base/podinfo/kustomization.yaml",
  "apps/base/podinfo/release.yaml",
  "apps/staging/kustomization.yaml",
  "infrastructure/controllers/kustomization.yaml",
  "infrastructure/controllers/descheduler/release.yaml",
  "infrastructure/configs/issuer.yaml",
]);
const other = new SourceTree(["config.yaml", "values.yaml"]);
const sources = new Map([
  ["source", source],
  ["other", other],
]);
const plan = (ops: CopyOperation[]) =>
  planArtifact(sources, ops).map((f) => `${f.to} <- @${f.alias}/${f.from}`);

describe("ArtifactGenerator copy: Flux's cp-like semantics", () => {
  it.each<[string, CopyOperation[], string[]]>([
    [
      "a file to a path without a trailing slash is that file",
      [{ from: "@source/config.yaml", to: "@artifact/apps/app.yaml" }],
      ["apps/app.yaml <- @source/config.yaml"],
    ],
    [
      "a file to a path with a trailing slash goes into it",
      [{ from: "@source/config.yaml", to: "@artifact/apps/" }],
      ["apps/config.yaml <- @source/config.yaml"],
    ],
    [
      "a file to a path that is already a directory goes into it",
      [
        { from: "@source/configs/a.yaml", to: "@artifact/apps/" },
        { from: "@source/config.yaml", to: "@artifact/apps" },
      ],
      ["apps/a.yaml <- @source/configs/a.yaml", "apps/config.yaml <- @source/config.yaml"],
    ],
    [
      "a directory (with or without its trailing slash) is copied as a subdirectory",
      [{ from: "@source/configs/", to: "@artifact/apps/" }],
      [
        "apps/configs/a.yaml <- @source/configs/a.yaml",
        "apps/configs/b.yaml <- @source/configs/b.yaml",
        "apps/configs/notes.md <- @source/configs/notes.md",
        "apps/configs/sub/c.yaml <- @source/configs/sub/c.yaml",
        "apps/configs/testdata/t.yaml <- @source/configs/testdata/t.yaml",
      ],
    ],
    [
      "dir/** strips the directory: its contents, recursively",
      [{ from: "@source/apps/base/**", to: "@artifact/base/" }],
      [
        "base/podinfo/kustomization.yaml <- @source/apps/base/podinfo/kustomization.yaml",
        "base/podinfo/release.yaml <- @source/apps/base/podinfo/release.yaml",
      ],
    ],
    [
      "a glob other than dir/** keeps each match's path (fs.Glob: one level, * never crosses /)",
      [{ from: "@source/configs/*.yaml", to: "@artifact/apps/" }],
      ["apps/configs/a.yaml <- @source/configs/a.yaml", "apps/configs/b.yaml <- @source/configs/b.yaml"],
    ],
    [
      "excludes without a slash match the file name at any depth; **/x/** spans directories",
      [{ from: "@source/configs/**", to: "@artifact/", exclude: ["*.md", "**/testdata/**"] }],
      [
        "a.yaml <- @source/configs/a.yaml",
        "b.yaml <- @source/configs/b.yaml",
        "sub/c.yaml <- @source/configs/sub/c.yaml",
      ],
    ],
    [
      "excludes match relative to the literal prefix of from, and from the source root",
      [
        {
          from: "@source/infrastructure/**",
          to: "@artifact/",
          exclude: ["controllers/descheduler/**", "infrastructure/configs/**"],
        },
      ],
      ["controllers/kustomization.yaml <- @source/infrastructure/controllers/kustomization.yaml"],
    ],
    [
      "later copies overwrite earlier ones, across sources",
      [
        { from: "@source/config.yaml", to: "@artifact/config.yaml" },
        { from: "@other/config.yaml", to: "@artifact/config.yaml" },
      ],
      ["config.yaml <- @other/config.yaml"],
    ],
    [
      "@artifact/ is the artifact root; @alias/ the whole source",
      [{ from: "@other/", to: "@artifact/" }],
      ["config.yaml <- @other/config.yaml", "values.yaml <- @other/values.yaml"],
    ],
  ])("%s", (_rule, ops, expected) => {
    expect(plan(ops)).toEqual(expected);
  });

  it.each<[string, CopyOperation, string]>([
    ["a missing path", { from: "@source/nope.yaml", to: "@artifact/" }, "source 'nope.yaml' does not exist"],
    ["an unknown alias", { from: "@ghost/x", to: "@artifact/" }, "source alias 'ghost' not found"],
    [
      "a glob with no match",
      { from: "@source/*.json", to: "@artifact/" },
      "no files match pattern '*.json' in source 'source'",
    ],
    [
      "a glob whose matches are all excluded",
      { from: "@source/*.md", to: "@artifact/", exclude: ["README.md"] },
      "all files matching pattern '*.md' in source 'source' were excluded",
    ],
    [
      "a destination outside the artifact",
      { from: "@source/config.yaml", to: "@artifact/../x" },
      "invalid copy destination '@artifact/../x': destination path must stay within the artifact root",
    ],
  ])("fails on %s, naming the operation", (_rule, op, message) => {
    expect(() => planArtifact(sources, [op])).toThrow(
      `failed to apply copy operation from '${op.from}' to '${op.to}': ${message}`,
    );
  });

  it.each<[string, string, boolean]>([
    ["**/testdata/**", "configs/testdata/t.yaml", true],
    ["**/testdata/**", "testdata/t.yaml", true],
    ["subdir/**", "subdir", true],
    ["*.yaml", "configs/a.yaml", false],
    ["configs/{a,b}.yaml", "configs/b.yaml", true],
    ["configs/[ab].yaml", "configs/c.yaml", false],
    ["**/.*", "sub/.hidden", true],
  ])("doublestar %s vs %s → %s", (pattern, path, expected) => {
    expect(doublestarMatch(pattern, path)).toBe(expected);
  });

  it("fs.Glob matches files and directories at the pattern's depth only", () => {
    expect(fsGlob(source, "configs/*")).toEqual([
      "configs/a.yaml",
      "configs/b.yaml",
      "configs/notes.md",
      "configs/sub",
      "configs/testdata",
    ]);
    expect(fsGlob(source, "configs/**")).toEqual(fsGlob(source, "configs/*"));
  });
});
