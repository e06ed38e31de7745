/**
 * Renders a fleet model into files with the Handlebars templates under
 * `templates/`. Each layout has a plan (`templates/<layout>/plan.hbs`) that
 * renders to one line per file: `<repo-dir> <path> <template> [env=N] [app=N]
 * [team=N]`; the generator only follows it, so no manifest shape lives in
 * code. Every file under `templates/partials/` is also a partial
 * (`{{> agent/deployment.yaml}}`). Output is sorted and every YAML file is
 * parsed before anything is returned, so a template mistake never reaches disk.
 * Templates read and files rendered are bounded (../config/limits.ts): a
 * template or a rendered file over the size bound, or a plan naming more
 * files than the bound, is refused with one line before anything is written.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import Handlebars from "handlebars";
import { parseAllDocuments } from "yaml";
import { MAX_FILE_BYTES, MAX_RENDERED_FILES } from "../config/limits.ts";
import { ShipmateError, UsageError } from "../errors.ts";
import { AGENT_NAMESPACE, type FleetModel, type RepoModel } from "./model.ts";

export const TEMPLATES_DIR = new URL("../../templates/", import.meta.url).pathname;
/** The in-cluster agent's own manifests, maintained with the agent. */
export const AGENT_DEPLOY_DIR = new URL("../../deploy/agent/", import.meta.url).pathname;

/** A template that renders to something unusable: a bug in shipmate's templates, not a user mistake. */
export class TemplateError extends ShipmateError {
  readonly exitCode = 1;
  override name = "TemplateError";
}

export interface RenderedFile {
  /** Repository folder relative to --out ("." for a monorepo written straight into --out). */
  repo: string;
  /** Path inside the repository, forward slashes. */
  path: string;
  content: string;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.name.endsWith(".hbs")) out.push(p);
  }
  return out;
}

type Template = Handlebars.TemplateDelegate;

/** How much a scaffold may read and write (../config/limits.ts; tests pass small ones). */
export interface RenderBounds {
  /** Bytes of one template or partial, and of one rendered file. */
  maxBytes: number;
  /** Files one plan may name. */
  maxFiles: number;
}

const DEFAULT_RENDER_BOUNDS: RenderBounds = { maxBytes: MAX_FILE_BYTES, maxFiles: MAX_RENDERED_FILES };

/** A template file's text, refused unread when over the bound. */
function readTemplate(file: string, shown: string, maxBytes: number): string {
  const size = statSync(file).size;
  if (size > maxBytes)
    throw new TemplateError(`template ${shown} is ${size} bytes, over the ${maxBytes}-byte bound`);
  return readFileSync(file, "utf8");
}

/** A Handlebars environment over one templates folder; templates compile once and are reused. */
export class Templates {
  readonly root: string;
  private readonly hb: typeof Handlebars;
  private readonly cache = new Map<string, Template>();
  readonly bounds: RenderBounds;

  constructor(root: string = TEMPLATES_DIR, bounds: Partial<RenderBounds> = {}) {
    this.root = root;
    this.bounds = { ...DEFAULT_RENDER_BOUNDS, ...bounds };
    this.hb = Handlebars.create();
    const hb = this.hb;
    hb.registerHelper("quote", (v: unknown) => JSON.stringify(String(v)));
    hb.registerHelper("eq", (a: unknown, b: unknown) => a === b);
    // The last argument of a helper is Handlebars' options object.
    hb.registerHelper("concat", (...args: unknown[]) => args.slice(0, -1).map(String).join(""));
    hb.registerHelper("policy", (app: unknown, env: unknown) => `${AGENT_NAMESPACE}:${app}-${env}`);
    hb.registerHelper("policyName", (app: unknown, env: unknown) => `${app}-${env}`);
    // Whether an app (or, with no app, any app) rolls out as a Flagger canary in an environment.
    hb.registerHelper("canaryIn", (app: unknown, env: unknown) => {
      const flag = (v: unknown) =>
        typeof v === "object" && v !== null && (v as { canary?: unknown }).canary === true;
      return flag(env) && (app === null || flag(app));
    });
    // The agent's CRDs are the agent's own (deploy/agent); the scaffold copies them, never a second version.
    const agentFiles = new Map<string, string>();
    hb.registerHelper("agentFile", (name: unknown) => {
      const file = String(name);
      let text = agentFiles.get(file);
      if (text === undefined) {
        text = readFileSync(join(AGENT_DEPLOY_DIR, file), "utf8");
        agentFiles.set(file, text);
      }
      return text;
    });
    // Go templates (Helm charts) pass through untouched.
    hb.registerHelper("raw", (options: Handlebars.HelperOptions) => options.fn(undefined));
    const partials = join(root, "partials");
    for (const file of walk(partials)) {
      const name = relative(partials, file).replace(/\.hbs$/, "");
      hb.registerPartial(name, readTemplate(file, `partials/${name}.hbs`, this.bounds.maxBytes));
    }
  }

  get(name: string): Template {
    let t = this.cache.get(name);
    if (!t) {
      let source: string;
      try {
        source = readTemplate(join(this.root, name), name, this.bounds.maxBytes);
      } catch (err) {
        if (err instanceof TemplateError) throw err;
        throw new TemplateError(`template ${name} does not exist under ${this.root}`);
      }
      t = this.hb.compile(source, { noEscape: true, strict: true });
      this.cache.set(name, t);
    }
    return t;
  }

  /** `what` names the output in a refusal (the file being rendered); the template's name by default. */
  render(name: string, context: object, what = name): string {
    let out: string;
    try {
      out = this.get(name)(context);
    } catch (err) {
      if (err instanceof TemplateError) throw err;
      throw new TemplateError(`template ${name}: ${(err as Error).message.split("\n")[0]}`);
    }
    // Counted in UTF-16 units first: only a string that might be over the bound is measured in bytes.
    if (out.length * 3 > this.bounds.maxBytes) {
      const bytes = Buffer.byteLength(out, "utf8");
      if (bytes > this.bounds.maxBytes)
        throw new UsageError(
          `${what} would be ${bytes} bytes, over the ${this.bounds.maxBytes}-byte bound of one file; render a smaller fleet`,
        );
    }
    return out;
  }
}

interface PlanLine {
  repo: string;
  path: string;
  template: string;
  env?: string;
  app?: string;
  team?: string;
}

function parsePlan(text: string, layout: string, maxFiles: number): PlanLine[] {
  const lines: PlanLine[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    if (lines.length >= maxFiles)
      throw new UsageError(
        `the fleet would render more than ${maxFiles} files, the bound of one scaffold; split it (fewer environments or apps per run)`,
      );
    const [repo, path, template, ...rest] = line.split(/\s+/);
    if (!repo || !path || !template)
      throw new TemplateError(`templates/${layout}/plan.hbs: line "${line}" is not <repo> <path> <template>`);
    const entry: PlanLine = { repo, path, template };
    for (const kv of rest) {
      const [k, v] = kv.split("=");
      if ((k === "env" || k === "app" || k === "team") && v) entry[k] = v;
      else throw new TemplateError(`templates/${layout}/plan.hbs: unknown selector "${kv}"`);
    }
    lines.push(entry);
  }
  return lines;
}

/** Renders every file of every repository of the fleet, sorted by repository and path. */
export function renderFleet(model: FleetModel, templates: Templates = new Templates()): RenderedFile[] {
  const plan = parsePlan(
    templates.render(`${model.layout}/plan.hbs`, { fleet: model }, "the scaffold's plan"),
    model.layout,
    templates.bounds.maxFiles,
  );
  const repos = new Map<string, RepoModel>(model.repos.map((r) => [r.dir, r]));
  const envs = new Map(model.envs.map((e) => [e.name, e]));
  const apps = new Map(model.apps.map((a) => [a.name, a]));
  const teams = new Map(model.teams.map((t) => [t.name, t]));
  const seen = new Set<string>();
  const checker = new YamlChecker([
    model.name,
    ...model.envs.map((e) => e.name),
    ...model.apps.map((a) => a.name),
    ...model.teams.map((t) => t.name),
  ]);
  const files: RenderedFile[] = [];
  for (const line of plan) {
    const repo = repos.get(line.repo);
    if (!repo) throw new TemplateError(`templates/${model.layout}/plan.hbs: unknown repository ${line.repo}`);
    const key = `${line.repo}/${line.path}`;
    if (seen.has(key)) throw new TemplateError(`templates/${model.layout}/plan.hbs: ${key} is planned twice`);
    seen.add(key);
    const context: Record<string, unknown> = { fleet: model, repo };
    if (line.env) context.env = envs.get(line.env);
    if (line.app) context.app = apps.get(line.app);
    if (line.team) context.team = teams.get(line.team);
    const content = templates.render(line.template, context, key);
    checker.check(key, content);
    files.push({ repo: line.repo, path: line.path, content });
  }
  return files.sort((a, b) => (a.repo === b.repo ? cmp(a.path, b.path) : cmp(a.repo, b.repo)));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Every rendered YAML file must parse, so a template slip is caught here and
 * not by the user's cluster. Fleets repeat the same file shapes thousands of
 * times with only names changed, so each file is reduced to a skeleton (each
 * distinct name replaced by a numbered placeholder, in order of appearance)
 * and each skeleton is parsed once. Names are DNS labels that YAML reads as
 * plain strings (checkName), and the renaming is one-to-one within a file, so
 * a skeleton parses exactly when its files do, duplicate keys included.
 */
class YamlChecker {
  private readonly pattern: RegExp | undefined;
  private readonly valid = new Set<string>();

  constructor(names: string[]) {
    const unique = [...new Set(names)].filter(Boolean).sort((a, b) => b.length - a.length);
    this.pattern = unique.length ? new RegExp(unique.join("|"), "g") : undefined;
  }

  private skeleton(content: string): string {
    if (!this.pattern) return content;
    const ids = new Map<string, number>();
    return content.replace(this.pattern, (name) => {
      let id = ids.get(name);
      if (id === undefined) {
        id = ids.size;
        ids.set(name, id);
      }
      return `QZ${id}Q`;
    });
  }

  check(key: string, content: string): void {
    if (!/\.ya?ml$/.test(key) || key.includes("/chart/templates/")) return;
    const skeleton = this.skeleton(content);
    if (this.valid.has(skeleton)) return;
    for (const doc of parseAllDocuments(content)) {
      const problem = doc.errors[0] ?? doc.warnings[0];
      if (problem)
        throw new TemplateError(`rendered ${key} is not valid YAML: ${problem.message.split("\n")[0]}`);
    }
    this.valid.add(skeleton);
  }
}
