/**
 * The dashboard's pages as Preact components, shared by the server (rendered
 * to a string by ./html.ts for the first paint and for clients without
 * JavaScript) and the browser (./client.ts re-renders them from JSON when the
 * server says something changed; Preact's diff keeps focus and scroll, so a
 * live update never moves a keyboard user). No DOM access here, no state:
 * pure functions of the page's props.
 */
import { EVENTS_SHOWN, matchesFilter, objectKey, shortRevision, shortVersion } from "./format.ts";
import { describeTimeline, TIMELINE_DAYS, timelineOf } from "./timeline.ts";
import type {
  AppHistory,
  Cell,
  ClusterRow,
  EventRow,
  FleetView,
  PolicyRow,
  PromotionView,
  Row,
  Version,
} from "./types.ts";

/** A virtual node, as Preact's `h` or the server's (./html.ts) makes it. */
export interface VNode {
  type: unknown;
  props: Record<string, unknown>;
}
export type Child = VNode | string | number | null | undefined | boolean | Child[];
/** `createElement`: Preact's in the browser, ./html.ts's on the server (same shape). */
export type H = (
  type: string | ((props: never) => VNode | null),
  props: Record<string, unknown> | null,
  ...children: Child[]
) => VNode;

export type Route =
  | {
      page: "matrix";
      q: string;
      /** Only the apps of this team ("" every team). */
      team: string;
      pageNo: number;
      /** Set by the server when it sent only the page's rows (./server.ts `pageView`): the filtered count. */
      matched?: number;
    }
  | { page: "promotions" }
  | {
      page: "cluster";
      /** Only this object's events (`Kind/namespace/name`). */
      object?: string;
    }
  | { page: "policies" }
  | { page: "app"; app: string };

export interface PageProps {
  base: string;
  route: Route;
  /** The fleet as last read; undefined before the first successful read. */
  view?: FleetView;
  /** Why the fleet could not be read now (the last good view is still shown). */
  fleetError?: string;
  /** When the fleet repository was last fetched. */
  syncedAt?: string;
  /** Who is looking, and whether they may act (then csrf is the token forms carry). */
  user?: string;
  canAct: boolean;
  csrf?: string;
  /** The app page's history per environment. */
  history?: AppHistory[];
  /** When the server answered (ISO): where the timelines end. */
  now?: string;
}

export const PAGE_SIZE = 100;

const NAV: [Route["page"], string, string][] = [
  ["matrix", "Fleet", "/"],
  ["promotions", "Promotions", "/promotions"],
  ["cluster", "Cluster", "/cluster"],
  ["policies", "Policies", "/policies"],
];

/** The page component, built on the given `createElement`. */
export function pageComponent(h: H): (p: PageProps) => VNode {
  function versions(list: readonly Version[] | undefined): string {
    return (list ?? []).map(shortVersion).join(", ");
  }

  const MARK_TEXT: Record<string, string> = {
    behind: "behind: a newer tag is allowed",
    drifted: "drifted: the cluster runs another version than git",
    pending: "pending: a promotion request is open",
    failing: "failing: its Kustomization is not Ready",
  };

  function CellView({ cell }: { cell: Cell | undefined }): VNode {
    if (!cell) return h("td", { class: "empty" }, h("span", { class: "sr-only" }, "not deployed"), "—");
    return h(
      "td",
      { class: `cell ${cell.marks.join(" ")}`, "data-env": cell.env },
      h("div", { class: "git" }, h("span", { class: "label" }, "git "), h("code", null, versions(cell.git))),
      cell.cluster !== undefined
        ? h(
            "div",
            { class: "cluster" },
            h("span", { class: "label" }, "cluster "),
            h("code", null, versions(cell.cluster) || "not running"),
          )
        : null,
      cell.newest
        ? h(
            "div",
            { class: "newest" },
            h("span", { class: "label" }, "newest "),
            h("code", null, versions(cell.newest)),
          )
        : null,
      cell.marks.length
        ? h(
            "ul",
            { class: "marks" },
            cell.marks.map((m) =>
              h(
                "li",
                { class: `mark ${m}`, title: MARK_TEXT[m] },
                m === "pending" && cell.request
                  ? h("a", { href: cell.request.url }, `pending #${cell.request.number}`)
                  : m,
              ),
            ),
          )
        : null,
      cell.kustomization && cell.kustomization.ready !== "True"
        ? h(
            "div",
            { class: "reason" },
            `${cell.kustomization.reason}: ${cell.kustomization.message}`.slice(0, 200),
          )
        : null,
    );
  }

  function Matrix({ p, view }: { p: PageProps; view: FleetView }): VNode {
    const route = p.route as Extract<Route, { page: "matrix" }>;
    const rows =
      route.matched === undefined
        ? view.rows.filter((r) => matchesFilter(r, route.q, route.team))
        : view.rows;
    const total = route.matched ?? rows.length;
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const pageNo = Math.min(Math.max(1, route.pageNo), pages);
    const shown =
      route.matched === undefined ? rows.slice((pageNo - 1) * PAGE_SIZE, pageNo * PAGE_SIZE) : rows;
    const link = (n: number) =>
      `${p.base}/?${new URLSearchParams({ ...(route.q ? { q: route.q } : {}), ...(route.team ? { team: route.team } : {}), page: String(n) })}`;
    return h(
      "section",
      { "aria-labelledby": "matrix-title" },
      h("h2", { id: "matrix-title" }, "Apps by environment"),
      h(
        "form",
        { class: "filter", method: "get", action: `${p.base}/`, role: "search" },
        view.teams.length
          ? [
              h("label", { for: "team" }, "Team"),
              h(
                "select",
                { id: "team", name: "team" },
                h("option", { value: "", selected: route.team === "" }, "All teams"),
                view.teams.map((t) => h("option", { value: t, selected: route.team === t }, t)),
              ),
            ]
          : null,
        h("label", { for: "q" }, "Filter apps by name"),
        h("input", { id: "q", name: "q", type: "search", value: route.q, autocomplete: "off" }),
        h("button", { type: "submit" }, "Filter"),
      ),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "matrix" },
          h(
            "caption",
            { class: "sr-only" },
            `Versions per app and environment, ${total} apps${route.team ? ` of team ${route.team}` : ""}`,
          ),
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", { scope: "col" }, "App"),
              view.teams.length ? h("th", { scope: "col" }, "Team") : null,
              view.environments.map((e) => h("th", { scope: "col" }, e)),
            ),
          ),
          h(
            "tbody",
            null,
            shown.map((r) =>
              h(
                "tr",
                { key: r.app, "data-app": r.app },
                h(
                  "th",
                  { scope: "row" },
                  h("a", { href: `${p.base}/apps/${encodeURIComponent(r.app)}` }, r.app || "(environment)"),
                ),
                view.teams.length ? h("td", { class: "team" }, r.team ?? "") : null,
                r.cells.map((c) => h(CellView, { cell: c })),
              ),
            ),
          ),
        ),
      ),
      pages > 1
        ? h(
            "nav",
            { class: "pages", "aria-label": "Pages" },
            pageNo > 1 ? h("a", { href: link(pageNo - 1), rel: "prev" }, "Previous") : null,
            h("span", null, ` page ${pageNo} of ${pages} `),
            pageNo < pages ? h("a", { href: link(pageNo + 1), rel: "next" }, "Next") : null,
          )
        : null,
    );
  }

  function ActionForm({
    p,
    action,
    fields,
    label,
  }: {
    p: PageProps;
    action: string;
    fields: Record<string, string>;
    label: string;
  }): VNode | null {
    if (!p.canAct || !p.csrf) return null;
    return h(
      "form",
      { class: "action", method: "post", action: `${p.base}/api/actions/${action}`, "data-action": action },
      h("input", { type: "hidden", name: "_csrf", value: p.csrf }),
      Object.entries(fields).map(([k, v]) => h("input", { type: "hidden", name: k, value: v })),
      h("button", { type: "submit" }, label),
    );
  }

  function Promotion({ p, pr }: { p: PageProps; pr: PromotionView }): VNode {
    const id = `promote-${pr.from}-${pr.to}`;
    return h(
      "article",
      { class: `promotion ${pr.gateState}`, "aria-labelledby": id, "data-to": pr.to },
      h("h3", { id }, `${pr.from} → ${pr.to}`),
      pr.changes.length
        ? h(
            "table",
            null,
            h("caption", { class: "sr-only" }, `What would move from ${pr.from} to ${pr.to}`),
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["App", "Image", pr.to, pr.from].map((c) => h("th", { scope: "col" }, c)),
              ),
            ),
            h(
              "tbody",
              null,
              pr.changes.map((c) =>
                h(
                  "tr",
                  null,
                  h("td", null, c.app),
                  h("td", null, h("code", null, c.image)),
                  h("td", null, c.from),
                  h("td", null, c.to),
                ),
              ),
            ),
          )
        : h("p", null, `Nothing to promote: ${pr.to} runs what ${pr.from} runs.`),
      pr.gates.length
        ? h(
            "ul",
            { class: "gates" },
            pr.gates.map((g) =>
              h(
                "li",
                { class: `gate ${g.state}` },
                h("strong", null, `${g.gate}: ${g.state}`),
                ` — ${g.message}`,
              ),
            ),
          )
        : null,
      pr.problems.map((m) => h("p", { class: "problem" }, m)),
      pr.request
        ? h(
            "p",
            null,
            "Open request: ",
            h("a", { href: pr.request.url }, `#${pr.request.number} ${pr.request.title}`),
          )
        : null,
      pr.changes.length
        ? h(ActionForm, {
            p,
            action: "promote",
            fields: { from: pr.from, to: pr.to },
            label: `Promote ${pr.from} to ${pr.to}`,
          })
        : null,
    );
  }

  function ClusterTable({
    p,
    rows,
    env,
  }: {
    p: PageProps;
    rows: readonly ClusterRow[];
    env?: string;
  }): VNode {
    const shown = env ? rows.filter((r) => r.env === env) : rows;
    return h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "cluster" },
        h("caption", { class: "sr-only" }, "Sources, Kustomizations and HelmReleases in the cluster"),
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Kind", "Name", "Ready", "Reason", "Message", "Revision", "Since", "Objects", "Actions"].map(
              (c) => h("th", { scope: "col" }, c),
            ),
          ),
        ),
        h(
          "tbody",
          null,
          shown.map((r) =>
            h(
              "tr",
              {
                key: `${r.kind}/${r.namespace}/${r.name}`,
                class: `ready-${r.ready}${r.suspended ? " suspended" : ""}`,
                "data-name": r.name,
              },
              h("td", null, r.kind),
              h(
                "td",
                { class: "name" },
                h(
                  "a",
                  {
                    href: `${p.base}/cluster?${new URLSearchParams({ object: objectKey(r) })}#events-title`,
                    title: `Events of ${r.kind} ${r.namespace}/${r.name}`,
                  },
                  `${r.namespace}/${r.name}`,
                ),
              ),
              h("td", null, r.suspended ? `${r.ready} (suspended)` : r.ready),
              h("td", null, r.reason),
              h("td", { class: "message" }, r.message),
              h("td", null, h("code", { title: r.revision }, shortRevision(r.revision))),
              h("td", null, r.since),
              h("td", null, r.inventory === undefined ? "" : String(r.inventory)),
              h(
                "td",
                null,
                r.kind === "Kustomization" || r.kind === "GitRepository" || r.kind === "HelmRelease"
                  ? h(ActionForm, {
                      p,
                      action: "reconcile",
                      fields: { kind: r.kind, namespace: r.namespace, name: r.name },
                      label: `Reconcile ${r.name}`,
                    })
                  : null,
                r.kind === "Kustomization" || r.kind === "HelmRelease"
                  ? h(ActionForm, {
                      p,
                      action: r.suspended ? "resume" : "suspend",
                      fields: { kind: r.kind, namespace: r.namespace, name: r.name },
                      label: `${r.suspended ? "Resume" : "Suspend"} ${r.name}`,
                    })
                  : null,
              ),
            ),
          ),
        ),
      ),
    );
  }

  function Cluster({ p, view }: { p: PageProps; view: FleetView }): VNode {
    const c = view.cluster;
    return h(
      "section",
      { "aria-labelledby": "cluster-title" },
      h("h2", { id: "cluster-title" }, "Cluster"),
      !c
        ? h("p", null, "No cluster: start the dashboard with --kubeconfig to see the agent's objects.")
        : h(
            "div",
            null,
            c.missing.length
              ? h("p", { class: "note" }, `Not served by the API server: ${c.missing.join(", ")}.`)
              : null,
            h(ClusterTable, { p, rows: c.rows }),
            h(Events, { p, events: c.events }),
          ),
    );
  }

  function Events({ p, events }: { p: PageProps; events: readonly EventRow[] }): VNode {
    const object = p.route.page === "cluster" ? p.route.object : undefined;
    const shown = (object ? events.filter((e) => objectKey(e) === object) : events).slice(0, EVENTS_SHOWN);
    return h(
      "section",
      { "aria-labelledby": "events-title", class: "events" },
      h(
        "h3",
        { id: "events-title" },
        object ? `Recent events of ${object.replace("/", " ")}` : "Recent events",
      ),
      object ? h("p", null, h("a", { href: `${p.base}/cluster` }, "All objects' events")) : null,
      shown.length === 0
        ? h("p", { class: "note" }, "No event recorded.")
        : h(
            "div",
            { class: "scroll" },
            h(
              "table",
              { class: "events" },
              h("caption", { class: "sr-only" }, `The ${shown.length} newest events, newest first`),
              h(
                "thead",
                null,
                h(
                  "tr",
                  null,
                  ["Time", "Object", "Type", "Reason", "Message", "Count"].map((c) =>
                    h("th", { scope: "col" }, c),
                  ),
                ),
              ),
              h(
                "tbody",
                null,
                shown.map((e) =>
                  h(
                    "tr",
                    {
                      key: `${objectKey(e)}/${e.time}/${e.reason}/${e.message}`,
                      class: `event ${e.type === "Warning" ? "warning" : "normal"}`,
                      "data-object": objectKey(e),
                    },
                    h("td", null, h("time", { datetime: e.time }, e.time)),
                    h("td", null, `${e.kind} ${e.namespace}/${e.name}`),
                    h("td", null, e.type),
                    h("td", null, e.reason),
                    h("td", { class: "message" }, e.message),
                    h("td", null, String(e.count)),
                  ),
                ),
              ),
            ),
          ),
    );
  }

  function Policies({ view }: { view: FleetView }): VNode {
    return h(
      "section",
      { "aria-labelledby": "policies-title" },
      h("h2", { id: "policies-title" }, "Policies"),
      view.policies.length === 0
        ? h("p", null, "No image policy in the fleet repository.")
        : h(
            "table",
            null,
            h("caption", { class: "sr-only" }, "Image policies and their latest selection"),
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                [
                  "Policy",
                  "Environment",
                  "Image",
                  "Strategy",
                  "Selected",
                  "Scanned",
                  "Registry requests",
                ].map((c) => h("th", { scope: "col" }, c)),
              ),
            ),
            h(
              "tbody",
              null,
              view.policies.map((r: PolicyRow) =>
                h(
                  "tr",
                  { "data-policy": r.id },
                  h("td", null, r.id),
                  h("td", null, r.env ?? ""),
                  h("td", null, h("code", null, r.image)),
                  h("td", null, r.strategy),
                  r.selected
                    ? h("td", { class: "selected" }, shortVersion(r.selected))
                    : h(
                        "td",
                        { class: "unselected" },
                        h("strong", null, "Nothing selected"),
                        r.reason ? `: ${r.reason}` : "",
                      ),
                  h("td", null, r.scannedAt ?? "not scanned"),
                  h(
                    "td",
                    { class: "cost" },
                    r.cost
                      ? `${r.cost.requests}${r.cost.sharedBy > 1 ? ` (one listing for ${r.cost.sharedBy} policies)` : ""}`
                      : "",
                  ),
                ),
              ),
            ),
          ),
    );
  }

  /** One lane per environment: the versions over the last 30 days as bars, the same in words for assistive tech. */
  function Timelines({ p, row }: { p: PageProps; row: Row }): VNode | null {
    const history = p.history ?? [];
    if (!history.length) return null;
    const now = Date.parse(p.now ?? "") || Date.now();
    const W = 600;
    const MIN_BAR = 6;
    return h(
      "section",
      { "aria-labelledby": "timeline-title", class: "timelines" },
      h("h3", { id: "timeline-title" }, `Versions over the last ${TIMELINE_DAYS} days`),
      history.map((hist) => {
        const cell = row.cells.find((c) => c?.env === hist.env);
        const first = cell?.git[0];
        const t = timelineOf(hist.entries, {
          now,
          complete: hist.complete,
          ...(first ? { image: first.image, current: shortVersion(first) } : {}),
        });
        const x = (ms: number) => ((ms - t.start) / (t.end - t.start)) * W;
        const versions = [...new Set(t.segments.map((s) => s.version))];
        const tone = (v: string) => `v${versions.indexOf(v) % 6}`;
        const words = `${hist.env}${first ? ` (${first.image})` : ""}: ${describeTimeline(t)}`;
        return h(
          "div",
          { class: "lane", "data-env": hist.env },
          h("span", { class: "lane-env" }, hist.env),
          h(
            "svg",
            {
              role: "img",
              "aria-label": words,
              viewBox: `0 0 ${W} 20`,
              preserveAspectRatio: "none",
              class: "timeline",
              focusable: "false",
            },
            h("title", null, words),
            t.known > t.start
              ? h("rect", { class: "unknown", x: 0, y: 4, width: x(t.known), height: 12 })
              : null,
            t.segments.map((s) =>
              h("rect", {
                class: `bar ${tone(s.version)}`,
                // A version that ran for minutes is still a visible bar, ending where it ended.
                x: Math.max(0, Math.min(x(s.from), x(s.to) - MIN_BAR)).toFixed(1),
                y: 2,
                width: Math.max(MIN_BAR, x(s.to) - x(s.from)).toFixed(1),
                height: 16,
                "data-version": s.version,
              }),
            ),
          ),
          h(
            "ul",
            { class: "legend", "aria-hidden": "true" },
            versions.map((v) => h("li", null, h("span", { class: `swatch ${tone(v)}` }), v)),
          ),
        );
      }),
      h(
        "p",
        { class: "axis", "aria-hidden": "true" },
        h("span", null, `${TIMELINE_DAYS} days ago`),
        h("span", null, "now"),
      ),
    );
  }

  function AppPage({ p, view, app }: { p: PageProps; view: FleetView; app: string }): VNode {
    const row = view.rows.find((r) => r.app === app);
    return h(
      "section",
      { "aria-labelledby": "app-title" },
      h("h2", { id: "app-title" }, `App ${app}`),
      !row
        ? h("p", null, `No app "${app}" in the fleet.`)
        : h(
            "div",
            null,
            h(
              "table",
              { class: "matrix" },
              h("caption", { class: "sr-only" }, `Versions of ${app} per environment`),
              h(
                "thead",
                null,
                h(
                  "tr",
                  null,
                  view.environments.map((e) => h("th", { scope: "col" }, e)),
                ),
              ),
              h(
                "tbody",
                null,
                h(
                  "tr",
                  null,
                  row.cells.map((c) => h(CellView, { cell: c })),
                ),
              ),
            ),
            view.policies.filter((pol) =>
              row.cells.some((c) => c?.env === pol.env && c?.git.some((g) => pol.image.startsWith(g.image))),
            ).length
              ? h(
                  "p",
                  null,
                  "Policies: ",
                  view.policies
                    .filter((pol) =>
                      row.cells.some(
                        (c) => c?.env === pol.env && c?.git.some((g) => pol.image.startsWith(g.image)),
                      ),
                    )
                    .map(
                      (pol) =>
                        `${pol.id} (${pol.strategy}${pol.selected ? `, selects ${shortVersion(pol.selected)}` : ""})`,
                    )
                    .join("; "),
                )
              : null,
            h(Timelines, { p, row }),
            (p.history ?? []).map((hist) =>
              h(
                "section",
                { "aria-labelledby": `history-${hist.env}`, class: "history" },
                h(
                  "h3",
                  { id: `history-${hist.env}` },
                  `History in ${hist.env}`,
                  h("span", { class: "path" }, ` (${hist.path})`),
                ),
                hist.entries.length === 0
                  ? h("p", null, "No commit touched it in the fetched history.")
                  : h(
                      "ol",
                      null,
                      hist.entries.map((e) =>
                        h(
                          "li",
                          null,
                          h("code", null, e.commit.slice(0, 12)),
                          " ",
                          h("time", { datetime: e.time }, e.time),
                          " ",
                          h(
                            "span",
                            { class: e.bot ? "bot" : "person" },
                            `${e.author}${e.bot ? " (bot)" : ""}`,
                          ),
                          ": ",
                          e.subject,
                          e.moves.length
                            ? h(
                                "ul",
                                null,
                                e.moves.map((m) =>
                                  h(
                                    "li",
                                    null,
                                    h("code", null, m.image),
                                    ` ${m.from || "(none)"} → ${m.to || "(removed)"}`,
                                  ),
                                ),
                              )
                            : null,
                        ),
                      ),
                    ),
              ),
            ),
          ),
    );
  }

  function Page(p: PageProps): VNode {
    const view = p.view;
    const current = p.route.page;
    let main: VNode | null = null;
    if (view) {
      if (p.route.page === "matrix") main = h(Matrix, { p, view });
      else if (p.route.page === "promotions")
        main = h(
          "section",
          { "aria-labelledby": "promotions-title" },
          h("h2", { id: "promotions-title" }, "Promotions"),
          view.promotions.length
            ? view.promotions.map((pr) => h(Promotion, { p, pr }))
            : h("p", null, "No environment promotes from another."),
        );
      else if (p.route.page === "cluster") main = h(Cluster, { p, view });
      else if (p.route.page === "policies") main = h(Policies, { view });
      else main = h(AppPage, { p, view, app: p.route.app });
    }
    const cluster = view?.cluster;
    return h(
      "div",
      { class: "page" },
      h("a", { class: "skip", href: "#main" }, "Skip to content"),
      h(
        "header",
        null,
        h("h1", null, `shipmate · ${view?.name ?? "fleet"}`),
        h(
          "nav",
          { "aria-label": "Sections" },
          h(
            "ul",
            null,
            NAV.map(([page, label, path]) =>
              h(
                "li",
                null,
                h(
                  "a",
                  { href: `${p.base}${path}`, ...(current === page ? { "aria-current": "page" } : {}) },
                  label,
                ),
              ),
            ),
          ),
        ),
        h(
          "p",
          { class: "meta" },
          view ? `revision ${view.revision.slice(0, 12)}` : "",
          p.syncedAt ? ` · fetched ${p.syncedAt}` : "",
          p.user ? ` · signed in as ${p.user}${p.canAct ? "" : " (read-only)"}` : " · read-only",
        ),
      ),
      h(
        "main",
        { id: "main", tabindex: "-1" },
        h(
          "div",
          { class: "banners", role: "status", "aria-live": "polite", id: "status" },
          p.fleetError
            ? h("p", { class: "banner error" }, `The fleet repository cannot be read: ${p.fleetError}`)
            : null,
          cluster && !cluster.connected
            ? h(
                "p",
                { class: "banner error" },
                `The API server cannot be reached: ${cluster.error ?? "disconnected"}. Showing the last state seen.`,
              )
            : null,
          view?.problems.length
            ? h("p", { class: "banner warn" }, view.problems.slice(0, 5).join("; "))
            : null,
        ),
        h("p", { class: "banner result", id: "result", role: "alert", hidden: true }, ""),
        main ?? h("p", null, "Reading the fleet repository…"),
      ),
    );
  }

  return Page;
}
