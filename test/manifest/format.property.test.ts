/**
 * Format preservation, proven over generated YAML: whatever the comments,
 * quoting, flow/block mix, anchors, block scalars, CRLF, BOM, document
 * markers, tabs and trailing spaces, the output differs from the input only
 * inside the marked scalars, and reads back with the new values.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isScalar, parseAllDocuments, visit } from "yaml";
import { applyUpdates } from "../../src/manifest/apply.ts";

interface Target {
  start: number;
  end: number;
  /** The source text the engine must write there. */
  expected: string;
  value: string;
}

interface Gen {
  text: string;
  targets: Target[];
}

const IMAGE = "registry.local/team/app";
const OLD = `${IMAGE}:1.0.0`;

// Selections the property applies: p0 whole ref, p1 tag "2.0.0", p2 tag "2.0" (a float if written plain), p3 name.
const SELECTIONS = new Map([
  ["ns:p0", { image: IMAGE, tag: "3.1.4" }],
  ["ns:p1", { image: IMAGE, tag: "2.0.0" }],
  ["ns:p2", { image: IMAGE, tag: "2.0" }],
  ["ns:p3", { image: "other.registry/team/app", tag: "9.9.9" }],
]);
const MARKERS = [
  { setter: "ns:p0", value: `${IMAGE}:3.1.4` },
  { setter: "ns:p1:tag", value: "2.0.0" },
  { setter: "ns:p2:tag", value: "2.0" },
  { setter: "ns:p3:name", value: "other.registry/team/app" },
];

type Style = "plain" | "single" | "double";
const quote = (v: string, s: Style) => (s === "plain" ? v : s === "single" ? `'${v}'` : JSON.stringify(v));
// The oracle: a plain scalar keeps its style unless the new value would read as a number.
const rendered = (v: string, s: Style) =>
  s === "plain" && /^\d+(\.\d+)?$/.test(v) ? JSON.stringify(v) : quote(v, s);

const plainWords = ["hello", "a b c", "x-y_z", "42", "true", "~", "http://x.y/z", "café"];
const trailing = ["", " ", "  ", "\t", " # note", "\t# tab comment", " #", "   # spaced  "];

/** A random program of line-producing steps, turned into text by `render`. */
type Step =
  | { t: "scalar"; style: Style; word: number; trail: number }
  | { t: "target"; style: Style; marker: number; trail: number; seq: boolean }
  | { t: "map"; children: Step[]; extra: number; trail: number }
  | { t: "seq"; items: number[]; indented: boolean }
  | { t: "flowmap"; n: number }
  | { t: "flowseq"; n: number }
  | { t: "block"; literal: boolean; chomp: number; lines: number }
  | { t: "anchor" }
  | { t: "alias" }
  | { t: "blank"; spaces: number }
  | { t: "comment"; col0: boolean; text: number };

const leaf = fc.oneof(
  fc.record({
    t: fc.constant("scalar" as const),
    style: fc.constantFrom<Style>("plain", "single", "double"),
    word: fc.nat(7),
    trail: fc.nat(7),
  }),
  fc.record({
    t: fc.constant("target" as const),
    style: fc.constantFrom<Style>("plain", "single", "double"),
    marker: fc.nat(3),
    trail: fc.nat(2),
    seq: fc.boolean(),
  }),
  fc.record({
    t: fc.constant("seq" as const),
    items: fc.array(fc.nat(7), { minLength: 1, maxLength: 3 }),
    indented: fc.boolean(),
  }),
  fc.record({ t: fc.constant("flowmap" as const), n: fc.nat(3) }),
  fc.record({ t: fc.constant("flowseq" as const), n: fc.nat(3) }),
  fc.record({
    t: fc.constant("block" as const),
    literal: fc.boolean(),
    chomp: fc.nat(2),
    lines: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ t: fc.constant("anchor" as const) }),
  fc.record({ t: fc.constant("alias" as const) }),
  fc.record({ t: fc.constant("blank" as const), spaces: fc.nat(3) }),
  fc.record({ t: fc.constant("comment" as const), col0: fc.boolean(), text: fc.nat(3) }),
);
const { step } = fc.letrec<{ step: Step }>((tie) => ({
  step: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.record({
      t: fc.constant("map" as const),
      children: fc.array(tie("step"), { minLength: 1, maxLength: 4 }),
      extra: fc.nat(1),
      trail: fc.nat(7),
    }),
  ),
}));

const fileArb = fc.record({
  docs: fc.array(fc.array(step, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 }),
  crlf: fc.boolean(),
  bom: fc.boolean(),
  startMarker: fc.boolean(),
  endMarkers: fc.boolean(),
  finalNewline: fc.boolean(),
});

type FileSpec = typeof fileArb extends fc.Arbitrary<infer F> ? F : never;

function render(file: FileSpec): Gen {
  const eol = file.crlf ? "\r\n" : "\n";
  let text = file.bom ? "\uFEFF" : "";
  const targets: Target[] = [];
  let key = 0;
  let anchors = 0;
  const defined: number[] = [];

  const line = (s: string) => {
    text += s + eol;
  };
  const emit = (steps: Step[], indent: number) => {
    const pad = " ".repeat(indent);
    for (const s of steps) {
      const k = `k${key++}`;
      switch (s.t) {
        case "scalar":
          line(`${pad}${k}: ${quote(plainWords[s.word] ?? "w", s.style)}${trailing[s.trail] ?? ""}`);
          break;
        case "target": {
          const m = MARKERS[s.marker] as (typeof MARKERS)[number];
          const prefix = s.seq ? `${pad}${k}:${eol}${pad}- ` : `${pad}${k}: `;
          const head = text + prefix;
          const src = quote(OLD, s.style);
          const comment = `${[" ", "  ", "\t"][s.trail] ?? " "}# {"$imagepolicy": "${m.setter}"}`;
          text = head + src + comment + eol;
          targets.push({
            start: head.length,
            end: head.length + src.length,
            expected: rendered(m.value, s.style),
            value: m.value,
          });
          break;
        }
        case "map":
          line(`${pad}${k}:${trailing[s.trail] ?? ""}`);
          emit(s.children, indent + 2 + s.extra * 2);
          break;
        case "seq":
          line(`${pad}${k}:`);
          for (const w of s.items) line(`${pad}${s.indented ? "  " : ""}- ${plainWords[w] ?? "w"}`);
          break;
        case "flowmap":
          line(
            `${pad}${k}: {${Array.from({ length: s.n }, (_, i) => `f${i}: ${i % 2 ? "'q'" : "v"}`).join(", ")}}`,
          );
          break;
        case "flowseq":
          line(
            `${pad}${k}: [${Array.from({ length: s.n }, (_, i) => (i % 2 ? `"d${i}"` : `p${i}`)).join(", ")}]`,
          );
          break;
        case "block":
          line(`${pad}${k}: ${s.literal ? "|" : ">"}${["", "-", "+"][s.chomp]}`);
          for (let i = 0; i < s.lines; i++)
            line(`${pad}  text ${i} # not a comment: {"$imagepolicy": "ns:p0"}`);
          break;
        case "anchor":
          defined.push(anchors);
          line(`${pad}${k}: &a${anchors++} anchored`);
          break;
        case "alias":
          if (defined.length > 0) line(`${pad}${k}: *a${defined[defined.length - 1]}`);
          else line(`${pad}${k}: null`);
          break;
        case "blank":
          line(" ".repeat(s.spaces));
          break;
        case "comment":
          line(`${s.col0 ? "" : pad}#${["", " c", "\tc", " # {not json"][s.text]}`);
          break;
      }
    }
  };
  file.docs.forEach((doc, i) => {
    if (i > 0 || file.startMarker) line("---");
    key = 0;
    defined.length = 0;
    emit(doc, 0);
    if (file.endMarkers) line("...");
  });
  if (!file.finalNewline && text.endsWith(eol)) text = text.slice(0, -eol.length);
  return { text, targets };
}

/** All scalar values of all documents, in source order, with their start offsets. */
function scalars(text: string): { start: number; value: unknown }[] {
  const out: { start: number; value: unknown }[] = [];
  for (const doc of parseAllDocuments(text)) {
    expect(doc.errors).toEqual([]);
    visit(doc, {
      Scalar(_k, node) {
        if (isScalar(node) && node.range) out.push({ start: node.range[0], value: node.value });
      },
    });
  }
  return out;
}

describe("format preservation (property)", () => {
  it("the output differs from the input only in the marked scalars, which read back as the new values", () => {
    fc.assert(
      fc.property(fileArb, (file) => {
        const { text, targets } = render(file);
        const result = applyUpdates([{ path: "f.yaml", content: text }], {
          selections: SELECTIONS,
          policies: [],
        });
        expect(result.problems.filter((p) => p.severity === "error")).toEqual([]);
        // The oracle: splice the expected text into the input at exactly the target ranges.
        let expected = "";
        let at = 0;
        const shifted: number[] = [];
        for (const t of targets) {
          expected += text.slice(at, t.start);
          shifted.push(expected.length);
          expected += t.expected;
          at = t.end;
        }
        expected += text.slice(at);
        const out = result.files[0]?.content ?? text;
        expect(out).toBe(expected);
        // Read back independently: targets hold the new values, every other scalar is unchanged.
        const before = scalars(text);
        const after = scalars(out);
        expect(after.length).toBe(before.length);
        const targetStarts = new Map(shifted.map((s, i) => [s, targets[i]?.value]));
        for (let i = 0; i < after.length; i++) {
          const a = after[i] as { start: number; value: unknown };
          if (targetStarts.has(a.start)) expect(a.value).toBe(targetStarts.get(a.start));
          else expect(a.value).toEqual(before[i]?.value);
        }
        expect(result.files[0]?.changes.length ?? 0).toBe(targets.filter((t) => t.value !== OLD).length);
      }),
      { numRuns: 400 },
    );
  });
});
