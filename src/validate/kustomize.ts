/**
 * The real kustomize: the standalone `kustomize build` when it is on PATH
 * (faster to start, newer), else `kubectl kustomize`, which embeds it.
 */
import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { ShipmateError } from "../errors.ts";

/** A tool validate needs is not installed. */
export class MissingToolError extends ShipmateError {
  readonly exitCode = 1;
  override name = "MissingToolError";
}

export interface KustomizeRunner {
  /** What runs, for messages and the benchmark (`kustomize v5.7.1`, `kubectl kustomize`). */
  readonly name: string;
  /** The rendered YAML stream, or what the tool printed on failure. */
  build(dir: string): Promise<{ ok: true; yaml: string } | { ok: false; error: string }>;
}

async function onPath(bin: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, bin);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/**
 * kustomize wraps its cause in layers of "accumulating resources from …"
 * context; a person needs the innermost clause, with paths relative to the
 * validated tree.
 */
export function kustomizeErrorLine(stderr: string, root: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    // kubectl wraps the message in a klog line: `E1125 … run.go:72] "command failed" err=<` … `>`.
    .filter((l) => l && l !== ">" && !/^[EWIF]\d{4} .*\] "command failed" err=<?$/.test(l))
    .filter((l) => !l.startsWith("Usage:") && !l.startsWith("Examples:"));
  // The message may span lines (a quoted config block); it is one error, read as one line.
  const start = Math.max(
    0,
    lines.findIndex((l) => /^error:/i.test(l)),
  );
  let line =
    lines
      .slice(start)
      .join(" ")
      .replace(/^error:\s*/i, "") || "kustomize failed";
  line = line.split(`${root}/`).join("");
  const missing = /lstat ([^:]+): no such file or directory/.exec(line);
  if (missing) return `${missing[1]} does not exist`;
  const inner = line.lastIndexOf("accumulation err='");
  if (inner >= 0) line = line.slice(inner + "accumulation err='".length).replace(/'+$/, "");
  return line.length > 400 ? `${line.slice(0, 400)}…` : line;
}

function runner(
  name: string,
  file: string,
  args: (dir: string) => string[],
  env: NodeJS.ProcessEnv,
): KustomizeRunner {
  return {
    name,
    build: (dir) =>
      new Promise((resolve) => {
        execFile(file, args(dir), { env, maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) => {
          if (err) resolve({ ok: false, error: String(stderr || err.message) });
          else resolve({ ok: true, yaml: String(stdout) });
        });
      }),
  };
}

export async function findKustomize(env: NodeJS.ProcessEnv = process.env): Promise<KustomizeRunner> {
  const standalone = await onPath("kustomize", env);
  if (standalone) return runner("kustomize build", standalone, (dir) => ["build", dir], env);
  const kubectl = await onPath("kubectl", env);
  if (kubectl) return runner("kubectl kustomize", kubectl, (dir) => ["kustomize", dir], env);
  throw new MissingToolError("validate needs kustomize or kubectl on PATH to build kustomizations");
}
