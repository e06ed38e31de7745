/**
 * A light read-only view of a YAML file built from the `yaml` package's CST
 * (never its JS conversion, so aliases are never expanded and an alias bomb
 * costs no more than its text): maps, sequences and scalars, each scalar with
 * its exact byte range in the source, its style and the line comment after it.
 */
import { Composer, CST, Parser } from "yaml";
import { fastParse } from "./fast.ts";
import type { ScalarStyle } from "./render.ts";
import {
  identify,
  type MapNode,
  type ParsedFile,
  type ScalarNode,
  type YDocument,
  type YNode,
} from "./view.ts";

export {
  get,
  identify,
  type MapNode,
  type OtherNode,
  type ParsedFile,
  type ScalarNode,
  type SeqNode,
  str,
  type YDocument,
  type YNode,
} from "./view.ts";

const STYLE: Record<string, ScalarStyle> = {
  scalar: "plain",
  "single-quoted-scalar": "single",
  "double-quoted-scalar": "double",
  "block-scalar": "block",
};

function lineComment(src: string, end: number): string | undefined {
  let i = end;
  while (i < src.length && (src[i] === " " || src[i] === "\t")) i++;
  // YAML requires white space before a comment; `a#b` is part of a plain scalar.
  if (i === end || src[i] !== "#") return undefined;
  let j = i + 1;
  while (j < src.length && src[j] !== "\n" && src[j] !== "\r") j++;
  return src.slice(i + 1, j);
}

/** A flow scalar's value; the common single-line cases without the general resolver's allocations. */
function flowValue(token: CST.FlowScalar): string {
  const s = token.source;
  const multiline = s.includes("\n") || s.includes("\r");
  if (!multiline) {
    if (token.type === "scalar") return s;
    if (token.type === "single-quoted-scalar") return s.slice(1, -1).replaceAll("''", "'");
    if (!s.includes("\\")) return s.slice(1, -1);
  }
  return CST.resolveAsScalar(token)?.value ?? s;
}

function blockScalarStart(token: CST.BlockScalar): number {
  const last = token.props.at(-1);
  return last && "source" in last ? last.offset + last.source.length : token.offset;
}

function build(src: string, token: CST.Token | null | undefined, inFlow: boolean): YNode | undefined {
  if (!token) return undefined;
  switch (token.type) {
    case "scalar":
    case "single-quoted-scalar":
    case "double-quoted-scalar": {
      const end = token.offset + token.source.length;
      const node: ScalarNode = {
        kind: "scalar",
        value: flowValue(token),
        style: STYLE[token.type] ?? "plain",
        start: token.offset,
        end,
        inFlow,
      };
      const comment = lineComment(src, end);
      if (comment !== undefined) node.comment = comment;
      return node;
    }
    case "block-scalar": {
      const resolved = CST.resolveAsScalar(token);
      const start = blockScalarStart(token);
      const node: ScalarNode = {
        kind: "scalar",
        value: resolved?.value ?? "",
        style: "block",
        start,
        end: start + token.source.length,
        inFlow: false,
      };
      const header = token.props.find((p): p is CST.SourceToken => p.type === "block-scalar-header");
      node.literal = header?.source.startsWith("|") ?? false;
      if (header) {
        const comment = lineComment(src, header.offset + header.source.length);
        if (comment !== undefined) node.comment = comment;
      }
      return node;
    }
    case "block-map":
    case "block-seq":
    case "flow-collection": {
      const flow = token.type === "flow-collection";
      const isMap = token.type === "block-map" || (flow && token.start.type === "flow-map-start");
      // The CST keeps comment lines after a collection's last node as an item of their own: not an entry.
      const real = (item: (typeof token.items)[number]) =>
        item.key != null ||
        item.value != null ||
        ("sep" in item && item.sep !== undefined) ||
        item.start.some((t) => t.type !== "comment" && t.type !== "newline" && t.type !== "space");
      if (isMap) {
        const entries: MapNode["entries"] = [];
        for (const item of token.items) {
          if (!real(item)) continue;
          const keyNode = build(src, item.key, flow || inFlow);
          const key = keyNode?.kind === "scalar" ? keyNode.value : undefined;
          entries.push({ key, value: build(src, item.value, flow || inFlow) });
        }
        return { kind: "map", entries };
      }
      // A flow sequence may hold `a: b` pairs; they are single-pair maps, which this view treats as opaque.
      const items = token.items
        .filter(real)
        .map((item) =>
          item.key === undefined || item.key === null
            ? build(src, item.value, flow || inFlow)
            : ({ kind: "other" } as const),
        );
      return { kind: "seq", items };
    }
    default:
      return { kind: "other" };
  }
}

/**
 * Parses `src` into the light view. Syntax errors come from both the CST
 * parser and the composer (which alone sees e.g. duplicate keys and bad
 * indentation), so a file the engine edits is one any YAML reader accepts.
 */
export function parseFile(src: string): ParsedFile {
  return fastParse(src) ?? fullParse(src);
}

/** parseFile through the yaml package alone (the reference the fast reader is tested against). */
export function fullParse(src: string): ParsedFile {
  const tokens = Array.from(new Parser().parse(src));
  for (const t of tokens) {
    if (t.type === "error") return { documents: [], error: { offset: t.offset, message: t.message } };
  }
  // Composing builds alias nodes without expanding them, and nothing here ever calls toJS.
  const composer = new Composer({ prettyErrors: false, uniqueKeys: true });
  for (const doc of composer.compose(tokens, true, src.length)) {
    const err = doc.errors[0];
    if (err)
      return { documents: [], error: { offset: err.pos[0], message: err.message.split("\n")[0] ?? "" } };
  }
  const documents: YDocument[] = [];
  for (const t of tokens) {
    if (t.type !== "document") continue;
    const root = build(src, t.value, false);
    documents.push({ root, id: identify(root) });
  }
  return { documents };
}

/** Offsets of line starts, for turning offsets into 1-based line numbers. */
export function lineStarts(src: string): number[] {
  const starts = [0];
  for (let i = src.indexOf("\n"); i !== -1; i = src.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

export function lineOf(starts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] ?? 0) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
