/**
 * Server-side rendering of the dashboard's components (./view.ts) to HTML:
 * a `createElement` of the same shape as Preact's, a serializer that escapes
 * every text and attribute, and the document shell (stylesheet and script
 * from `assets/`, the page's props as a JSON data block the client reads —
 * not executed, so the CSP's `script-src 'self'` holds).
 */
import type { Child, H, PageProps, VNode } from "./view.ts";
import { pageComponent } from "./view.ts";

export const h: H = (type, props, ...children) => ({
  type,
  props: {
    ...(props ?? {}),
    ...(children.length ? { children: children.length === 1 ? children[0] : children } : {}),
  },
});

const VOID = new Set(["area", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"]);

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function attrs(props: Record<string, unknown>): string {
  let out = "";
  for (const [k, v] of Object.entries(props)) {
    if (
      k === "children" ||
      k === "key" ||
      k === "ref" ||
      k.startsWith("on") ||
      v === undefined ||
      v === null ||
      v === false
    )
      continue;
    const name = k === "className" ? "class" : k;
    if (!/^[a-zA-Z][a-zA-Z0-9:-]*$/.test(name)) continue;
    out += v === true ? ` ${name}` : ` ${name}="${escapeHtml(String(v))}"`;
  }
  return out;
}

export function renderToString(node: Child): string {
  if (node === null || node === undefined || node === false || node === true) return "";
  if (typeof node === "string") return escapeHtml(node);
  if (typeof node === "number") return String(node);
  if (Array.isArray(node)) return node.map(renderToString).join("");
  const v = node as VNode;
  if (typeof v.type === "function") return renderToString((v.type as (p: unknown) => Child)(v.props));
  const tag = String(v.type);
  const open = `<${tag}${attrs(v.props)}>`;
  if (VOID.has(tag)) return open;
  return `${open}${renderToString(v.props.children as Child)}</${tag}>`;
}

const Page = pageComponent(h);

/** JSON safe inside a `<script type="application/json">` block. */
export function jsonForHtml(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026");
}

export function documentHtml(props: PageProps, assetVersion: string): string {
  const title = `${props.view?.name ?? "fleet"} · shipmate`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="${escapeHtml(props.base)}/assets/dashboard.css?v=${assetVersion}">
<script type="module" src="${escapeHtml(props.base)}/assets/dashboard.js?v=${assetVersion}"></script>
</head>
<body>
<div id="app">${renderToString(Page(props))}</div>
<script type="application/json" id="props">${jsonForHtml(props)}</script>
</body>
</html>
`;
}
