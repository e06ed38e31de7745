/**
 * The request body: a Markdown table a reviewer reads, and a hidden block
 * (an HTML comment holding JSON) that the bot reads back on later runs to know
 * what the open request already proposes. Pure; no I/O.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import type { ImageChange, RequestMeta } from "./types.ts";

const MARKER = "shipmate:meta";
const BLOCK = /<!--\s*shipmate:meta\s+([\s\S]*?)\s*-->/;

// Our own format (RequestMeta, v1); validated because a person may edit the body.
const ImageChangeSchema = z.object({
  image: z.string(),
  from: z.string(),
  to: z.string(),
  policy: z.string().optional(),
  files: z.array(z.string()),
});
const RequestMetaSchema = z.object({
  v: z.literal(1),
  fingerprint: z.string(),
  changes: z.array(ImageChangeSchema),
  promotion: z
    .object({ from: z.string(), to: z.string(), revision: z.string(), apps: z.array(z.string()).optional() })
    .optional(),
});

/** Same changes in any order → same fingerprint; the revision of a promotion is not part of it. */
export function fingerprint(changes: readonly ImageChange[]): string {
  const canon = changes
    .map((c) => [c.image, c.from, c.to, c.policy ?? "", [...c.files].sort()] as const)
    .sort((a, b) => (a[0] + a[2] < b[0] + b[2] ? -1 : a[0] + a[2] > b[0] + b[2] ? 1 : 0));
  return createHash("sha256").update(JSON.stringify(canon)).digest("hex").slice(0, 16);
}

export function makeMeta(changes: ImageChange[], promotion?: RequestMeta["promotion"]): RequestMeta {
  return { v: 1, fingerprint: fingerprint(changes), changes, ...(promotion ? { promotion } : {}) };
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}
function code(text: string): string {
  return text ? `\`${cell(text).replace(/`/g, "'")}\`` : "—";
}

/** JSON that cannot end the comment early: `--` never appears outside a string, and inside one it is escaped. */
function encodeMeta(meta: RequestMeta): string {
  return JSON.stringify(meta).replace(/--/g, "-\\u002d");
}

/**
 * Render the body. `limit` is the forge's body size (GitHub: 65,536
 * characters); when the table does not fit, its tail is summarised and the
 * hidden block keeps only the fingerprint, which is all a later run compares.
 */
export function renderBody(meta: RequestMeta, opts: { intro?: string; limit?: number } = {}): string {
  const limit = opts.limit ?? 65_536;
  const head: string[] = [];
  if (opts.intro) head.push(opts.intro.trim(), "");
  if (meta.promotion)
    head.push(
      `Promotes what \`${cell(meta.promotion.from)}\` runs at \`${meta.promotion.revision.slice(0, 12)}\` to \`${cell(meta.promotion.to)}\`.`,
      "",
    );
  head.push("| Image | From | To | Policy | Files |", "| --- | --- | --- | --- | --- |");
  const rows = meta.changes.map(
    (c) =>
      `| ${code(c.image)} | ${code(c.from)} | ${code(c.to)} | ${c.policy ? code(c.policy) : "—"} | ${c.files.map(code).join("<br>") || "—"} |`,
  );
  const foot = [
    "",
    "<sub>Kept up to date by shipmate: edits to this description are replaced on its next run.</sub>",
  ];
  const full = `<!-- ${MARKER} ${encodeMeta(meta)} -->`;
  const slim = `<!-- ${MARKER} ${encodeMeta({ ...meta, changes: [] })} -->`;
  const assemble = (shown: string[], hidden: number, block: string) =>
    [...head, ...shown, ...(hidden ? [`| … and ${hidden} more | | | | |`] : []), ...foot, "", block, ""].join(
      "\n",
    );
  const whole = assemble(rows, 0, full);
  if (whole.length <= limit) return whole;
  // Shrink: the slim block first, then as many rows as fit.
  let shown = rows.length;
  let body = assemble(rows, 0, slim);
  while (body.length > limit && shown > 0) {
    shown = Math.max(0, Math.floor(shown * 0.8) - 1);
    body = assemble(rows.slice(0, shown), rows.length - shown, slim);
  }
  return body;
}

/** The hidden block of a body, or undefined when absent or not ours (a person may have edited it). */
export function parseMeta(body: string | null | undefined): RequestMeta | undefined {
  const m = body ? BLOCK.exec(body) : null;
  if (!m?.[1]) return undefined;
  try {
    const parsed = RequestMetaSchema.safeParse(JSON.parse(m[1]));
    if (!parsed.success) return undefined;
    const { promotion, ...rest } = parsed.data;
    return promotion ? { ...rest, promotion } : rest;
  } catch {
    return undefined;
  }
}
