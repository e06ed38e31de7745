/**
 * Runs the bundled Action the way a GitHub runner does: `node dist/index.js`
 * with each input as an `INPUT_<NAME>` variable (defaults from action.yml
 * filled in, `${{ github.token }}` evaluated), GITHUB_OUTPUT and
 * GITHUB_STEP_SUMMARY files, GITHUB_WORKSPACE as the working directory;
 * then reads back outputs, summary and the workflow commands it printed.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface WorkflowCommand {
  command: string;
  properties: Record<string, string>;
  message: string;
}

export interface ActionRun {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  commands: WorkflowCommand[];
}

interface ActionYml {
  inputs: Record<string, { default?: string }>;
  runs: { using: string; main: string };
}

export function actionYml(): ActionYml {
  return parse(readFileSync(join(ROOT, "action.yml"), "utf8")) as ActionYml;
}

/** The runner's input variable name: upper case, spaces to underscores (hyphens stay). */
const inputVar = (name: string) => `INPUT_${name.replace(/ /g, "_").toUpperCase()}`;

// Workflow command escaping (actions/toolkit packages/core/src/command.ts).
const unescapeData = (s: string) => s.replace(/%0D/g, "\r").replace(/%0A/g, "\n").replace(/%25/g, "%");
const unescapeProperty = (s: string) => unescapeData(s).replace(/%3A/g, ":").replace(/%2C/g, ",");

export function parseCommands(stdout: string): WorkflowCommand[] {
  const out: WorkflowCommand[] = [];
  for (const line of stdout.split("\n")) {
    const m = /^::([a-z-]+)(?: ([^:]*))?::(.*)$/.exec(line);
    if (!m) continue;
    const properties: Record<string, string> = {};
    for (const kv of (m[2] ?? "").split(",").filter(Boolean)) {
      const i = kv.indexOf("=");
      properties[kv.slice(0, i)] = unescapeProperty(kv.slice(i + 1));
    }
    out.push({ command: m[1]!, properties, message: unescapeData(m[3] ?? "") });
  }
  return out;
}

/** GITHUB_OUTPUT holds `name<<DELIM\nvalue\nDELIM` blocks (actions/toolkit file-command.ts). */
export function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i] ?? "");
    if (!m) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i] ?? "");
    out[m[1]!] = value.join("\n");
  }
  return out;
}

export async function runAction(
  inputs: Record<string, string>,
  opts: { workspace: string; token: string; env?: NodeJS.ProcessEnv },
): Promise<ActionRun> {
  const yml = actionYml();
  const files = mkdtempSync(join(tmpdir(), "shipmate-runner-"));
  const outputFile = join(files, "output");
  const summaryFile = join(files, "summary");
  writeFileSync(outputFile, "");
  writeFileSync(summaryFile, "");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_ACTIONS: "true",
    CI: "true",
    GITHUB_WORKSPACE: opts.workspace,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    RUNNER_TEMP: files,
    XDG_CACHE_HOME: join(files, "cache"),
    ...opts.env,
  };
  for (const [name, spec] of Object.entries(yml.inputs)) {
    const given = inputs[name];
    const value = given ?? (spec.default ?? "").replace(/\$\{\{\s*github\.token\s*\}\}/g, opts.token);
    env[inputVar(name)] = value;
  }
  for (const name of Object.keys(inputs))
    if (!(name in yml.inputs)) throw new Error(`action.yml declares no input ${name}`);
  const child = spawn(process.execPath, [join(ROOT, yml.runs.main)], {
    cwd: opts.workspace,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const code = await new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
  const result: ActionRun = {
    code,
    stdout,
    stderr,
    outputs: parseOutputs(readFileSync(outputFile, "utf8")),
    summary: readFileSync(summaryFile, "utf8"),
    commands: parseCommands(stdout),
  };
  rmSync(files, { recursive: true, force: true });
  return result;
}
