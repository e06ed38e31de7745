/**
 * Bounds on what shipmate reads from files, shared by validate, the policy
 * load (scan, update, serve), the update engine and the agent: the files one
 * walk lists, the size of one file, the documents in it, and the aliases one
 * document may expand.
 * Past a bound the file is refused with one line naming it (and the line
 * where the bound was crossed), and the rest of the work goes on.
 *
 * Aliases are bounded because expanding them is where a small file turns
 * into a large object graph (a "billion laughs"); a manifest written by a
 * person repeats an anchor a handful of times.
 */
import { type Document, LineCounter, parseAllDocuments, parseDocument } from "yaml";

/** Larger files are refused unread: no manifest is this big, and parsing one would take the memory of many. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Documents in one file (a generated bundle of every CRD of a large operator holds a few hundred). */
export const MAX_DOCUMENTS = 10_000;
/** Alias expansions in one document while converting it to plain data. */
export const MAX_ALIASES = 1000;
/**
 * A pull secret or a Docker config file: Kubernetes stores no Secret over
 * 1 MiB, and a credentials file is a few kilobytes.
 */
export const MAX_SECRET_FILE_BYTES = 1024 * 1024;
/** CustomResourceDefinitions read from one folder (the largest operator bundles hold a few hundred). */
export const MAX_CRDS = 5000;
/**
 * Files one walk of a tree lists (src/config/tree.ts): the largest scaffold
 * (MAX_RENDERED_FILES) fits, a vendored dependency tree of millions does not.
 */
export const MAX_TREE_FILES = 200_000;
/** Files one scaffold renders (20 environments × 200 apps is about 10,000). */
export const MAX_RENDERED_FILES = 200_000;

/** A bound crossed in a file: where, and the one line that says so. */
export interface LimitRefusal {
  file: string;
  line?: number;
  message: string;
}

export function sizeRefusal(file: string, bytes: number, max = MAX_FILE_BYTES): LimitRefusal | undefined {
  return bytes > max
    ? { file, message: `file is ${bytes} bytes, over the ${max}-byte bound; skipped` }
    : undefined;
}

/** Whether `err` is the yaml package's refusal to expand more aliases than allowed. */
function isAliasBomb(err: unknown): boolean {
  return err instanceof ReferenceError && /alias count/i.test(err.message);
}

/** The document's first alias (the line to point at when its expansion is refused). */
function firstAliasOffset(text: string, doc: Document): number | undefined {
  const [start, end] = doc.range ?? [0, text.length];
  const m = /(^|[\s[{,:-])\*[^\s,[\]{}]+/m.exec(text.slice(start, end));
  return m ? start + m.index + m[1]!.length : doc.range?.[0];
}

/**
 * A document as plain data, with aliases bounded; a refusal naming the file
 * and the line of the first alias when expanding them would cross the bound.
 */
export function documentValue(
  doc: Document,
  where: { file: string; text: string; counter: LineCounter },
  maxAliases = MAX_ALIASES,
): { value: unknown; refusal?: undefined } | { value?: undefined; refusal: LimitRefusal } {
  try {
    return { value: doc.toJS({ maxAliasCount: maxAliases }) };
  } catch (err) {
    if (!isAliasBomb(err)) throw err;
    const offset = firstAliasOffset(where.text, doc);
    return {
      refusal: {
        file: where.file,
        ...(offset !== undefined ? { line: where.counter.linePos(offset).line } : {}),
        message: `YAML aliases expand to more than ${maxAliases} nodes; refused as a resource-exhaustion attack (document skipped)`,
      },
    };
  }
}

/**
 * Parses every document of a file under the bounds: the text is refused
 * whole when over the size bound, and when it holds more documents than
 * allowed (counted before any is converted).
 */
export function parseDocumentsBounded(
  text: string,
  file: string,
  opts: { maxBytes?: number; maxDocuments?: number } = {},
): { docs: Document[]; counter: LineCounter; refusal?: LimitRefusal } {
  const counter = new LineCounter();
  const tooBig = sizeRefusal(file, Buffer.byteLength(text, "utf8"), opts.maxBytes);
  if (tooBig) return { docs: [], counter, refusal: tooBig };
  const max = opts.maxDocuments ?? MAX_DOCUMENTS;
  // A `---` at the start of a line always starts a document (YAML allows none inside a scalar there),
  // so a file with too many is refused before the parse, which would cost seconds per megabyte.
  const markers = /^---(?=[ \t\r\n]|$)/gm;
  let seen = 0;
  for (let m = markers.exec(text); m; m = markers.exec(text)) {
    if (++seen <= max) continue;
    return {
      docs: [],
      counter,
      refusal: {
        file,
        line: text.slice(0, m.index).split("\n").length,
        message: `file holds more than ${max} YAML documents, the bound; skipped`,
      },
    };
  }
  const docs = parseAllDocuments(text, { lineCounter: counter, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [];
  if (list.length > max) {
    const first = list[max]?.range?.[0];
    return {
      docs: [],
      counter,
      refusal: {
        file,
        ...(first !== undefined ? { line: counter.linePos(first).line } : {}),
        message: `file holds more than ${max} YAML documents, the bound; skipped`,
      },
    };
  }
  return { docs: list, counter };
}

/** One document (shipmate.yaml, a kustomization) under the same bounds. */
export function parseOneBounded(
  text: string,
  file: string,
): { doc: Document; counter: LineCounter } | LimitRefusal {
  const counter = new LineCounter();
  const tooBig = sizeRefusal(file, Buffer.byteLength(text, "utf8"));
  if (tooBig) return tooBig;
  return { doc: parseDocument(text, { lineCounter: counter, prettyErrors: false }), counter };
}

export function formatRefusal(r: LimitRefusal): string {
  return `${r.file}${r.line ? `:${r.line}` : ""}: ${r.message}`;
}
