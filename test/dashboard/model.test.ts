/**
 * The dashboard's read model, pure: the matrix, its marks, promotions with
 * their gates, and the cluster rows, from files and objects given in tables.
 */
import { describe, expect, it } from "vitest";
import { parseFleet } from "../../src/config/fleet.ts";
import { matchesFilter, shortVersion } from "../../src/dashboard/format.ts";
import { renderToString, h as serverH } from "../../src/dashboard/html.ts";
import { buildView, type ClusterSnapshot, eventRows, type KubeObject } from "../../src/dashboard/model.ts";
import { pageView } from "../../src/dashboard/server.ts";
import { ownersOf } from "../../src/dashboard/teams.ts";
import { pageComponent } from "../../src/dashboard/view.ts";
import type { PullRequest } from "../../src/forge/types.ts";
import type { EnvTree } from "../../src/promote/plan.ts";

const fleet = parseFleet(`apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata: { name: acme }
spec:
  environments:
    - name: staging
      path: apps/staging
    - name: production
      path: apps/production
      mode: pull-request
      gates: { health: true, soak: 1h }
`);

const DIGEST = `sha256:${"a".repeat(64)}`;
const overlay = (image: string, tag: string, digest?: string) =>
  `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
  - name: ${image}
    newTag: "${tag}"${digest ? `\n    digest: ${digest}` : ""}
`;

function tree(name: string, apps: Record<string, string>): EnvTree {
  const path = `apps/${name}`;
  return {
    name,
    path,
    files: Object.entries(apps).map(([app, content]) => ({
      path: `${path}/${app}/kustomization.yaml`,
      content,
    })),
  };
}

const trees = (staging: Record<string, string>, production: Record<string, string>) =>
  new Map([
    ["staging", tree("staging", staging)],
    ["production", tree("production", production)],
  ]);

const ks = (
  name: string,
  path: string,
  opts: { ready?: string; reason?: string; deployments?: string[]; rev?: string; suspend?: boolean } = {},
): KubeObject => ({
  metadata: { namespace: "shipmate-system", name },
  spec: { path, ...(opts.suspend ? { suspend: true } : {}) },
  status: {
    conditions: [
      {
        type: "Ready",
        status: opts.ready ?? "True",
        reason: opts.reason ?? "ReconciliationSucceeded",
        message: "ok",
      },
    ],
    lastAppliedRevision: opts.rev ?? "main@sha1:1234567890abcdef",
    inventory: {
      entries: (opts.deployments ?? []).map((d) => ({
        id: `${d.replace("/", "_")}_apps_Deployment`,
        v: "v1",
      })),
    },
  },
});
const deploy = (ns: string, name: string, image: string): KubeObject => ({
  metadata: { namespace: ns, name },
  spec: { template: { spec: { containers: [{ name: "app", image }] } } },
});
const snapshot = (objects: ClusterSnapshot["objects"]): ClusterSnapshot => ({ connected: true, objects });
const now = new Date("2026-01-02T00:00:00Z");
const REV = "1234567890abcdef1234";

describe("the matrix", () => {
  const cases: {
    name: string;
    staging: Record<string, string>;
    production: Record<string, string>;
    cluster?: ClusterSnapshot;
    scanTag?: string;
    requests?: PullRequest[];
    /** app → [staging cell, production cell] as "git|cluster|marks" ("-": no cell). */
    want: Record<string, [string, string]>;
  }[] = [
    {
      name: "apps are rows in name order, environments columns in shipmate.yaml order; absent apps have no cell",
      staging: { web: overlay("ghcr.io/acme/web", "1.1.0"), api: overlay("ghcr.io/acme/api", "2.0.0") },
      production: { web: overlay("ghcr.io/acme/web", "1.0.0") },
      want: { api: ["2.0.0||", "-"], web: ["1.1.0||", "1.0.0||"] },
    },
    {
      name: "a digest is shown short beside the tag",
      staging: { web: overlay("ghcr.io/acme/web", "1.1.0", DIGEST) },
      production: {},
      want: { web: [`1.1.0@${"a".repeat(12)}||`, "-"] },
    },
    {
      name: "the cluster's Deployment of an app's Kustomization fills the cell; a differing tag is drifted",
      staging: { web: overlay("ghcr.io/acme/web", "1.1.0") },
      production: { web: overlay("ghcr.io/acme/web", "1.0.0") },
      cluster: snapshot({
        Kustomization: [
          ks("staging-web", "./apps/staging/web", { deployments: ["web/web"] }),
          ks("production", "./apps/production", { deployments: ["prod/web"] }),
        ],
        Deployment: [
          deploy("web", "web", "ghcr.io/acme/web:1.1.0"),
          deploy("prod", "web", "ghcr.io/acme/web:0.9.0"),
        ],
      }),
      want: { web: ["1.1.0|1.1.0|", "1.0.0|0.9.0|drifted"] },
    },
    {
      name: "a Kustomization that is not Ready marks its cells failing",
      staging: { web: overlay("ghcr.io/acme/web", "1.1.0") },
      production: {},
      cluster: snapshot({
        Kustomization: [ks("staging", "apps/staging/", { ready: "False", reason: "BuildFailed" })],
      }),
      want: { web: ["1.1.0||failing", "-"] },
    },
    {
      name: "a newer tag allowed by the environment's policy marks the cell behind",
      staging: { web: overlay("ghcr.io/acme/web", "1.1.0") },
      production: { web: overlay("ghcr.io/acme/web", "1.0.0") },
      scanTag: "1.2.0",
      want: { web: ["1.1.0||behind", "1.0.0||"] },
    },
    {
      name: "an open promotion request into the environment marks the apps it carries pending",
      staging: { web: overlay("ghcr.io/acme/web", "1.1.0"), api: overlay("ghcr.io/acme/api", "2.0.0") },
      production: { web: overlay("ghcr.io/acme/web", "1.0.0"), api: overlay("ghcr.io/acme/api", "2.0.0") },
      requests: [
        {
          number: 7,
          url: "http://forge/pulls/7",
          branch: "shipmate/promote-production",
          base: "main",
          title: "Promote",
          body: "",
          state: "open",
          labels: [],
          meta: {
            v: 1,
            fingerprint: "x",
            changes: [],
            promotion: { from: "staging", to: "production", revision: REV, apps: ["web"] },
          },
        },
      ],
      want: { api: ["2.0.0||", "2.0.0||"], web: ["1.1.0||", "1.0.0||pending"] },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const view = buildView({
        fleet,
        revision: REV,
        trees: trees(c.staging, c.production),
        ...(c.cluster ? { cluster: c.cluster } : {}),
        ...(c.scanTag
          ? {
              scan: {
                at: now.toISOString(),
                requests: 1,
                policies: [
                  {
                    id: "apps:web",
                    env: "staging",
                    image: "ghcr.io/acme/web",
                    strategy: "semver",
                    tag: c.scanTag,
                  },
                ],
              },
            }
          : {}),
        ...(c.requests ? { requests: c.requests } : {}),
        now,
      });
      expect(view.environments).toEqual(["staging", "production"]);
      const got = Object.fromEntries(
        view.rows.map((r) => [
          r.app,
          r.cells.map((cell) =>
            cell
              ? `${cell.git.map(shortVersion).join(",")}|${(cell.cluster ?? []).map(shortVersion).join(",")}|${cell.marks.join(",")}`
              : "-",
          ),
        ]),
      );
      expect(got).toEqual(c.want);
    });
});

describe("promotions", () => {
  const staging = { web: overlay("ghcr.io/acme/web", "1.1.0") };
  const production = { web: overlay("ghcr.io/acme/web", "1.0.0") };
  const cases: {
    name: string;
    cluster?: ClusterSnapshot;
    changedAt?: Date;
    want: { state: string; gates: [string, string][] };
  }[] = [
    {
      name: "health from the source's Kustomizations at the revision, soak from git: both pass",
      cluster: snapshot({ Kustomization: [ks("staging", "./apps/staging", { rev: `main@sha1:${REV}` })] }),
      changedAt: new Date(now.getTime() - 2 * 3600_000),
      want: {
        state: "passed",
        gates: [
          ["health", "passed"],
          ["soak", "passed"],
        ],
      },
    },
    {
      name: "a source not Ready fails health; a recent change waits for soak",
      cluster: snapshot({
        Kustomization: [ks("staging", "./apps/staging", { ready: "False", rev: `main@sha1:${REV}` })],
      }),
      changedAt: new Date(now.getTime() - 10 * 60_000),
      want: {
        state: "failed",
        gates: [
          ["health", "failed"],
          ["soak", "waiting"],
        ],
      },
    },
    {
      name: "healthy at another revision waits",
      cluster: snapshot({
        Kustomization: [ks("staging", "./apps/staging", { rev: "main@sha1:ffffffffffff" })],
      }),
      changedAt: new Date(now.getTime() - 2 * 3600_000),
      want: {
        state: "waiting",
        gates: [
          ["health", "waiting"],
          ["soak", "passed"],
        ],
      },
    },
    {
      name: "no cluster and no history: the gates say they cannot tell",
      want: {
        state: "failed",
        gates: [
          ["health", "failed"],
          ["soak", "failed"],
        ],
      },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const view = buildView({
        fleet,
        revision: REV,
        trees: trees(staging, production),
        ...(c.cluster ? { cluster: c.cluster } : {}),
        ...(c.changedAt ? { changedAt: new Map([["staging", c.changedAt]]) } : {}),
        now,
      });
      const [p] = view.promotions;
      expect(p?.changes).toEqual([{ app: "web", image: "ghcr.io/acme/web", from: "1.0.0", to: "1.1.0" }]);
      expect([p?.from, p?.to]).toEqual(["staging", "production"]);
      expect(p?.gateState).toBe(c.want.state);
      expect(p?.gates.map((g) => [g.gate, g.state])).toEqual(c.want.gates);
    });
});

describe("cluster rows", () => {
  it("reads Ready, reason, revision, suspension and inventory; maps Kustomizations to environments", () => {
    const view = buildView({
      fleet,
      revision: REV,
      trees: trees({}, {}),
      cluster: {
        connected: false,
        error: "connect ECONNREFUSED",
        objects: {
          Kustomization: [ks("staging", "./apps/staging", { suspend: true, deployments: ["a/b"] })],
          GitRepository: [
            {
              metadata: { namespace: "shipmate-system", name: "fleet" },
              spec: {},
              status: { artifact: { revision: "main@sha1:abc" }, conditions: [] },
            },
          ],
        },
      },
      now,
    });
    expect(view.cluster?.connected).toBe(false);
    expect(view.cluster?.error).toBe("connect ECONNREFUSED");
    expect(
      view.cluster?.rows.map((r) => [r.kind, r.name, r.ready, r.revision, r.suspended, r.inventory, r.env]),
    ).toEqual([
      ["GitRepository", "fleet", "Unknown", "main@sha1:abc", false, undefined, undefined],
      ["Kustomization", "staging", "True", "main@sha1:1234567890abcdef", true, 1, "staging"],
    ]);
  });
});

describe("teams", () => {
  it("owners come from the scaffold manifest; an app whose team is not listed has none", () => {
    expect([
      ...ownersOf({
        teams: ["pay", "shop"],
        apps: [
          { name: "web", team: "shop", image: "x" },
          { name: "ledger", team: "pay", image: "x" },
          { name: "orphan", team: "gone", image: "x" },
          { name: "tool", image: "x" },
        ],
      }),
    ]).toEqual([
      ["web", "shop"],
      ["ledger", "pay"],
    ]);
  });

  it("rows carry their team and the view lists the teams once, sorted", () => {
    const view = buildView({
      fleet,
      revision: REV,
      trees: trees({ web: overlay("ghcr.io/acme/web", "1"), api: overlay("ghcr.io/acme/api", "1") }, {}),
      teams: new Map([
        ["web", "shop"],
        ["api", "core"],
        ["gone", "shop"],
      ]),
      now,
    });
    expect(view.teams).toEqual(["core", "shop"]);
    expect(view.rows.map((r) => [r.app, r.team])).toEqual([
      ["api", "core"],
      ["web", "shop"],
    ]);
  });

  const cases: {
    name: string;
    row: { app: string; team?: string };
    q: string;
    team: string;
    want: boolean;
  }[] = [
    { name: "no filter: every row", row: { app: "web" }, q: "", team: "", want: true },
    { name: "name: a part, any case", row: { app: "Web-Shop" }, q: "shop", team: "", want: true },
    { name: "name: no match", row: { app: "web" }, q: "api", team: "", want: false },
    { name: "team: its own", row: { app: "web", team: "shop" }, q: "", team: "shop", want: true },
    { name: "team: another's", row: { app: "web", team: "pay" }, q: "", team: "shop", want: false },
    { name: "team: an app without one is not in any", row: { app: "web" }, q: "", team: "shop", want: false },
    { name: "team and name together", row: { app: "web", team: "shop" }, q: "we", team: "shop", want: true },
    { name: "team right, name wrong", row: { app: "web", team: "shop" }, q: "x", team: "shop", want: false },
  ];
  for (const c of cases)
    it(`filter: ${c.name}`, () => expect(matchesFilter(c.row, c.q, c.team)).toBe(c.want));
});

describe("policies", () => {
  const view = buildView({
    fleet,
    revision: REV,
    trees: trees({}, {}),
    scan: {
      at: now.toISOString(),
      requests: 5,
      policies: [
        {
          id: "apps:web",
          env: "staging",
          image: "127.0.0.1:5000/acme/web",
          strategy: "semver ^1",
          tag: "1.2.0",
          requests: 4,
        },
        {
          id: "apps:web-next",
          env: "staging",
          image: "127.0.0.1:5000/acme/web",
          strategy: "semver ^9",
          reason: 'no tag of 127.0.0.1:5000/acme/web matches semver range "^9"',
          requests: 4,
        },
        {
          id: "apps:api",
          env: "production",
          image: "ghcr.io/acme/api",
          strategy: "digest of latest",
          tag: "latest",
          digest: DIGEST,
          requests: 1,
        },
        { id: "apps:old", image: "ghcr.io/acme/old", strategy: "semver ^1", reason: "not scanned" },
      ],
    },
    now,
  });
  const cases: {
    id: string;
    want: { selected?: string; reason?: string; cost?: { requests: number; sharedBy: number } };
  }[] = [
    { id: "apps:web", want: { selected: "1.2.0", cost: { requests: 4, sharedBy: 2 } } },
    {
      id: "apps:web-next",
      want: {
        reason: 'no tag of 127.0.0.1:5000/acme/web matches semver range "^9"',
        cost: { requests: 4, sharedBy: 2 },
      },
    },
    { id: "apps:api", want: { selected: `latest@${"a".repeat(12)}`, cost: { requests: 1, sharedBy: 1 } } },
    { id: "apps:old", want: { reason: "not scanned" } },
  ];
  for (const c of cases)
    it(`${c.id}: selection or why none, and the requests its repository cost`, () => {
      const row = view.policies.find((r) => r.id === c.id)!;
      expect({
        ...(row.selected ? { selected: shortVersion(row.selected) } : {}),
        ...(row.reason ? { reason: row.reason } : {}),
        ...(row.cost ? { cost: row.cost } : {}),
      }).toEqual(c.want);
    });

  it("the page says why nothing was selected and what each scan cost", () => {
    const html = renderToString(
      pageComponent(serverH)({ base: "/dashboard", route: { page: "policies" }, view, canAct: false }),
    );
    expect(html).toContain(
      '<td class="unselected"><strong>Nothing selected</strong>: no tag of 127.0.0.1:5000/acme/web matches semver range &#34;^9&#34;</td>',
    );
    expect(html).toContain('<td class="cost">4 (one listing for 2 policies)</td>');
    expect(html).toContain('<td class="cost">1</td>');
  });

  it("a newest tag of a registry with a port marks the cell behind (the port is not a tag)", () => {
    const v = buildView({
      fleet,
      revision: REV,
      trees: trees({ web: overlay("127.0.0.1:5000/acme/web", "1.1.0") }, {}),
      scan: {
        at: now.toISOString(),
        requests: 1,
        policies: [
          { id: "a:w", env: "staging", image: "127.0.0.1:5000/acme/web", strategy: "semver", tag: "1.2.0" },
        ],
      },
      now,
    });
    expect(v.rows[0]?.cells[0]?.marks).toEqual(["behind"]);
  });
});

describe("events", () => {
  const ev = (name: string, involved: string, time: string, reason = "Progressing"): KubeObject =>
    ({
      metadata: { namespace: "shipmate-system", name },
      involvedObject: {
        kind: involved.split("/")[0],
        namespace: "shipmate-system",
        name: involved.split("/")[1],
      },
      type: reason === "BuildFailed" ? "Warning" : "Normal",
      reason,
      message: `${reason} of ${involved}`,
      time,
      count: 1,
    }) as KubeObject;
  const objects = [
    ev("a", "Kustomization/web", "2026-01-01T10:00:00Z"),
    ev("b", "Kustomization/jobs", "2026-01-01T12:00:00Z", "BuildFailed"),
    ev("c", "HelmRelease/db", "2026-01-01T11:00:00Z"),
    ev("d", "Kustomization/web", "2026-01-01T12:00:00Z"),
  ];

  it("newest first; equal times by the object's name", () => {
    expect(eventRows(objects).map((e) => `${e.time.slice(11, 13)} ${e.kind}/${e.name} ${e.type}`)).toEqual([
      "12 Kustomization/jobs Warning",
      "12 Kustomization/web Normal",
      "11 HelmRelease/db Normal",
      "10 Kustomization/web Normal",
    ]);
  });

  const view = buildView({
    fleet,
    revision: REV,
    trees: trees({}, {}),
    cluster: snapshot({ Event: objects }),
    now,
  });
  const cases: { name: string; route: Parameters<typeof pageView>[1]; want: string[] }[] = [
    {
      name: "the cluster page: every object's events",
      route: { page: "cluster" },
      want: [
        "BuildFailed of Kustomization/jobs",
        "Progressing of Kustomization/web",
        "Progressing of HelmRelease/db",
        "Progressing of Kustomization/web",
      ],
    },
    {
      name: "one object's events",
      route: { page: "cluster", object: "Kustomization/shipmate-system/web" },
      want: ["Progressing of Kustomization/web", "Progressing of Kustomization/web"],
    },
    {
      name: "an object without events",
      route: { page: "cluster", object: "HelmRelease/shipmate-system/web" },
      want: [],
    },
    { name: "other pages carry none", route: { page: "policies" }, want: [] },
  ];
  for (const c of cases)
    it(`page props: ${c.name}`, () =>
      expect(pageView(view, c.route).view.cluster?.events.map((e) => e.message)).toEqual(c.want));

  it("at most 50 are sent", () => {
    const many = Array.from({ length: 80 }, (_, i) =>
      ev(`e${i}`, "Kustomization/web", `2026-01-01T10:${String(i % 60).padStart(2, "0")}:00Z`),
    );
    const v = buildView({
      fleet,
      revision: REV,
      trees: trees({}, {}),
      cluster: snapshot({ Event: many }),
      now,
    });
    expect(pageView(v, { page: "cluster" }).view.cluster?.events).toHaveLength(50);
  });
});
