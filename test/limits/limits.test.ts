/**
 * Bounded inputs: a file over the size bound, one with too many documents,
 * an alias bomb. Each front end refuses the file with one line naming it and
 * its line, and does the rest of its work.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifests } from "../../src/agent/render.ts";
import { parseFleet } from "../../src/config/fleet.ts";
import { MAX_DOCUMENTS, MAX_FILE_BYTES, parseDocumentsBounded } from "../../src/config/limits.ts";
import { parsePolicyConfig } from "../../src/config/load.ts";
import { loadRunPolicies } from "../../src/config/policy-set.ts";
import { ConfigError } from "../../src/errors.ts";
import { validateTree } from "../../src/validate/validate.ts";
import { runCli } from "../helpers/cli.ts";
import { tempDir } from "../infra/git.ts";

/** Nine levels of nine aliases: 9^9 nodes once expanded, 1 KB of text. */
const BOMB = `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: bomb
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`;

const POLICY = `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: web
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: web
  policy:
    semver:
      range: ">=1.0.0"
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: web
  namespace: flux-system
spec:
  image: registry.example/web
`;

describe("alias bombs: refused with the file and line, the rest still read", () => {
  it("policy load: a bomb beside a valid policy skips the bomb's file, naming it, and keeps the policy", () => {
    const config = parsePolicyConfig([
      { path: "policies/bomb.yaml", text: BOMB },
      { path: "policies/web.yaml", text: POLICY },
    ]);
    expect(config.policies.map((p) => p.id)).toEqual(["flux-system:web"]);
    expect(config.skipped).toEqual([
      {
        file: "policies/bomb.yaml",
        line: 6,
        message: expect.stringMatching(/^YAML aliases expand to more than 1000 nodes/),
      },
    ]);
  });

  it("validate: the bomb is one problem naming file:line; the next file is still checked", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "bomb.yaml"), BOMB);
    // A GitRepository is also read for its spec.ignore: that read is bounded too.
    writeFileSync(
      join(dir, "source-bomb.yaml"),
      BOMB.replace(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository",
      ),
    );
    writeFileSync(join(dir, "broken.yaml"), "a: [\n");
    const report = await validateTree(dir);
    const files = report.problems.map((p) => `${p.file}:${p.line}`);
    expect(files).toContain("bomb.yaml:6");
    expect(files).toContain("source-bomb.yaml:6");
    expect(files).toContain("broken.yaml:2");
    expect(report.problems.find((p) => p.file === "bomb.yaml")?.message).toMatch(
      /aliases expand to more than/,
    );
  });

  it("agent: a bomb in rendered manifests is a ConfigError naming where, not a ReferenceError", () => {
    expect(() => parseManifests(BOMB.replace("kind: ImagePolicy", "kind: ConfigMap"), "apps/web")).toThrow(
      ConfigError,
    );
    expect(() => parseManifests(BOMB, "apps/web")).toThrow(/^apps\/web:6: YAML aliases expand/);
  });

  it("shipmate.yaml: a bomb is one ConfigError with the file and line", () => {
    expect(() =>
      parseFleet(BOMB.replace(/^apiVersion.*\nkind.*\nmetadata:\n {2}name: bomb\n/, ""), "shipmate.yaml"),
    ).toThrow(/^shipmate\.yaml:2: YAML aliases expand to more than/);
  });

  it("serve, the App and the Action: the run's policy load keeps the valid policy and reports the bomb", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "policies"));
    writeFileSync(join(dir, "policies", "bomb.yaml"), BOMB);
    writeFileSync(join(dir, "policies", "web.yaml"), POLICY);
    const loaded = await loadRunPolicies(dir, { kind: "repo", path: "policies" });
    expect(loaded.candidates.map((p) => p.id)).toEqual(["flux-system:web"]);
    expect(loaded.refused).toEqual([
      { file: "policies/bomb.yaml", line: 6, message: expect.stringMatching(/^YAML aliases expand/) },
    ]);
  });

  it("scan CLI: one line naming the bomb's file, not a ReferenceError", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "policies"));
    writeFileSync(join(dir, "policies", "bomb.yaml"), BOMB);
    const r = await runCli(["scan", "--policies", join(dir, "policies")]);
    expect(r.stderr).not.toMatch(/ReferenceError|Excessive alias/);
    expect(r.stderr).toMatch(/bomb\.yaml:6: YAML aliases expand to more than 1000 nodes/);
  });
});

describe("file size and document count", () => {
  it("validate: a file over the size bound is refused unread in one line; the others are checked", async () => {
    const dir = tempDir();
    const big = `a: "${"x".repeat(MAX_FILE_BYTES)}"\n`;
    writeFileSync(join(dir, "big.yaml"), big);
    writeFileSync(join(dir, "broken.yaml"), "a: [\n");
    const t0 = performance.now();
    const report = await validateTree(dir);
    expect(performance.now() - t0).toBeLessThan(5000);
    const bigProblem = report.problems.find((p) => p.file === "big.yaml");
    expect(bigProblem?.message).toBe(
      `file is ${Buffer.byteLength(big)} bytes, over the ${MAX_FILE_BYTES}-byte bound; skipped`,
    );
    expect(report.problems.some((p) => p.file === "broken.yaml")).toBe(true);
  });

  it("validate: more documents than the bound is refused at the first one over it", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "many.yaml"), "---\na: 1\n".repeat(MAX_DOCUMENTS + 1));
    const report = await validateTree(dir);
    const p = report.problems.find((q) => q.file === "many.yaml");
    expect(p?.message).toBe(`file holds more than ${MAX_DOCUMENTS} YAML documents, the bound; skipped`);
    expect(p?.line).toBe(MAX_DOCUMENTS * 2 + 1);
  });

  it("documents: a first document without its marker counts too; the refusal points at the first one over", () => {
    const text = `a: 0\n${"---\na: 1\n".repeat(MAX_DOCUMENTS)}`;
    const r = parseDocumentsBounded(text, "x.yaml");
    expect(r.refusal).toEqual({
      file: "x.yaml",
      line: MAX_DOCUMENTS * 2,
      message: `file holds more than ${MAX_DOCUMENTS} YAML documents, the bound; skipped`,
    });
  });

  it("documents: far too many are refused before the parse, in a moment", () => {
    const t0 = performance.now();
    const r = parseDocumentsBounded("---\na: 1\n".repeat(MAX_DOCUMENTS * 5), "x.yaml");
    expect(r.refusal?.line).toBe(MAX_DOCUMENTS * 2 + 1);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it("policy load: too many documents skips the file with one line", () => {
    const config = parsePolicyConfig([
      {
        path: "many.yaml",
        text: `${POLICY}---\n`.repeat(1) + "---\nkind: ImagePolicy\n".repeat(MAX_DOCUMENTS),
      },
      { path: "web.yaml", text: POLICY },
    ]);
    expect(config.policies.map((p) => p.id)).toEqual(["flux-system:web"]);
    expect(config.skipped?.[0]?.file).toBe("many.yaml");
    expect(config.skipped?.[0]?.message).toMatch(
      /^file holds more than 10000 YAML documents, the bound; skipped$/,
    );
  });
});
