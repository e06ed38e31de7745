import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { walkTree } from "../../src/config/tree.ts";
import { applyUpdates } from "../../src/manifest/apply.ts";
import { updateTree } from "../../src/update/pipeline.ts";

const files = Array.from({ length: 3000 }, (_, i) => ({
  path: `apps/team-${i % 10}/app-${String(i).padStart(4, "0")}.yaml`,
  content: `${"# padding line to make the tree large enough for threads\n".repeat(15)}kind: Deployment\nmetadata: {name: app-${i}}\nimage: reg.local/app-${i % 7}:1.0.0 # {"$imagepolicy": "ns:app-${i % 7}"}\n${i % 500 === 0 ? "bad: [\n" : ""}`,
}));
// Path order, the order the walk lists them in.
files.sort((a, b) => (a.path < b.path ? -1 : 1));
const input = {
  selections: new Map(
    Array.from({ length: 7 }, (_, k) => [`ns:app-${k}`, { image: `reg.local/app-${k}`, tag: "2.0.0" }]),
  ),
  policies: [],
};

describe("update pipeline with writer threads", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "shipmate-pipeline-"));
    for (const f of files) {
      mkdirSync(join(dir, f.path, ".."), { recursive: true });
      writeFileSync(join(dir, f.path), f.content);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a large tree with writer threads gives exactly the single-thread engine's result, in path order", async () => {
    const single = applyUpdates(files, input);
    const walked = walkTree(dir);
    expect(walked.files.map((c) => c.path)).toEqual(files.map((f) => f.path));
    const dry = await updateTree({
      realRoot: walked.realRoot,
      candidates: walked.files,
      input,
      write: false,
    });
    expect(dry.files).toEqual(single.files);
    expect(dry.problems).toEqual(single.problems);
    expect(single.files).toHaveLength(2994);
    expect(single.problems.map((p) => p.file)).toEqual(
      files.map((f) => f.path).filter((p) => Number(p.slice(-9, -5)) % 500 === 0),
    );
    // A dry run keeps each updated file's original text (for the diff) and writes nothing.
    expect(dry.originals.size).toBe(2994);
    expect(dry.timings.writers).toBe(0);
    expect(readFileSync(join(dir, single.files[0]?.path ?? ""), "utf8")).toContain(":1.0.0 #");

    // One file is made read-only: its writer reports it, the others are written.
    const readOnly = single.files[1234]?.path ?? "";
    chmodSync(join(dir, readOnly), 0o444);
    const wet = await updateTree(
      { realRoot: walked.realRoot, candidates: walked.files, input, write: true },
      { writers: 3 },
    );
    expect(wet.timings.writers).toBe(3);
    expect(wet.problems).toEqual([
      ...single.problems,
      { file: readOnly, kind: "read-only", severity: "error", message: "file is read-only; not written" },
    ]);
    expect(wet.files).toEqual(
      single.files.filter((f) => f.path !== readOnly).map(({ path, changes }) => ({ path, changes })),
    );
    for (const f of single.files)
      expect(readFileSync(join(dir, f.path), "utf8")).toBe(
        f.path === readOnly ? files.find((x) => x.path === readOnly)?.content : f.content,
      );
  });

  it("a few files are written in this thread", async () => {
    const walked = walkTree(dir, { subdir: "apps/team-1" });
    const chosen = walked.files.slice(0, 20);
    for (const c of chosen)
      writeFileSync(join(dir, c.path), `image: reg.local/app-1:1.0.0 # {"$imagepolicy": "ns:app-1"}\n`);
    const again = walkTree(dir, { subdir: "apps/team-1" }).files.slice(0, 20);
    const r = await updateTree({ realRoot: walked.realRoot, candidates: again, input, write: true });
    expect(r.timings.writers).toBe(0);
    expect(r.files).toHaveLength(20);
    expect(readFileSync(join(dir, again[0]?.path ?? ""), "utf8")).toBe(
      `image: reg.local/app-1:2.0.0 # {"$imagepolicy": "ns:app-1"}\n`,
    );
  });
});
