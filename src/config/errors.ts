import { ConfigError } from "../errors.ts";

/** One thing wrong in a policies directory, located as precisely as the YAML allows. */
export interface ConfigProblem {
  file: string;
  line?: number;
  /** 1-based index of the YAML document in the file. */
  document?: number;
  /** The object, e.g. `ImagePolicy flux-system/podinfo`, when its name is known. */
  object?: string;
  /** Field path inside the document, e.g. `spec.policy.semver.range`. */
  field?: string;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}${p.line ? `:${p.line}` : ""}`;
  const doc = p.document
    ? `document ${p.document}${p.object ? `, ${p.object}` : ""}: `
    : p.object
      ? `${p.object}: `
      : "";
  return `${where}: ${doc}${p.field ? `${p.field}: ` : ""}${p.message}`;
}

/**
 * Every problem found while loading a policies directory, one line each
 * (`file:line: document N, Kind ns/name: field: message`), so a person fixes
 * them all in one round. `file`/`line` are the first problem's.
 */
export class PolicyConfigError extends ConfigError {
  override name = "PolicyConfigError";
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    const first = problems[0]!;
    super(first.message, { file: first.file, ...(first.line ? { line: first.line } : {}) });
    this.problems = problems;
    this.message = problems.map(formatProblem).join("\n");
  }
}
