/**
 * The dashboard in the browser, bundled by scripts/build-dashboard.ts into
 * src/dashboard/assets/dashboard.js. Preact (4 KB) renders the same
 * components the server rendered (../view.ts): the page's props come from the
 * JSON block the server wrote, then from /api/page each time the event
 * stream says the fleet or the cluster changed. Preact diffs the DOM in
 * place, so a live update keeps focus, selection and scroll. Action forms are
 * sent with fetch and the CSRF token, and their outcome is announced in a
 * live region.
 */
import { h, hydrate, render } from "preact";
import { type H, type PageProps, pageComponent } from "../view.ts";

const Page = pageComponent(h as unknown as H);
const root = document.getElementById("app");
const propsBlock = document.getElementById("props");
let props: PageProps | undefined = propsBlock?.textContent
  ? (JSON.parse(propsBlock.textContent) as PageProps)
  : undefined;

function draw(first = false): void {
  if (!root || !props) return;
  const vnode = Page(props) as unknown as Parameters<typeof render>[0];
  if (first) hydrate(vnode, root);
  else render(vnode, root);
}

let fetching: Promise<void> | undefined;
let again = false;

async function refresh(): Promise<void> {
  if (!props) return;
  if (fetching) {
    again = true;
    return fetching;
  }
  fetching = (async () => {
    do {
      again = false;
      const path = `${location.pathname}${location.search}`;
      const res = await fetch(`${props.base}/api/page?path=${encodeURIComponent(path)}`, {
        headers: { accept: "application/json" },
        credentials: "same-origin",
      });
      if (res.ok) {
        props = (await res.json()) as PageProps;
        draw();
      }
    } while (again);
  })().finally(() => {
    fetching = undefined;
  });
  return fetching;
}

function announce(text: string, error: boolean): void {
  const el = document.getElementById("result");
  if (!el) return;
  el.textContent = text;
  el.hidden = false;
  el.className = `banner result ${error ? "error" : "ok"}`;
}

document.addEventListener("submit", (event: Event) => {
  const form = event.target as HTMLFormElement | null;
  if (!form?.dataset.action) return;
  event.preventDefault();
  const body = new URLSearchParams();
  for (const [k, v] of new FormData(form)) body.append(k, String(v));
  const button = form.querySelector("button");
  if (button) button.disabled = true;
  announce(`${button?.textContent ?? "action"}: working…`, false);
  fetch(form.action, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-csrf-token": body.get("_csrf") ?? "" },
    body,
    credentials: "same-origin",
  })
    .then(async (res) => {
      const out = (await res.json().catch(() => ({}))) as { message?: string; error?: string };
      announce(out.message ?? out.error ?? `HTTP ${res.status}`, !res.ok);
    })
    .catch((err: Error) => announce(err.message, true))
    .finally(() => {
      if (button) button.disabled = false;
      void refresh();
    });
});

draw(true);
if (props) {
  const events = new EventSource(`${props.base}/events`);
  let seen: string | undefined;
  events.addEventListener("changed", (e: MessageEvent) => {
    // The first event after a (re)connect also says where the server is: catch up then too.
    if (e.data !== seen) {
      seen = e.data;
      void refresh();
    }
  });
}
