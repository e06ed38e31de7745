import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadFleet } from "../../src/config/fleet.ts";
import { loadPolicyConfig } from "../../src/config/index.ts";
import { buildModel, normalize } from "../../src/scaffold/model.ts";
import { renderFleet } from "../../src/scaffold/render.ts";
import { init } from "../../src/scaffold/scaffold.ts";
import { validateTree } from "../../src/validate/validate.ts";
import { listFiles, tempDirs } from "./helpers.ts";

const tmp = tempDirs();
const ENVS: Record<number, string[]> = {
  1: ["production"],
  2: ["staging", "production"],
  5: ["dev", "qa", "staging", "canary", "production"],
};
const TEAMS = {
  "without teams": { teams: [] as string[], apps: ["web", "api"] },
  "with teams": { teams: ["payments", "search"], apps: ["web@payments", "api@search", "worker"] },
};
const LAYOUTS = [
  ["monorepo", "kustomize"],
  ["repo-per-env", "kustomize"],
  ["repo-per-team", "kustomize"],
  ["repo-per-app", "kustomize"],
  ["repo-per-app", "helm"],
  ["repo-per-app", "manifests"],
] as const;

const cases = LAYOUTS.flatMap(([layout, appSource]) =>
  [1, 2, 5].flatMap((n) =>
    Object.entries(TEAMS).map(([label, t]) => ({ layout, appSource, n, label, ...t })),
  ),
);

describe("every scaffolded layout passes validate", () => {
  it.each(cases)(
    "$layout ($appSource), $n environment(s), $label",
    async ({ layout, appSource, n, teams, apps }) => {
      const out = join(await tmp(), "fleet");
      const result = await init({ layout, appSource, out, envs: ENVS[n], teams, apps, noGit: true });
      const report = await validateTree(out);
      expect(report.problems).toEqual([]);
      expect(report.stats.builds).toBeGreaterThan(0);
      expect(report.stats.markers).toBeGreaterThan(0);

      // Every repository's shipmate.yaml and image policies load with shipmate's own loaders.
      for (const repo of result.repos) {
        const fleet = await loadFleet(repo.path);
        // An app repository of plain manifests changes only the first environment; later ones follow its tags.
        const tagPromoted = appSource === "manifests" && repo.dir !== "fleet";
        expect(fleet.spec.environments.map((e) => e.name)).toEqual(
          tagPromoted ? ENVS[n]?.slice(0, 1) : ENVS[n],
        );
        for (const env of fleet.spec.environments) {
          if (env.repository && env.repository.url !== fleet.spec.repository?.url) continue;
          const config = await loadPolicyConfig(join(repo.path, env.policies ?? env.path));
          expect(config.policies.length).toBeGreaterThan(0);
          expect(config.policies.every((p) => p.id.endsWith(`-${env.name}`))).toBe(true);
          // The first environment is pushed to the branch; later ones go through a pull request branch.
          const push = config.automations[0]?.push?.branch;
          expect(push).toBe(env.mode === "push" ? "main" : `shipmate/${env.name}`);
        }
      }
    },
    60_000,
  );
});

describe("each repository of a multi-repository fleet validates on its own", () => {
  it.each(["repo-per-env", "repo-per-team", "repo-per-app"])(
    "%s",
    async (layout) => {
      const out = join(await tmp(), "fleet");
      const result = await init({
        layout,
        out,
        teams: ["payments"],
        apps: ["web@payments", "api"],
        noGit: true,
      });
      for (const repo of result.repos)
        expect([repo.dir, (await validateTree(repo.path)).problems]).toEqual([repo.dir, []]);
    },
    60_000,
  );
});

describe("scaffold output", () => {
  it("is deterministic: the same input renders byte-identical files in the same order", () => {
    const spec = normalize({
      layout: "repo-per-team",
      version: "0.1.0",
      teams: ["beta", "alpha"],
      apps: ["web@beta", "api@alpha"],
    });
    const one = renderFleet(buildModel(spec));
    const two = renderFleet(buildModel(spec));
    expect(two).toEqual(one);
    const keys = one.map((f) => [f.repo, f.path].join("\0"));
    expect(keys).toEqual([...keys].sort());
  });

  it("monorepo: apps/base, apps/<env>, infrastructure base and overlays, clusters with the agent, policies", async () => {
    const out = join(await tmp(), "fleet");
    await init({ layout: "monorepo", out, apps: ["web"], noGit: true });
    const files = await listFiles(out);
    for (const f of [
      "apps/base/web/deployment.yaml",
      "apps/staging/web/kustomization.yaml",
      "apps/production/web/kustomization.yaml",
      "infrastructure/base/controllers/kustomization.yaml",
      "infrastructure/production/configs/kustomization.yaml",
      "clusters/staging/infrastructure.yaml",
      "clusters/staging/apps.yaml",
      "clusters/production/shipmate-system/deployment.yaml",
      "clusters/production/shipmate-system/sync.yaml",
      "policies/staging/web.yaml",
      "policies/production/automation.yaml",
      ".github/workflows/shipmate.yaml",
      "shipmate.yaml",
      "README.md",
      ".shipmate/scaffold.json",
    ])
      expect(files).toContain(f);
    const overlay = await readFile(join(out, "apps/production/web/kustomization.yaml"), "utf8");
    expect(overlay).toContain('newTag: "1.0.0" # {"$imagepolicy": "shipmate-system:web-production:tag"}');
    const apps = await readFile(join(out, "clusters/staging/apps.yaml"), "utf8");
    expect(apps).toMatch(/dependsOn:\n {4}- name: infra-configs/);
    expect(apps).toContain("prune: true");
    const agent = await readFile(join(out, "clusters/production/shipmate-system/deployment.yaml"), "utf8");
    expect(agent).toContain("image: ghcr.io/shipmate-dev/shipmate:");
    expect(agent).toContain("- --path=clusters/production");
    expect(agent).toContain('- "--repo=https://github.com/example/fleet.git"');
    const workflow = await readFile(join(out, ".github/workflows/shipmate.yaml"), "utf8");
    expect(workflow).toContain("uses: shipmate-dev/shipmate@v1");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a JS template
    expect(workflow).toContain("policies: policies/${{ inputs.environment }}");
  });
});
