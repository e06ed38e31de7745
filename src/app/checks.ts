/**
 * The "shipmate validate" check run on pull requests: which changes deserve
 * one, and `shipmate validate` findings (plus policy documents that do not
 * load) as check-run annotations. Pure.
 */

export const CHECK_NAME = "shipmate validate";
/** GitHub accepts at most 50 annotations per create/update request (REST "Update a check run"). */
export const ANNOTATIONS_PER_REQUEST = 50;

export interface Finding {
  file: string;
  line?: number;
  message: string;
}

export interface Annotation {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: "failure" | "warning" | "notice";
  message: string;
  title: string;
}

/** Manifests, kustomizations, policies and shipmate.yaml: what validate reads. */
export function touchesFleet(files: readonly string[]): boolean {
  return files.some((f) => /\.ya?ml$/i.test(f) || /(^|\/)Kustomization$/.test(f));
}

export function annotations(findings: readonly Finding[], title: string): Annotation[] {
  return findings.map((f) => ({
    path: f.file,
    start_line: f.line ?? 1,
    end_line: f.line ?? 1,
    annotation_level: "failure",
    message: f.message,
    title,
  }));
}

export function batches<T>(items: readonly T[], size = ANNOTATIONS_PER_REQUEST): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function checkSummary(
  findings: readonly Finding[],
  stats: string,
): { title: string; summary: string } {
  if (findings.length === 0) return { title: "The fleet repository is valid", summary: stats };
  const files = new Set(findings.map((f) => f.file)).size;
  return {
    title: `${findings.length} problem${findings.length === 1 ? "" : "s"} in ${files} file${files === 1 ? "" : "s"}`,
    summary: `${stats}\n\n${findings
      .slice(0, 20)
      .map((f) => `- \`${f.file}${f.line ? `:${f.line}` : ""}\`: ${f.message}`)
      .join(
        "\n",
      )}${findings.length > 20 ? `\n- … and ${findings.length - 20} more (see the annotations)` : ""}`,
  };
}
