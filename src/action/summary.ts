/**
 * What the Action shows a person: the job summary (Markdown) and the
 * `changes` output (JSON), from the engine's results. Pure.
 */
import type { UpdateMode } from "../config/types.ts";
import type { PromoteResult } from "../promote/index.ts";
import { type ChangeRow, changeRows, type UpdateRunResult } from "../run/update.ts";
import type { PolicyResult } from "../scan/types.ts";

/** Markdown table cell: pipes and newlines would break the row. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function table(head: string[], rows: string[][]): string {
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows) lines.push(`| ${r.map((c) => cell(c)).join(" | ")} |`);
  return lines.join("\n");
}

const code = (s: string) => (s ? `\`${s.replace(/`/g, "'")}\`` : "");

export interface ScanRow {
  policy: string;
  image: string;
  tag?: string;
  digest?: string;
  error?: string;
}

export function scanRows(results: readonly PolicyResult[]): ScanRow[] {
  return results.map((r) =>
    r.ok
      ? { policy: r.policy.id, image: r.image, tag: r.tag, ...(r.digest ? { digest: r.digest } : {}) }
      : { policy: r.policy.id, image: r.policy.image, error: r.message },
  );
}

export function scanSummary(results: readonly PolicyResult[]): string {
  const rows = scanRows(results);
  const failed = rows.filter((r) => r.error).length;
  return [
    "## shipmate scan",
    "",
    `${rows.length - failed} of ${rows.length} policies selected an image.`,
    "",
    table(
      ["Policy", "Image", "Selected", "Digest"],
      rows.map((r) => [
        code(r.policy),
        r.image,
        r.error ? `⚠️ ${r.error}` : code(r.tag ?? ""),
        r.digest ? code(r.digest.slice(0, 19)) : "",
      ]),
    ),
    "",
  ].join("\n");
}

const MODE: Record<UpdateMode, string> = { push: "pushed", "pull-request": "pull request" };

export function updateSummary(r: UpdateRunResult, dryRun: boolean): string {
  const rows: ChangeRow[] = changeRows(r);
  const out = ["## shipmate update", ""];
  if (r.skipped) {
    out.push(`Nothing to scan: ${r.skipped}.`, "");
    return out.join("\n");
  }
  if (rows.length === 0) out.push(`Everything is up to date (${r.policies.length} policies scanned).`, "");
  else {
    out.push(
      `${dryRun ? "Would change" : "Changed"} ${rows.length} image reference${rows.length === 1 ? "" : "s"}:`,
      "",
      table(
        ["Policy", "File", "From", "To", "Delivery"],
        rows.map((c) => [
          code(c.policy),
          `${c.file}:${c.line}`,
          code(c.old),
          code(c.new),
          dryRun ? `${MODE[c.mode]} (dry run)` : MODE[c.mode],
        ]),
      ),
      "",
    );
  }
  if (r.push?.pushed && r.push.commit)
    out.push(`Pushed ${code(r.push.commit)} to ${code(r.push.branch ?? "")}.`, "");
  if (r.request && "pullRequest" in r.request.request) {
    const pr = r.request.request.pullRequest;
    out.push(`Pull request [#${pr.number}](${pr.url}): ${r.request.request.action}.`, "");
  } else if (r.request?.request.action === "closed")
    out.push("The open update request was closed: nothing left to change.", "");
  const failed = r.scan.filter((s) => !s.ok);
  if (failed.length || r.problems.length) {
    out.push("### Problems", "");
    for (const s of failed) out.push(`- ${code(s.policy.id)}: ${s.ok ? "" : s.message}`);
    for (const p of r.problems)
      out.push(`- ${p.severity}: ${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`);
    out.push("");
  }
  return out.join("\n");
}

export function promoteSummary(r: PromoteResult): string {
  const out = [`## shipmate promote ${r.from} → ${r.to}`, ""];
  out.push(`Source revision ${code(r.revision.slice(0, 12))}, delivery ${r.mode}: **${r.status}**.`, "");
  if (r.changes.length)
    out.push(
      table(
        ["App", "Image", "From", "To"],
        r.changes.map((c) => [c.app || "—", c.image, code(c.from), code(c.to)]),
      ),
      "",
    );
  if (r.gates.length) {
    out.push("### Gates", "");
    for (const g of r.gates)
      out.push(
        `- ${g.state === "passed" ? "✅" : g.state === "waiting" ? "⏳" : "❌"} ${g.gate}: ${g.message}`,
      );
    out.push("");
  }
  for (const q of r.requests)
    out.push(
      `- ${q.outcome}${q.number !== undefined ? ` [#${q.number}](${q.url})` : ""} (${code(q.branch)})`,
    );
  if (r.requests.length) out.push("");
  if (r.commit) out.push(`Pushed ${code(r.commit)}.`, "");
  if (r.problems.length) {
    out.push("### Problems", "");
    for (const p of r.problems)
      out.push(`- ${p.severity}: ${p.file ? `${p.file}${p.line ? `:${p.line}` : ""}: ` : ""}${p.message}`);
    out.push("");
  }
  return out.join("\n");
}

export function promoteRows(
  r: PromoteResult,
): { app: string; image: string; from: string; to: string; files: string[] }[] {
  return r.changes.map((c) => ({ app: c.app, image: c.image, from: c.from, to: c.to, files: c.files }));
}
