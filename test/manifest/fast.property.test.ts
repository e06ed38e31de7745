/**
 * The fast reader (src/manifest/fast.ts) decides speed, never meaning: over
 * generated YAML, inside its subset and just outside it (odd keys, odd
 * scalars, odd indentation, random edits), every text it accepts is one the
 * yaml package accepts too, read into exactly the same view.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fastParse } from "../../src/manifest/fast.ts";
import { fullParse } from "../../src/manifest/tree.ts";

const RUNS = Number(process.env.SHIPMATE_PROPERTY_RUNS ?? 4000);

/** Every text the fast reader accepts must read the same through the yaml package. */
function agrees(src: string): boolean {
  const fast = fastParse(src);
  if (fast === undefined) return false;
  const full = fullParse(src);
  expect(full.error, `fast reader accepted text the yaml package rejects:\n${src}`).toBeUndefined();
  expect(fast, `fast reader read differently:\n${src}`).toEqual(full);
  return true;
}

const goodKeys = fc.constantFrom(
  "name",
  "image",
  "app.kubernetes.io/name",
  "a-b_c",
  "x",
  "k9",
  "_k",
  '"quoted key"',
  "'single'",
);
const oddKeys = fc.constantFrom(
  "x",
  '"x"',
  '"quoted key"',
  "'single'",
  '"name"',
  "true",
  "null",
  "1",
  "a b",
  "a:b",
  "<<",
  "? k",
  "_k",
  "k9",
  "é",
);
const keys = fc.oneof({ arbitrary: goodKeys, weight: 12 }, { arbitrary: oddKeys, weight: 1 });
const goodScalars = fc.constantFrom(
  "nginx:1.0",
  "reg.local/app:1.2.3@sha256:abc",
  "hello world",
  "'it''s'",
  '"double # not a comment"',
  "a#b",
  "-1",
  "{a: b}",
  "{a: b, c: [d, e]}",
  "[a, b]",
  "[]",
  "{}",
  "{a: {b: c}}",
  "[x, {y: z}]",
  "{a: b} # c",
  "~",
  "2.0",
  "café",
  "x\\y",
  "",
);
const oddScalars = fc.constantFrom(
  '"esc\\"aped"',
  "'unclosed",
  '"unclosed',
  "a: b",
  "a:",
  "a #c",
  "a#b",
  "-1",
  "- x",
  "-",
  "---",
  "&anchor v",
  "*alias",
  "!tag v",
  "|",
  ">-",
  "%x",
  "@x",
  "`x`",
  "?x",
  ":x",
  "{a: b}",
  "{a: b, c: [d, e]}",
  "[a, b]",
  "[]",
  "{}",
  "[a, b,]",
  "{a: b",
  "{a:b}",
  "[a: b]",
  '{"k": v}',
  "{a: {b: c}}",
  "[x, {y: z}]",
  "{a: b} # c",
  "{a: b}#c",
  "[a b]",
  "[-a]",
  "~",
  "2.0",
  "café",
  "x\\y",
  "",
);
const scalars = fc.oneof({ arbitrary: goodScalars, weight: 20 }, { arbitrary: oddScalars, weight: 1 });
const comments = fc.constantFrom("", "", "", "", "", " # note", "  #", " #x: y", "   # spaced", "#nospace");

interface Node {
  kind: "map" | "seq" | "scalar";
  entries?: [string, Node][];
  items?: Node[];
  value?: string;
  comment?: string;
}

const tree: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ kind: fc.constant("scalar" as const), value: scalars, comment: comments }),
    fc.record({
      kind: fc.constant("map" as const),
      entries: fc.uniqueArray(fc.tuple(keys, tie("node")), {
        minLength: 1,
        maxLength: 4,
        selector: ([k]) => k,
      }),
    }),
    fc.record({
      kind: fc.constant("seq" as const),
      items: fc.array(tie("node"), { minLength: 1, maxLength: 3 }),
    }),
  ),
})).node;

/** Renders a tree as block YAML; `jitter` picks an indentation offset per line (mostly 0). */
function render(node: Node, indent: number, jitter: () => number, sameIndentSeqs: boolean): string[] {
  const pad = (n: number) => " ".repeat(Math.max(0, n + jitter()));
  if (node.kind === "scalar") return [`${pad(indent)}${node.value}${node.comment ?? ""}`];
  const out: string[] = [];
  if (node.kind === "map") {
    for (const [k, v] of node.entries ?? []) {
      if (v.kind === "scalar") out.push(`${pad(indent)}${k}: ${v.value}${v.comment ?? ""}`);
      else if (v.kind === "seq" && sameIndentSeqs)
        out.push(`${pad(indent)}${k}:`, ...render(v, indent, jitter, true));
      else out.push(`${pad(indent)}${k}:`, ...render(v, indent + 2, jitter, sameIndentSeqs));
    }
    return out;
  }
  for (const item of node.items ?? []) {
    if (item.kind === "scalar") out.push(`${pad(indent)}- ${item.value}${item.comment ?? ""}`);
    else {
      // A compact mapping or sequence: the first line joins the dash.
      const inner = render(item, indent + 2, jitter, sameIndentSeqs);
      out.push(`${pad(indent)}- ${(inner[0] ?? "").trimStart()}`, ...inner.slice(1));
    }
  }
  return out;
}

const documents = fc
  .record({
    // Documents are mostly collections, as manifests are.
    docs: fc.array(
      tree.map((n) =>
        n.kind === "scalar" && n.value !== ""
          ? { kind: "map" as const, entries: [["k", n] as [string, Node]] }
          : n,
      ),
      { minLength: 1, maxLength: 3 },
    ),
    // Most texts are indented evenly; some have a line or two off.
    jitters: fc.oneof(
      { arbitrary: fc.constant([0]), weight: 4 },
      {
        arbitrary: fc.array(fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, -1, 2), {
          minLength: 16,
          maxLength: 64,
        }),
        weight: 1,
      },
    ),
    sameIndentSeqs: fc.boolean(),
    leadingSeparator: fc.boolean(),
    blank: fc.constantFrom("", "\n", "  \n", "# top\n"),
    separator: fc.constantFrom("---", "---", "---", "--- # doc", "---x", "...", "--- a"),
    finalNewline: fc.boolean(),
  })
  .map(({ docs, jitters, sameIndentSeqs, leadingSeparator, blank, separator, finalNewline }) => {
    let j = 0;
    const jitter = () => jitters[j++ % jitters.length] as number;
    const parts = docs.map((d) => render(d, 0, jitter, sameIndentSeqs).join("\n"));
    const text = `${leadingSeparator ? "---\n" : ""}${blank}${parts.join(`\n${separator}\n`)}`;
    return finalNewline ? `${text}\n` : text;
  });

/** Random edits of a text: a character inserted, removed or replaced. */
const edited = fc
  .tuple(
    documents,
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.constantFrom(
          "",
          " ",
          "  ",
          "\n",
          ":",
          "-",
          "#",
          "'",
          '"',
          "{",
          "}",
          "[",
          "]",
          ",",
          "\t",
          "\r",
          "a",
          "&",
          "*",
          "!",
          "|",
        ),
      ),
      { minLength: 1, maxLength: 3 },
    ),
  )
  .map(([text, edits]) => {
    let t = text;
    for (const [at, ch] of edits) {
      const i = t.length === 0 ? 0 : at % t.length;
      t = at % 3 === 0 ? t.slice(0, i) + ch + t.slice(i) : t.slice(0, i) + ch + t.slice(i + 1);
    }
    return t;
  });

describe("fast reader", () => {
  it("property: every generated text it accepts reads exactly as through the yaml package", () => {
    let accepted = 0;
    fc.assert(
      fc.property(documents, (src) => {
        if (agrees(src)) accepted++;
      }),
      { numRuns: RUNS },
    );
    // The subset is the common case, not a corner: a good share of the generated texts are in it.
    expect(accepted).toBeGreaterThan(400);
  });

  it("property: so does every randomly edited text", () => {
    fc.assert(
      fc.property(edited, (src) => {
        agrees(src);
      }),
      { numRuns: RUNS },
    );
  });

  it.each([
    [
      "a Deployment",
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.0 # {"$imagepolicy": "ns:web"}\n        ports:\n          - containerPort: 80\n',
    ],
    [
      "flow maps and quoted values",
      'metadata: {name: a, labels: {app: a}}\nspec:\n  args: ["--x", \'--y\']\n  image: \'nginx:1.0\' # {"$imagepolicy": "ns:a:tag"}\n',
    ],
    ["several documents", "# lead\n---\na: 1\n--- # two\nb: [x]\n---\n"],
    [
      "a kustomization",
      'images:\n- name: app\n  newTag: 1.0.0 # {"$imagepolicy": "ns:app:tag"}\nresources:\n- deploy.yaml\n',
    ],
  ])("accepts %s, read as the yaml package reads it", (_, src) => {
    expect(agrees(src)).toBe(true);
  });

  it.each([
    ["an anchor", "a: &x 1\nb: *x\n"],
    ["a block scalar", "a: |\n  text\n"],
    ["a multi-line plain scalar", "a: one\n  two\n"],
    ["a duplicate key", "a: 1\na: 2\n"],
    ["CRLF", "a: 1\r\n"],
    ["a tab", "a:\t1\n"],
    ["an escape", 'a: "x\\ty"\n'],
    ["a tag", "a: !!str 1\n"],
    ["a boolean key", "true: 1\n"],
    ["bad indentation", "a:\n  b: 1\n c: 2\n"],
  ])("declines %s", (_, src) => {
    expect(fastParse(src)).toBeUndefined();
  });

  it("every YAML fixture and template in the repository it accepts reads as through the yaml package", () => {
    const root = join(import.meta.dirname, "../..");
    const seen: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.ya?ml$/.test(name)) seen.push(p);
      }
    };
    for (const dir of ["test", "deploy", "scripts"]) walk(join(root, dir));
    let accepted = 0;
    for (const p of seen) if (agrees(readFileSync(p, "utf8"))) accepted++;
    expect(seen.length).toBeGreaterThan(20);
    expect(accepted).toBeGreaterThan(0);
  });
});
