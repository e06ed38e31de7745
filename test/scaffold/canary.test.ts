/**
 * `init --canary` / `add app --canary`: the last environment's overlay of each
 * canary app holds a Flagger Canary, that environment's infrastructure
 * installs Flagger (HelmRelease from Flagger's HelmRepository) before the
 * apps, and the fleet validates against Flagger's CRD schemas, in every layout.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { add, init } from "../../src/scaffold/scaffold.ts";
import { validateTree } from "../../src/validate/validate.ts";
import { runCli } from "../helpers/cli.ts";
import { listFiles, tempDirs } from "./helpers.ts";

const tmp = tempDirs();

// biome-ignore lint/suspicious/noExplicitAny: assertions walk rendered manifests
type Doc = Record<string, any>;
const read = async (file: string): Promise<Doc> => parse(await readFile(file, "utf8"));
const readAll = async (file: string): Promise<Doc[]> =>
  parseAllDocuments(await readFile(file, "utf8")).map((d) => d.toJSON());

describe("scaffold: Flagger canaries for the last environment", () => {
  it.each([
    ["monorepo", ".", "apps/production/web", "infrastructure/production/controllers"],
    ["repo-per-env", "fleet-production", "apps/web", "infrastructure/controllers"],
    [
      "repo-per-team",
      "fleet-team-a",
      "apps/production/web",
      "../fleet/infrastructure/production/controllers",
    ],
    ["repo-per-app", "web", "deploy/production", "../fleet/infrastructure/production/controllers"],
  ])(
    "%s: the Canary sits in production's overlay, Flagger in its controllers",
    async (layout, repo, overlay, infra) => {
      const out = join(await tmp(), "fleet");
      await init({
        layout,
        out,
        apps: ["web"],
        canary: true,
        gitUrl: "https://git.example/org/fleet.git",
        noGit: true,
      });
      const root = join(out, repo);
      const files = await listFiles(out);
      // Only production has a Canary and Flagger; staging is untouched.
      expect(files.filter((f) => f.endsWith("canary.yaml"))).toEqual([join(repo, overlay, "canary.yaml")]);
      expect(files.filter((f) => f.endsWith("flagger.yaml"))).toEqual([join(repo, infra, "flagger.yaml")]);
      expect((await read(join(root, overlay, "kustomization.yaml"))).resources).toContain("canary.yaml");
      expect((await read(join(root, infra, "kustomization.yaml"))).resources).toContain("flagger.yaml");

      const c = await read(join(root, overlay, "canary.yaml"));
      expect(c.apiVersion).toBe("flagger.app/v1beta1");
      expect(c.spec.provider).toBe("kubernetes");
      expect(c.spec.targetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "web" });
      expect(c.spec.service).toEqual({ port: 80, targetPort: "http" });
      expect(c.spec.analysis).toMatchObject({ interval: "1m", threshold: 5, iterations: 10 });
      expect(c.spec.analysis.metrics.map((m: Doc) => m.name)).toEqual([
        "request-success-rate",
        "request-duration",
      ]);
      expect(c.spec.analysis.webhooks[0]).toMatchObject({ name: "load-test", type: "rollout" });

      const install = await readAll(join(root, infra, "flagger.yaml"));
      const release = install.find((d) => d.kind === "HelmRelease" && d.metadata.name === "flagger");
      expect(install.find((d) => d.kind === "HelmRepository")?.spec.url).toBe("https://flagger.app");
      expect(release?.spec.chart.spec).toMatchObject({ chart: "flagger", version: "1.36.1" });
      expect(release?.spec.values).toMatchObject({
        meshProvider: "kubernetes",
        prometheus: { install: true },
      });

      // The repository holding the Canary validates against Flagger's CRD schema (no warning: it is known).
      const checked = await validateTree(root);
      expect(checked.problems).toEqual([]);
      expect(checked.warnings.filter((w) => /Canary/.test(w.message))).toEqual([]);
    },
  );

  it("a weighted provider: stepWeight/maxWeight instead of iterations, the mesh's Prometheus", async () => {
    const out = join(await tmp(), "fleet");
    await init({
      layout: "monorepo",
      out,
      apps: ["web"],
      canary: true,
      canaryProvider: "istio",
      noGit: true,
    });
    const c = await read(join(out, "apps/production/web/canary.yaml"));
    expect(c.spec.provider).toBe("istio");
    expect(c.spec.analysis).toMatchObject({ maxWeight: 50, stepWeight: 10 });
    expect(c.spec.analysis.iterations).toBeUndefined();
    const release = (await readAll(join(out, "infrastructure/production/controllers/flagger.yaml")))[2];
    expect(release?.spec.values).toEqual({
      meshProvider: "istio",
      metricsServer: "http://prometheus.istio-system:9090",
    });
  });

  it("the infrastructure, holding Flagger, is a dependsOn of the apps", async () => {
    const out = join(await tmp(), "fleet");
    await init({ layout: "monorepo", out, canary: true, noGit: true });
    const apps = await read(join(out, "clusters/production/apps.yaml"));
    expect(apps.spec.dependsOn).toEqual([{ name: "infra-configs" }]);
    const infra = await readAll(join(out, "clusters/production/infrastructure.yaml"));
    expect(infra.map((d) => [d.metadata.name, d.spec.path, d.spec.wait])).toEqual([
      ["infra-controllers", "./infrastructure/production/controllers", true],
      ["infra-configs", "./infrastructure/production/configs", true],
    ]);
  });

  it("add app --canary: only that app gets a Canary, and Flagger arrives with the first one", async () => {
    const out = join(await tmp(), "fleet");
    await init({ layout: "monorepo", out, apps: ["web"], noGit: true });
    expect((await listFiles(out)).filter((f) => /canary|flagger/.test(f))).toEqual([]);
    const r = await runCli(["add", "app", "api", "--canary", "--repo", out, "--no-git"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`added ${join(out, "apps/production/api/canary.yaml")}`);
    expect(r.stdout).toContain(`added ${join(out, "infrastructure/production/controllers/flagger.yaml")}`);
    expect(r.stdout).toContain(
      `updated ${join(out, "infrastructure/production/controllers/kustomization.yaml")}`,
    );
    expect((await listFiles(out)).filter((f) => f.endsWith("canary.yaml"))).toEqual([
      "apps/production/api/canary.yaml",
    ]);
    // The choice is remembered: a later add keeps api a canary and web not.
    await add("app", "worker", { repo: out, noGit: true });
    expect((await listFiles(out)).filter((f) => f.endsWith("canary.yaml"))).toEqual([
      "apps/production/api/canary.yaml",
    ]);
    expect((await validateTree(out)).problems).toEqual([]);
  });

  it.each([
    [
      ["--canary-provider", "traefik", "--canary"],
      'unknown canary provider "traefik" (providers: kubernetes, nginx, istio, linkerd, gateway-api)',
    ],
    [["--canary-provider", "nginx"], "--canary-provider needs --canary (which apps roll out as canaries)"],
    [
      ["--canary", "--layout", "repo-per-app", "--app-source", "helm"],
      "--canary needs kustomize overlays to add the Canary to; --app-source helm has none",
    ],
  ])("bad input %j: one line, exit 2", async (args, message) => {
    const out = join(await tmp(), "fleet");
    const layout = args.includes("--layout") ? [] : ["--layout", "monorepo"];
    const r = await runCli(["init", ...layout, "--out", out, "--no-git", ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`shipmate init: ${message}`);
  });
});
