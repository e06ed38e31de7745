/**
 * The one walk of a fleet tree (src/config/tree.ts), its rules as a table
 * over one temporary tree: `.git` never entered, other hidden folders
 * walked, symlinks never followed (quiet inside, reported out of the tree),
 * the size and file-count bounds; and FleetContext's listing (one walk,
 * each file read once, paths the run changed looked at again).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FleetContext } from "../../src/config/context.ts";
import { isYamlAnyCase, readTreeFile, type TreeWalk, walkTree } from "../../src/config/tree.ts";
import { tempDir } from "../infra/git.ts";

let root: string;
let outside: string;

beforeAll(() => {
  root = tempDir("shipmate-tree-");
  outside = tempDir("shipmate-tree-outside-");
  const files: Record<string, string> = {
    "a.yaml": "a: 1\n",
    "apps/b.yml": "b: 1\n",
    "apps/Kustomization": "resources: []\n",
    "apps/readme.md": "# not YAML\n",
    "apps/upper.YAML": "u: 1\n",
    ".git/config.yaml": "never: read\n",
    "apps/.git/nested.yaml": "never: read\n",
    ".github/workflows/ci.yaml": "on: push\n",
    ".hidden/c.yaml": "c: 1\n",
    "big/huge.yaml": `x: "${"y".repeat(2000)}"\n`,
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  writeFileSync(join(outside, "secret.yaml"), "secret: 1\n");
  symlinkSync("a.yaml", join(root, "alias.yaml"));
  symlinkSync(join(outside, "secret.yaml"), join(root, "escape.yaml"));
  symlinkSync(outside, join(root, "outdir"));
  symlinkSync("apps", join(root, "indir"));
  symlinkSync("loop-b.yaml", join(root, "loop-a.yaml"));
  symlinkSync("loop-a.yaml", join(root, "loop-b.yaml"));
  symlinkSync(join(outside, "gone.yaml"), join(root, "dangling.yaml"));
  symlinkSync(outside, join(root, "apps", "vendor"));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const paths = (w: TreeWalk) => w.files.map((f) => f.path);
const problem = (w: TreeWalk, file: string) => w.problems.find((p) => p.file === file);

describe("walkTree: one rule for every walker", () => {
  it.each<[string, (w: TreeWalk) => unknown, unknown]>([
    [
      "YAML files are listed in path order",
      paths,
      [
        "a.yaml",
        "apps/Kustomization",
        "apps/b.yml",
        ".github/workflows/ci.yaml",
        ".hidden/c.yaml",
        "big/huge.yaml",
      ].sort(),
    ],
    ["`.git` is never entered, at any depth", (w) => paths(w).filter((p) => p.includes(".git/")), []],
    [
      "other hidden folders are walked (Flux's automation rewrites markers there)",
      (w) => paths(w).includes(".hidden/c.yaml"),
      true,
    ],
    [
      "a link inside the tree is skipped quietly (its target is listed under its own path)",
      (w) => [paths(w).includes("alias.yaml"), problem(w, "alias.yaml")],
      [false, undefined],
    ],
    [
      "a folder link inside the tree is not entered",
      (w) => paths(w).some((p) => p.startsWith("indir/")),
      false,
    ],
    [
      "a file link out of the tree is reported, never followed",
      (w) => problem(w, "escape.yaml")?.message,
      "symlink points outside the repository; not followed",
    ],
    [
      "a folder link out of the tree is reported, never entered",
      (w) => [
        problem(w, "outdir")?.kind,
        problem(w, "apps/vendor")?.kind,
        paths(w).some((p) => p.includes("secret")),
      ],
      ["symlink", "symlink", false],
    ],
    [
      "a loop does not hang and is reported",
      (w) => problem(w, "loop-a.yaml")?.message,
      "symlink loop; skipped",
    ],
    ["a dangling link is reported", (w) => problem(w, "dangling.yaml")?.message, "dangling symlink; skipped"],
    ["names other than YAML are left out", (w) => paths(w).some((p) => p.endsWith(".md")), false],
  ])("%s", (_name, view, expected) => {
    expect(view(walkTree(root))).toEqual(expected);
  });

  it("a file over the size bound is reported, not listed", () => {
    const w = walkTree(root, { maxFileBytes: 1000 });
    expect(paths(w)).not.toContain("big/huge.yaml");
    expect(problem(w, "big/huge.yaml")).toMatchObject({
      kind: "too-large",
      message: expect.stringMatching(/^file is \d+ bytes, over the 1000-byte bound; skipped$/),
    });
  });

  it("past the file bound the walk stops with one error naming the walked folder", () => {
    const w = walkTree(root, { maxFiles: 3 });
    expect(w.files).toHaveLength(3);
    expect(problem(w, ".")).toMatchObject({
      kind: "too-large",
      severity: "error",
      message: "the tree holds more than 3 files to read, the bound; the rest are skipped",
    });
  });

  it("a subdir that is a link out of the tree is refused, not walked", () => {
    const w = walkTree(root, { subdir: "outdir" });
    expect(w.files).toEqual([]);
    expect(w.problems).toEqual([
      { file: "outdir", kind: "symlink", severity: "error", message: "path is outside the repository" },
    ]);
    expect(walkTree(root, { subdir: "../x" }).problems[0]?.message).toBe("path is outside the repository");
  });

  it("names in any case when asked (the policy load's .YML)", () => {
    expect(paths(walkTree(root, { subdir: "apps", match: isYamlAnyCase }))).toEqual([
      "apps/Kustomization",
      "apps/b.yml",
      "apps/upper.YAML",
    ]);
  });

  it("reading: binary and non-UTF-8 files are problems, UTF-8 is text", () => {
    const dir = tempDir("shipmate-tree-read-");
    writeFileSync(join(dir, "bin.yaml"), Buffer.from([0x61, 0x00, 0x62]));
    writeFileSync(join(dir, "latin.yaml"), Buffer.from("caf\xe9\n", "latin1"));
    writeFileSync(join(dir, "ok.yaml"), "ok: é\n");
    const w = walkTree(dir);
    const reads = Object.fromEntries(w.files.map((f) => [f.path, readTreeFile(w.realRoot, f)]));
    expect(reads).toEqual({
      "bin.yaml": { problem: expect.objectContaining({ kind: "binary" }) },
      "latin.yaml": { problem: expect.objectContaining({ kind: "not-utf8" }) },
      "ok.yaml": { text: "ok: é\n" },
    });
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("FleetContext: one walk, each file read once", () => {
  it("lists folders from its one walk, applies each caller's names and size bound, and reads a file once until it changes", async () => {
    const dir = tempDir("shipmate-context-");
    mkdirSync(join(dir, "apps"));
    writeFileSync(join(dir, "apps", "a.yaml"), "a: 1\n");
    writeFileSync(join(dir, "apps", "B.YML"), "b: 1\n");
    writeFileSync(join(dir, "top.yaml"), `t: "${"x".repeat(100)}"\n`);
    const ctx = await FleetContext.open(dir, { walk: "all" });
    expect(ctx.fleet).toBeUndefined();
    expect(ctx.list({ subdir: "apps" }).files.map((f) => f.path)).toEqual(["apps/a.yaml"]);
    expect(ctx.list({ subdir: "apps", match: isYamlAnyCase }).files.map((f) => f.path)).toEqual([
      "apps/B.YML",
      "apps/a.yaml",
    ]);
    expect(ctx.list({ maxFileBytes: 50 }).problems).toEqual([
      expect.objectContaining({ file: "top.yaml", kind: "too-large" }),
    ]);
    expect(ctx.walks).toBe(1);

    const [a] = ctx.list({ subdir: "apps" }).files;
    const keep = () => true;
    expect(ctx.read(a!, { keep })).toEqual({ text: "a: 1\n" });
    // Kept: the second read is the first one's text, even with the file changed unseen (the stamp says when).
    writeFileSync(join(dir, "apps", "a.yaml"), "a: 9\n");
    expect(ctx.read(a!)).toEqual({ text: "a: 1\n" });
    // The run writes the file (a new inode, as the atomic write makes) and says so: read again, walk kept.
    writeFileSync(join(dir, "apps", "a.yaml.new"), "a: 2\n");
    renameSync(join(dir, "apps", "a.yaml.new"), join(dir, "apps", "a.yaml"));
    writeFileSync(join(dir, "apps", "c.yaml"), "c: 1\n");
    ctx.changed(["apps/a.yaml", "apps/c.yaml"]);
    const after = ctx.list({ subdir: "apps" }).files;
    expect(after.map((f) => f.path)).toEqual(["apps/a.yaml", "apps/c.yaml"]);
    expect(ctx.read(after[0]!)).toEqual({ text: "a: 2\n" });
    expect(ctx.walks).toBe(1);
    expect(readFileSync(join(dir, "apps", "a.yaml"), "utf8")).toBe("a: 2\n");
    rmSync(dir, { recursive: true, force: true });
  });

  it("a folder asked for through a link inside the tree is listed through it; one out of the tree is refused", async () => {
    const ctx = await FleetContext.open(root, { walk: "all" });
    expect(ctx.list({ subdir: "indir" }).files.map((f) => f.path)).toEqual([
      "indir/Kustomization",
      "indir/b.yml",
    ]);
    expect(ctx.list({ subdir: "outdir" }).problems).toEqual([
      expect.objectContaining({ file: "outdir", message: "path is outside the repository" }),
    ]);
  });

  it("shipmate.yaml linked out of the repository is refused, not read", async () => {
    const dir = tempDir("shipmate-context-fleet-");
    writeFileSync(join(outside, "shipmate.yaml"), "apiVersion: shipmate.dev/v1alpha1\nkind: Fleet\n");
    symlinkSync(join(outside, "shipmate.yaml"), join(dir, "shipmate.yaml"));
    await expect(FleetContext.open(dir)).rejects.toThrow(
      /shipmate\.yaml: symlink points outside the repository; not followed/,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it("lazy: each folder is walked once, an enclosing folder's walk serves the folders in it", async () => {
    const dir = tempDir("shipmate-context-lazy-");
    mkdirSync(join(dir, "p", "q"), { recursive: true });
    writeFileSync(join(dir, "p", "q", "x.yaml"), "x: 1\n");
    const ctx = await FleetContext.open(dir);
    expect(ctx.walks).toBe(0);
    ctx.list({ subdir: "p/q" });
    ctx.list({ subdir: "p/q" });
    expect(ctx.walks).toBe(1);
    ctx.list({ subdir: "p" });
    expect(ctx.list({ subdir: "p/q" }).files.map((f) => f.path)).toEqual(["p/q/x.yaml"]);
    expect(ctx.walks).toBe(2);
    rmSync(dir, { recursive: true, force: true });
  });
});
