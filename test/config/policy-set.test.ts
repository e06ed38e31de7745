/**
 * The rules every front end shares (src/config/policy-set.ts, src/config/fleet.ts,
 * src/run/update.ts's plan): which policies a run covers, how each is delivered,
 * where a promotion comes from, which environment a file belongs to.
 */
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { environmentOfPath, parseFleet, promotionSource } from "../../src/config/fleet.ts";
import {
  coveredByScan,
  deliveryMode,
  loadRunPolicies,
  type PolicySource,
} from "../../src/config/policy-set.ts";
import { NoTargetEnvironmentError, type PromoteTarget, promotionTargets } from "../../src/run/promote.ts";
import { planUpdate } from "../../src/run/update.ts";
import { FLEET_YAML, fleetFiles, fluxPolicy } from "../helpers/fleet.ts";
import { tempDir, writeFiles } from "../infra/git.ts";

const IMAGE = "127.0.0.1:5000/team/app";
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tree(files: Record<string, string>): string {
  const dir = tempDir("shipmate-policy-set-");
  dirs.push(dir);
  writeFiles(dir, files);
  return dir;
}

const THREE = `apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata:
  name: fleet
spec:
  environments:
    - name: dev
      path: apps/dev
    - name: staging
      path: apps/staging
      mode: push
    - name: production
      path: apps/production
      mode: pull-request
      promoteFrom: dev
    - name: dr
      path: apps/dr
      repository: { url: "https://git.example.com/dr.git" }
`;

describe("coveredByScan: environments fed by promotion move by promotion, not by a scan", () => {
  it.each<[string, PolicySource, { promoteFrom?: string } | undefined, boolean]>([
    ["no shipmate.yaml (no environment): covered", { kind: "repo" }, undefined, true],
    ["an environment promoting from nothing: covered", { kind: "repo" }, {}, true],
    ["an environment with promoteFrom: not covered", { kind: "repo" }, { promoteFrom: "staging" }, false],
    [
      "a folder named by the caller (--policies, policies input): covered, promoteFrom or not",
      { kind: "dir", dir: "/x" },
      { promoteFrom: "staging" },
      true,
    ],
    [
      "a repository folder named by the caller (--path of serve): covered",
      { kind: "repo", path: "policies/production" },
      { promoteFrom: "staging" },
      true,
    ],
  ])("%s", (_rule, source, env, covered) => {
    expect(coveredByScan(source, env as never)).toBe(covered);
  });
});

describe("deliveryMode: one answer for every front end", () => {
  it.each<[string, Parameters<typeof deliveryMode>, string]>([
    ["nothing said anywhere: push", [{}, undefined, {}], "push"],
    ["the environment's mode", [{}, { mode: "pull-request" }, {}], "pull-request"],
    [
      "the policy's own mode wins over its environment's",
      [{ mode: "push" }, { mode: "pull-request" }, {}],
      "push",
    ],
    [
      "the run's fallback (Action mode input, serve --mode) wins over the environment's",
      [{}, { mode: "push" }, { fallback: "pull-request" }],
      "pull-request",
    ],
    [
      "the run's fallback does not override the policy's own mode",
      [{ mode: "push" }, undefined, { fallback: "pull-request" }],
      "push",
    ],
    [
      "`all` (CLI --pull-request) overrides the policy's own mode",
      [{ mode: "push" }, { mode: "push" }, { all: "pull-request" }],
      "pull-request",
    ],
    [
      "a policy the run does not know (a --set of another id): the fallback",
      [undefined, undefined, { fallback: "pull-request" }],
      "pull-request",
    ],
  ])("%s", (_rule, args, mode) => {
    expect(deliveryMode(...args)).toBe(mode);
  });
});

describe("promotionSource: promoteFrom, else the environment before", () => {
  const fleet = parseFleet(THREE);
  it.each([
    ["dev", undefined],
    ["staging", "dev"],
    ["production", "dev"],
    ["dr", "production"],
    ["nowhere", undefined],
  ])("%s ← %s", (to, from) => {
    expect(promotionSource(fleet, to)?.name).toBe(from);
  });
});

describe("promotionTargets: which environments a promotion run goes into", () => {
  const fleet = parseFleet(THREE);
  it.each<[string, PromoteTarget, { to: string; from?: string }[]]>([
    [
      "a named environment, source left to the promotion",
      { kind: "environment", to: "staging" },
      [{ to: "staging" }],
    ],
    [
      "a named environment and source",
      { kind: "environment", to: "staging", from: "dev" },
      [{ to: "staging", from: "dev" }],
    ],
    [
      "the environment keeping its policies in a folder",
      { kind: "policies-folder", path: "./apps/production/" },
      [{ to: "production" }],
    ],
    [
      "a change in dev's manifests: every environment promoting from dev",
      { kind: "changed", files: ["README.md", "apps/dev/app/deployment.yaml"] },
      [{ to: "production", from: "dev" }],
    ],
    [
      "a change in an environment nothing promotes from",
      { kind: "changed", files: ["apps/staging/x.yaml"] },
      [],
    ],
  ])("%s", (_name, target, want) => {
    expect(promotionTargets(fleet, target)).toEqual(want);
  });

  it("a change in a repository without shipmate.yaml promotes nothing", () => {
    expect(promotionTargets(undefined, { kind: "changed", files: ["apps/dev/a.yaml"] })).toEqual([]);
  });

  it.each<[string, ReturnType<typeof parseFleet> | undefined, string]>([
    [
      "no environment keeps its policies there",
      fleet,
      "no environment in shipmate.yaml keeps its policies in policies/qa",
    ],
    [
      "no shipmate.yaml",
      undefined,
      "no shipmate.yaml says which environment keeps its policies in policies/qa",
    ],
  ])("a policies folder with %s is a NoTargetEnvironmentError", (_name, f, message) => {
    const err = (() => {
      try {
        return promotionTargets(f, { kind: "policies-folder", path: "policies/qa" });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(NoTargetEnvironmentError);
    expect((err as Error).message).toBe(message);
  });
});

describe("environmentOfPath: the most specific folder wins; other repositories never match", () => {
  const fleet = parseFleet(`apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata: { name: f }
spec:
  environments:
    - { name: all, path: ".", policies: policies }
    - { name: staging, path: apps/staging, policies: policies/staging }
    - { name: dr, path: apps/dr, repository: { url: "https://example.com/dr.git" } }
`);
  it.each<[string, "policies" | "manifests", string | undefined]>([
    ["policies/staging/app.yaml", "policies", "staging"],
    ["policies/app.yaml", "policies", "all"],
    ["./policies/staging", "policies", "staging"],
    ["apps/staging/web/deployment.yaml", "manifests", "staging"],
    ["apps/staging-old/web.yaml", "manifests", "all"],
    ["apps/dr/web.yaml", "manifests", "all"],
  ])("%s (%s) → %s", (path, what, env) => {
    expect(environmentOfPath(fleet, path, what)?.name).toBe(env);
  });
});

describe("loadRunPolicies + planUpdate: the plan of a run", () => {
  it("with shipmate.yaml: every environment's policies are known, those promoted into are not scanned", async () => {
    const root = tree(fleetFiles(IMAGE));
    const set = await loadRunPolicies(root, { kind: "repo" });
    expect(set.known.map((p) => p.id).sort()).toEqual([
      "flux-system:app-production",
      "flux-system:app-staging",
    ]);
    const plan = planUpdate(set);
    expect(plan.policies.map((c) => [c.policy.id, c.mode])).toEqual([["flux-system:app-staging", "push"]]);
    expect(plan.watched).toEqual([IMAGE]);
    // The CLI's --pull-request asks for every change by request; the coverage stays the same.
    expect(
      planUpdate(set, { mode: { all: "pull-request" } }).policies.map((c) => [c.policy.id, c.mode]),
    ).toEqual([["flux-system:app-staging", "pull-request"]]);
  });

  it("a folder named by the caller covers a promoted environment, in its environment's mode", async () => {
    const root = tree(fleetFiles(IMAGE));
    const set = await loadRunPolicies(root, { kind: "dir", dir: `${root}/policies/production` });
    expect(planUpdate(set).policies.map((c) => [c.policy.id, c.mode])).toEqual([
      ["flux-system:app-production", "pull-request"],
    ]);
  });

  it("without shipmate.yaml: every policy of the tree, pushed", async () => {
    const root = tree({
      "a/app.yaml": fluxPolicy("a", IMAGE),
      "b/web.yaml": fluxPolicy("b", `${IMAGE}-web`),
    });
    const plan = planUpdate(await loadRunPolicies(root, { kind: "repo" }));
    expect(plan.policies.map((c) => [c.policy.id, c.mode])).toEqual([
      ["flux-system:a", "push"],
      ["flux-system:b", "push"],
    ]);
  });

  it.each<[string, Parameters<typeof planUpdate>[1], string[], string | undefined]>([
    [
      "scope: only policies watching a pushed image",
      { scope: { kind: "images", images: new Set([IMAGE]) } },
      ["flux-system:a"],
      undefined,
    ],
    [
      "scope of an image nobody watches: skipped, and says why",
      { scope: { kind: "images", images: new Set(["127.0.0.1:5000/other"]) } },
      [],
      "no policy watches 127.0.0.1:5000/other",
    ],
  ])("%s", async (_rule, opts, ids, skipped) => {
    const root = tree({
      "a/app.yaml": fluxPolicy("a", IMAGE),
      "b/web.yaml": fluxPolicy("b", `${IMAGE}-web`),
    });
    const plan = planUpdate(await loadRunPolicies(root, { kind: "repo" }), opts);
    expect(plan.policies.map((c) => c.policy.id)).toEqual(ids);
    expect(plan.skipped).toBe(skipped);
    expect(plan.skippedBecause).toBe(skipped ? "out-of-scope" : undefined);
  });

  it("a fleet whose only policies are promoted into: nothing to scan, said once", async () => {
    const files = fleetFiles(IMAGE);
    delete files["policies/staging/app.yaml"];
    const plan = planUpdate(await loadRunPolicies(tree(files), { kind: "repo" }));
    expect(plan.policies).toEqual([]);
    expect(plan.skipped).toBe("no image policies found");
    expect(plan.skippedBecause).toBe("no-policies");
  });

  it("suspended policies are not scanned nor watched", async () => {
    const suspended = fluxPolicy("a", IMAGE).replace("  interval: 5m\n", "  interval: 5m\n  suspend: true\n");
    const plan = planUpdate(await loadRunPolicies(tree({ "a.yaml": suspended }), { kind: "repo" }));
    expect(plan).toEqual({
      policies: [],
      watched: [],
      skipped: "every policy is suspended",
      skippedBecause: "suspended",
    });
  });

  it("FLEET_YAML is the fixture these rules are read against", () => {
    expect(parseFleet(FLEET_YAML).spec.environments.map((e) => [e.name, e.promoteFrom])).toEqual([
      ["staging", undefined],
      ["production", "staging"],
    ]);
  });
});
