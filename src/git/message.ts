/**
 * Commit messages from Handlebars templates. The data carries Flux's names
 * (`AutomationObject`, `Changed.Changes[].OldValue/NewValue/Setter`,
 * `Changed.FileChanges`, `Values`) so a Flux `messageTemplate` translates by
 * syntax only, plus plain lower-case names (`changes`, `files`).
 */
import Handlebars from "handlebars";
import type { Change, FileUpdate, ObjectId } from "../changes.ts";
import { ConfigError } from "../errors.ts";

export interface MessageData {
  AutomationObject: string;
  Changed: {
    Changes: { OldValue: string; NewValue: string; Setter: string; File: string }[];
    /** file → "Kind/namespace/name" → changes, like Flux's ResultV2.FileChanges. */
    FileChanges: Record<string, Record<string, { OldValue: string; NewValue: string; Setter: string }[]>>;
    /** "Kind/namespace/name" → changes. */
    Objects: Record<string, { OldValue: string; NewValue: string; Setter: string }[]>;
  };
  Values: Record<string, string>;
  changes: (Change & { file: string })[];
  files: { path: string; changes: Change[] }[];
  /** Distinct new image values, for subjects. */
  images: string[];
}

export function objectKey(o: ObjectId): string {
  return [o.kind ?? "", o.namespace ?? "", o.name ?? ""].filter(Boolean).join("/") || "-";
}

export function messageData(
  files: readonly FileUpdate[],
  opts: { automation?: string; values?: Record<string, string> } = {},
): MessageData {
  const data: MessageData = {
    AutomationObject: opts.automation ?? "",
    Changed: { Changes: [], FileChanges: {}, Objects: {} },
    Values: opts.values ?? {},
    changes: [],
    files: files.map((f) => ({ path: f.path, changes: f.changes })),
    images: [],
  };
  const images = new Set<string>();
  for (const f of files) {
    for (const c of f.changes) {
      const flux = { OldValue: c.old, NewValue: c.new, Setter: c.setter };
      data.Changed.Changes.push({ ...flux, File: f.path });
      const key = objectKey(c.object);
      const perFile = data.Changed.FileChanges[f.path] ?? {};
      data.Changed.FileChanges[f.path] = perFile;
      perFile[key] = [...(perFile[key] ?? []), flux];
      data.Changed.Objects[key] = [...(data.Changed.Objects[key] ?? []), flux];
      data.changes.push({ ...c, file: f.path });
      images.add(c.part === "image" ? c.new : `${c.policy}:${c.new}`);
    }
  }
  data.images = [...images].sort();
  return data;
}

export const DEFAULT_TEMPLATE = `{{#if (eq images.length 1)}}Update image {{images.[0]}}{{else}}Update {{images.length}} images{{/if}}

{{#each changes}}
- {{file}}: {{setter}} {{old}} -> {{new}}
{{/each}}`;

const hb = Handlebars.create();
hb.registerHelper("eq", (a: unknown, b: unknown) => a === b);
/** A part of an `objectKey` ("Kind/namespace/name", or "Kind/name" for an object without namespace). */
hb.registerHelper("objectKeyField", (key: unknown, field: unknown) => {
  const parts = String(key).split("/");
  const [kind, namespace, name] = parts.length >= 3 ? parts : [parts[0], "", parts[1]];
  return field === "Kind" ? kind : field === "Namespace" ? namespace : (name ?? "");
});
/** Go's `print` / `println` of one operand (Flux's image-update guide writes `{{print .OldValue}} -> {{println .NewValue}}`). */
hb.registerHelper("goPrint", (v: unknown) => (v === undefined || v === null ? "" : String(v)));
hb.registerHelper("goPrintln", (v: unknown) => `${v === undefined || v === null ? "" : String(v)}\n`);

/**
 * Opens every template translated from Go: Go's text/template keeps a line
 * that holds only an action (`{{ range … }}` alone on a line emits its
 * newline), Handlebars drops such "standalone" lines; a template that starts
 * with this mark is rendered with Go's rule. It renders to nothing.
 */
const GO_MARK = "{{!-- from Go text/template --}}";

/** Renders `template` (or the default) with the change data; a broken template is a configuration error. */
export function renderMessage(
  template: string | undefined,
  data: MessageData,
  source = "message template",
): string {
  let render: Handlebars.TemplateDelegate;
  try {
    const text = template ?? DEFAULT_TEMPLATE;
    render = hb.compile(text, { noEscape: true, strict: false, ignoreStandalone: text.startsWith(GO_MARK) });
    const out = render(data)
      .replace(/\n{3,}/g, "\n\n")
      .trim();
    if (out === "") throw new Error("it renders to an empty message");
    return `${out}\n`;
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0] ?? "";
    const hint = /\{\{-?\s*(range|end|\.)/.test(template ?? "")
      ? " (this looks like a Go text/template from Flux; shipmate templates are Handlebars: {{#each Changed.Changes}}…{{/each}})"
      : "";
    throw new ConfigError(`${source}: ${msg}${hint}`);
  }
}

/**
 * Translates the Go text/template subset Flux users write in `messageTemplate`
 * (`{{ .Field }}`, `{{ range .X }}`, `{{ range $k, $v := .X }}`, `{{ if }}`,
 * `{{ else }}`, `{{ end }}`, `{{ print .X }}` and `{{ println .X }}` of one
 * operand, `{{-`/`-}}` trimming) into Handlebars; undefined when the template
 * uses anything else (other functions, pipelines, variables elsewhere).
 */
export function goTemplateToHandlebars(template: string): string | undefined {
  const stack: string[] = [];
  // Go variables bound by `range $k, $v :=`, with the each-depth they were bound at (Handlebars needs ../ to reach out).
  let vars: Record<string, { expr: "@key" | "this"; depth: number }> = {};
  const scopes: (typeof vars)[] = [];
  let depth = 0;
  let failed = false;
  const path = (expr: string): string | undefined => {
    const e = expr.trim();
    if (e === ".") return "this";
    if (/^\.[A-Za-z_][\w.]*$/.test(e)) return e.slice(1);
    // `$v.Field`: a field of a ranged value, or of an object key (`$resource.Kind` over `.Changed.Objects`).
    const dotted = /^(\$\w+)\.([A-Za-z_][\w.]*)$/.exec(e);
    const v = vars[dotted ? (dotted[1] ?? "") : e];
    if (!v) return undefined;
    const up = "../".repeat(depth - v.depth);
    if (dotted) {
      const field = dotted[2] ?? "";
      if (v.expr === "this") return `${up}${field}`;
      return /^(Kind|Namespace|Name)$/.test(field) ? `(objectKeyField @${up}key "${field}")` : undefined;
    }
    return v.expr === "@key" ? `@${up}key` : up ? up.slice(0, -1) : "this";
  };
  const out = template.replace(
    /\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}/g,
    (_m, ltrim: string, body: string, rtrim: string) => {
      const l = ltrim ? "~" : "";
      const r = rtrim ? "~" : "";
      const range = /^range\s+(?:(\$\w+)\s*,\s*(\$\w+)\s*:=\s*)?(.+)$/.exec(body);
      if (range) {
        const target = path(range[3] ?? "");
        if (!target) failed = true;
        scopes.push(vars);
        depth++;
        vars = { ...vars };
        if (range[1]) vars[range[1]] = { expr: "@key", depth };
        if (range[2]) vars[range[2]] = { expr: "this", depth };
        stack.push("each");
        return `{{${l}#each ${target}${r}}}`;
      }
      const cond = /^(if|with)\s+(.+)$/.exec(body);
      if (cond) {
        const target = path(cond[2] ?? "");
        if (!target) failed = true;
        scopes.push(vars);
        stack.push(cond[1] ?? "if");
        return `{{${l}#${cond[1]} ${target}${r}}}`;
      }
      if (body === "else") return `{{${l}else${r}}}`;
      if (body === "end") {
        const block = stack.pop();
        if (!block) failed = true;
        if (block === "each") depth--;
        vars = scopes.pop() ?? {};
        return `{{${l}/${block}${r}}}`;
      }
      const print = /^(print|println)\s+(\S+)$/.exec(body);
      if (print) {
        const p = path(print[2] ?? "");
        if (!p) failed = true;
        // The helper's output, newline included, is not subject to the `~` trimming of template text.
        return `{{${l}${print[1] === "println" ? "goPrintln" : "goPrint"} ${p}${r}}}`;
      }
      const p = path(body);
      if (!p) failed = true;
      // A helper call is a sub-expression inside blocks, a plain call when output.
      return `{{${l}${p?.startsWith("(") ? p.slice(1, -1) : p}${r}}}`;
    },
  );
  return failed || stack.length > 0 ? undefined : GO_MARK + out;
}
