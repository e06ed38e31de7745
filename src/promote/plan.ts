/**
 * Promotion planning, pure over file contents: the exact image references
 * (tag and digest) the `from` environment pins are written into the `to`
 * environment's manifests, app by app, for images `to` already runs. Images
 * only in `to` are left alone; what `from` does not run is never promoted.
 *
 * An app is the first folder under an environment's path
 * (`apps/staging/<app>/…`); files directly in the path are the environment's
 * own (app ""). Edits replace only the scalars that change, keeping their
 * quoting (src/manifest/render.ts), so everything else stays byte for byte.
 */
import { renderScalar } from "../manifest/render.ts";
import type { ScalarNode } from "../manifest/tree.ts";
import { type PinSite, scanPins, versionOf } from "./pins.ts";

export interface EnvTree {
  /** Environment name (`staging`). */
  name: string;
  /** Its folder, repository-relative (`apps/staging`). */
  path: string;
  /** YAML files under `path`, repository-relative paths. */
  files: readonly { path: string; content: string }[];
}

export interface PlanOptions {
  /** Only these apps (names of folders under the environment path). */
  apps?: readonly string[];
}

/** One image moving in one app of the target. */
export interface PromotedImage {
  app: string;
  /** The image as the target writes it. */
  image: string;
  repository: string;
  /** The target's version(s) before, `tag[@digest]`, comma-separated when it had several. */
  from: string;
  to: string;
  files: string[];
}

export interface PlanProblem {
  severity: "error" | "warning";
  message: string;
  file?: string;
  line?: number;
  app?: string;
}

export interface PromotionPlan {
  from: string;
  to: string;
  changes: PromotedImage[];
  /** New contents of the target files that change. */
  files: { path: string; content: string }[];
  /** Images the source runs that the target does not (left alone), for the report. */
  skipped: { app: string; image: string; reason: string }[];
  problems: PlanProblem[];
  /** Apps seen in the source, for `--app` validation and reports. */
  apps: string[];
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

/** The app a repository-relative file belongs to: the first folder under the environment path ("" directly in it). */
export function appOf(envPath: string, file: string): string {
  const base = envPath === "." || envPath === "" ? "" : `${envPath}/`;
  const rest = file.startsWith(base) ? file.slice(base.length) : file;
  const slash = rest.indexOf("/");
  return slash === -1 ? "" : rest.slice(0, slash);
}

const keyOf = (app: string, repository: string) => `${app}\u0000${repository}`;

function scanEnv(env: EnvTree, problems: PlanProblem[]): { site: PinSite; app: string; content: string }[] {
  const out: { site: PinSite; app: string; content: string }[] = [];
  for (const f of env.files) {
    const { sites, problems: p } = scanPins(f.path, f.content);
    for (const x of p) problems.push({ severity: "warning", ...x });
    for (const site of sites) out.push({ site, app: appOf(env.path, f.path), content: f.content });
  }
  return out;
}

export function planPromotion(from: EnvTree, to: EnvTree, opts: PlanOptions = {}): PromotionPlan {
  const problems: PlanProblem[] = [];
  const wanted = opts.apps?.length ? new Set(opts.apps) : undefined;

  // What the source pins, per app and image; two different pins of one image in one app are ambiguous.
  const source = new Map<
    string,
    { tag?: string; digest?: string; sites: PinSite[]; name: string; app: string }
  >();
  const ambiguous = new Set<string>();
  const fromApps = new Set<string>();
  for (const { site, app } of scanEnv(from, problems)) {
    fromApps.add(app);
    if (wanted && !wanted.has(app)) continue;
    const key = keyOf(app, site.repository);
    const seen = source.get(key);
    if (!seen) {
      source.set(key, {
        ...(site.tag !== undefined ? { tag: site.tag } : {}),
        ...(site.digest !== undefined ? { digest: site.digest } : {}),
        sites: [site],
        name: site.name,
        app,
      });
    } else if (versionOf(seen) !== versionOf(site)) {
      if (!ambiguous.has(key))
        problems.push({
          severity: "error",
          app,
          file: site.file,
          line: site.line,
          message: `${from.name} pins ${site.name} twice${app ? ` in ${app}` : ""}, as ${versionOf(seen)} (${seen.sites[0]?.file}:${seen.sites[0]?.line}) and ${versionOf(site)}; not promoted`,
        });
      ambiguous.add(key);
    } else seen.sites.push(site);
  }
  for (const app of wanted ?? [])
    if (!fromApps.has(app))
      problems.push({
        severity: "error",
        app,
        message: `${from.name} has no app "${app}" (under ${from.path})`,
      });

  const edits = new Map<string, { content: string; edits: Edit[] }>();
  const rows = new Map<string, PromotedImage>();
  const hit = new Set<string>();
  const toApps = new Set<string>();
  const setScalar = (
    file: string,
    content: string,
    node: ScalarNode,
    value: string,
    line: number,
  ): boolean => {
    if (node.value === value) return false;
    const text = renderScalar(value, node.style, node.inFlow);
    if (text === undefined) {
      problems.push({
        severity: "error",
        file,
        line,
        message: "a block scalar cannot be rewritten in place",
      });
      return false;
    }
    const entry = edits.get(file) ?? { content, edits: [] };
    entry.edits.push({ start: node.start, end: node.end, text });
    edits.set(file, entry);
    return true;
  };

  for (const { site, app, content } of scanEnv(to, problems)) {
    toApps.add(app);
    const key = keyOf(app, site.repository);
    if (ambiguous.has(key)) {
      hit.add(key);
      continue;
    }
    const pin = source.get(key);
    if (!pin) continue;
    hit.add(key);
    const where = { file: site.file, line: site.line, app };
    let changed = false;
    if (site.nodes.reference) {
      const value = `${site.name}${pin.tag !== undefined ? `:${pin.tag}` : ""}${pin.digest ? `@${pin.digest}` : ""}`;
      changed = setScalar(site.file, content, site.nodes.reference, value, site.line);
    } else {
      if (site.nodes.digest && !pin.digest) {
        problems.push({
          severity: "error",
          ...where,
          message: `${to.name} pins ${site.name} by digest but ${from.name} pins only the tag ${pin.tag}; not promoted`,
        });
        continue;
      }
      if (pin.tag !== undefined && site.nodes.tag)
        changed = setScalar(site.file, content, site.nodes.tag, pin.tag, site.line) || changed;
      else if (pin.tag !== undefined)
        problems.push({
          severity: "warning",
          ...where,
          message: `${to.name} pins ${site.name} by digest only; ${from.name}'s tag ${pin.tag} is not written`,
        });
      if (pin.digest && site.nodes.digest)
        changed = setScalar(site.file, content, site.nodes.digest, pin.digest, site.line) || changed;
      else if (pin.digest)
        problems.push({
          severity: "warning",
          ...where,
          message: `${to.name} pins ${site.name} by tag only; add a digest field to carry ${from.name}'s digest too`,
        });
    }
    if (!changed) continue;
    const row = rows.get(key) ?? {
      app,
      image: site.name,
      repository: site.repository,
      from: "",
      to: versionOf(pin),
      files: [],
    };
    const before = versionOf(site);
    if (!row.from.split(", ").includes(before)) row.from = row.from ? `${row.from}, ${before}` : before;
    if (!row.files.includes(site.file)) row.files.push(site.file);
    rows.set(key, row);
  }

  const skipped: PromotionPlan["skipped"] = [];
  for (const [key, pin] of source) {
    if (hit.has(key)) continue;
    skipped.push({
      app: pin.app,
      image: pin.name,
      reason: toApps.has(pin.app)
        ? `${to.name}${pin.app ? `/${pin.app}` : ""} does not run ${pin.name}`
        : `${to.name} has no app "${pin.app}"`,
    });
  }

  const files: PromotionPlan["files"] = [];
  for (const [path, { content, edits: list }] of edits) {
    list.sort((a, b) => a.start - b.start);
    let out = "";
    let at = 0;
    for (const e of list) {
      if (e.start < at) continue;
      out += content.slice(at, e.start) + e.text;
      at = e.end;
    }
    files.push({ path, content: out + content.slice(at) });
  }
  const changes = [...rows.values()].sort((a, b) =>
    a.app === b.app ? a.image.localeCompare(b.image) : a.app.localeCompare(b.app),
  );
  return {
    from: from.name,
    to: to.name,
    changes,
    files: files.sort((a, b) => a.path.localeCompare(b.path)),
    skipped,
    problems,
    apps: [...fromApps].sort(),
  };
}
