/**
 * Bad input on disk: every one is reported (file and line where there is
 * one) or skipped, none stops the other files from being updated, and none
 * makes shipmate hang or run out of memory.
 */
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readTree } from "../../src/update/fs.ts";
import { updateDirectory } from "../../src/update/job.ts";
import { runCli } from "../helpers/cli.ts";
import { seedCheckout, tempDir, writeFiles } from "../infra/git.ts";

const input = {
  selections: new Map([["ns:app", { image: "ghcr.io/org/app", tag: "2.0.0" }]]),
  policies: [{ id: "ns:app", image: "ghcr.io/org/app" }],
};
const good = `image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "ns:app"}\n`;
const updated = `image: ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}\n`;

async function run(files: Record<string, string | Buffer>, setup?: (dir: string) => void) {
  const dir = tempDir();
  writeFiles(dir, { "good.yaml": good, ...files });
  setup?.(dir);
  const r = await updateDirectory(dir, input, { dryRun: false });
  return { dir, ...r, good: readFileSync(join(dir, "good.yaml"), "utf8") };
}

describe("bad input", () => {
  it("invalid marker JSON: reported with file and line; the other files are still updated", async () => {
    const bad = `a: 1\nimage: x:1 # {"$imagepolicy": ns:app}\n`;
    const r = await run({ "bad.yaml": bad });
    expect(r.problems).toMatchObject([
      { file: "bad.yaml", line: 2, kind: "invalid-marker", severity: "error" },
    ]);
    expect(readFileSync(join(r.dir, "bad.yaml"), "utf8")).toBe(bad);
    expect(r.good).toBe(updated);
  });

  it("unknown policy: left alone with a warning", async () => {
    const other = `image: x:1 # {"$imagepolicy": "ns:other"}\n`;
    const r = await run({ "other.yaml": other });
    expect(r.problems).toMatchObject([
      { file: "other.yaml", line: 1, kind: "unknown-policy", severity: "warning" },
    ]);
    expect(readFileSync(join(r.dir, "other.yaml"), "utf8")).toBe(other);
    expect(r.good).toBe(updated);
  });

  it("a .yaml file that is not YAML (a Helm template): reported with its line, untouched", async () => {
    const tpl = `spec:\n  image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "ns:app"}\n{{- if .Values.x }}\n  a: [\n{{- end }}\n`;
    const r = await run({ "templates/deploy.yaml": tpl });
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({
      file: "templates/deploy.yaml",
      kind: "parse-error",
      severity: "error",
    });
    expect(r.problems[0]?.line).toBeGreaterThanOrEqual(3);
    expect(readFileSync(join(r.dir, "templates/deploy.yaml"), "utf8")).toBe(tpl);
    expect(r.good).toBe(updated);
  });

  it("a 100 MB file is bounded: skipped unread, memory stays flat", async () => {
    const dir = tempDir();
    writeFiles(dir, { "good.yaml": good });
    const fd = openSync(join(dir, "huge.yaml"), "w");
    const chunk = Buffer.from(`- image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "ns:app"}\n`.repeat(16_384));
    for (let written = 0; written < 100 * 1024 * 1024; written += chunk.length) writeSync(fd, chunk);
    closeSync(fd);
    const before = process.memoryUsage().rss;
    const r = await updateDirectory(dir, input, { dryRun: false });
    const grew = process.memoryUsage().rss - before;
    expect(r.problems).toMatchObject([{ file: "huge.yaml", kind: "too-large", severity: "warning" }]);
    expect(statSync(join(dir, "huge.yaml")).size).toBeGreaterThanOrEqual(100 * 1024 * 1024);
    expect(readFileSync(join(dir, "good.yaml"), "utf8")).toBe(updated);
    expect(grew).toBeLessThan(64 * 1024 * 1024);
  });

  it("a YAML alias bomb is parsed without expanding aliases: memory stays flat, its marker is set", async () => {
    let bomb = `a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
    for (let i = 1; i < 12; i++)
      bomb += `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(",")}]\n`;
    bomb += `image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "ns:app"}\n`;
    const before = process.memoryUsage().rss;
    const r = await run({ "bomb.yaml": bomb });
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    expect(r.problems).toEqual([]);
    expect(readFileSync(join(r.dir, "bomb.yaml"), "utf8")).toBe(bomb.replace("app:1.0.0", "app:2.0.0"));
  });

  it("binary and non-UTF-8 .yaml files are skipped with a warning", async () => {
    const binary = Buffer.from([0x61, 0x3a, 0x00, 0x01, 0x02, 0xff]);
    const latin1 = Buffer.from(`image: caf\xe9 # {"$imagepolicy": "ns:app"}\n`, "latin1");
    const r = await run({ "blob.yaml": binary, "latin1.yaml": latin1, "image.png": binary });
    expect(r.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: "blob.yaml", kind: "binary" }),
        expect.objectContaining({ file: "latin1.yaml", kind: "not-utf8" }),
      ]),
    );
    expect(r.problems).toHaveLength(2);
    expect(readFileSync(join(r.dir, "blob.yaml"))).toEqual(binary);
    expect(r.good).toBe(updated);
  });

  it("symlinks: loops do not hang, links out of the repository are never followed", async () => {
    const outside = tempDir();
    writeFiles(outside, { "secret.yaml": good });
    const r = await run({ "sub/x.yaml": good }, (dir) => {
      symlinkSync("loop-b.yaml", join(dir, "loop-a.yaml"));
      symlinkSync("loop-a.yaml", join(dir, "loop-b.yaml"));
      symlinkSync(join(outside, "secret.yaml"), join(dir, "escape.yaml"));
      symlinkSync(outside, join(dir, "outdir"));
      symlinkSync("..", join(dir, "sub", "up"));
      symlinkSync("good.yaml", join(dir, "alias.yaml"));
    });
    expect(readFileSync(join(outside, "secret.yaml"), "utf8")).toBe(good);
    expect(r.good).toBe(updated);
    expect(readFileSync(join(r.dir, "sub/x.yaml"), "utf8")).toBe(updated);
    expect(r.files.map((f) => f.path).sort()).toEqual(["good.yaml", "sub/x.yaml"]);
    expect(r.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: "loop-a.yaml", kind: "symlink", message: "symlink loop; skipped" }),
        expect.objectContaining({
          file: "escape.yaml",
          kind: "symlink",
          message: expect.stringMatching(/outside/),
        }),
      ]),
    );
  });

  it("a read-only file is reported, not written (even for root); the others are written; exit 1", async () => {
    const { work } = seedCheckout({ "good.yaml": good, "ro.yaml": good });
    chmodSync(join(work, "ro.yaml"), 0o444);
    const r = await runCli(["update", "--repo", work, "--set", "ns:app=ghcr.io/org/app:2.0.0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error: ro.yaml: file is read-only; not written\n");
    expect(r.stdout).toContain("good.yaml\n  1: ns:app ghcr.io/org/app:1.0.0 -> ghcr.io/org/app:2.0.0\n");
    expect(readFileSync(join(work, "ro.yaml"), "utf8")).toBe(good);
    expect(readFileSync(join(work, "good.yaml"), "utf8")).toBe(updated);
    expect(statSync(join(work, "ro.yaml")).mode & 0o777).toBe(0o444);
  });

  it("file modes and byte-for-byte content outside the change survive the atomic write (CRLF, BOM, no final newline)", async () => {
    const crlf = `\uFEFF# keep\r\nimage:   "ghcr.io/org/app:1.0.0"\t# {"$imagepolicy": "ns:app"}  \r\n\r\nx: y`;
    const dir = tempDir();
    writeFiles(dir, { "w.yaml": crlf });
    chmodSync(join(dir, "w.yaml"), 0o640);
    await updateDirectory(dir, input, { dryRun: false });
    expect(readFileSync(join(dir, "w.yaml"))).toEqual(
      Buffer.from(crlf.replace("app:1.0.0", "app:2.0.0"), "utf8"),
    );
    expect(statSync(join(dir, "w.yaml")).mode & 0o777).toBe(0o640);
  });

  it("readTree screens: files without a marker are not returned unless a policy claims them", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, ".git"));
    writeFiles(dir, {
      "a.yaml": "x: 1\n",
      "b.yml": good,
      Kustomization: good,
      ".git/c.yaml": good,
      "d.json": good,
    });
    const r = readTree(dir, { claimed: (p) => p === "a.yaml" });
    expect(r.files.map((f) => f.path).sort()).toEqual(["Kustomization", "a.yaml", "b.yml"]);
  });
});
