/**
 * One policy namespace rule: the namespace a policy document has once its
 * folder is built (kustomize `namespace:`), else metadata.namespace, else the
 * default. Table-tested, then through the loader every front end uses, then
 * through the CLI: `scan` names such a policy `apps-update:…` and `update`
 * rewrites the `apps-update:…` markers.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePolicyConfig } from "../../src/config/load.ts";
import { kustomizeNamespaces, policyNamespace } from "../../src/config/namespace.ts";
import { runCli } from "../helpers/cli.ts";
import { seedCheckout } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";

describe("policy namespace: built namespace, else metadata.namespace, else the default", () => {
  it.each<[string, Parameters<typeof policyNamespace>[0], string]>([
    [
      "kustomize's namespace wins over metadata (kustomize overrides it)",
      { kustomize: "apps-update", metadata: "team", fallback: "flux-system" },
      "apps-update",
    ],
    [
      "kustomize's namespace when metadata has none",
      { kustomize: "apps-update", fallback: "flux-system" },
      "apps-update",
    ],
    [
      "metadata.namespace when no kustomization sets one",
      { metadata: "team", fallback: "flux-system" },
      "team",
    ],
    ["the default when neither does", { fallback: "flux-system" }, "flux-system"],
    ["an empty metadata.namespace is no namespace", { metadata: "", fallback: "flux-system" }, "flux-system"],
  ])("%s", (_rule, input, expected) => {
    expect(policyNamespace(input)).toBe(expected);
  });

  const k = (body: string) => `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n${body}`;
  it.each<[string, Record<string, string>, Record<string, string>]>([
    [
      "a file the kustomization of its folder lists takes its namespace",
      {
        "u/kustomization.yaml": k("namespace: apps-update\nresources: [policy.yaml]\n"),
        "u/policy.yaml": "",
      },
      { "u/policy.yaml": "apps-update" },
    ],
    [
      "a file no kustomization lists keeps its own",
      {
        "u/kustomization.yaml": k("namespace: apps-update\nresources: [a.yaml]\n"),
        "u/a.yaml": "",
        "u/b.yaml": "",
      },
      { "u/a.yaml": "apps-update" },
    ],
    [
      "a kustomization without namespace leaves it alone",
      { "u/kustomization.yaml": k("resources: [policy.yaml]\n"), "u/policy.yaml": "" },
      {},
    ],
    [
      "a folder included by an outer kustomization: the nearest namespace when the outer sets none",
      {
        "kustomization.yml": k("resources: [u]\n"),
        "u/kustomization.yaml": k("namespace: apps-update\nresources: [p.yaml]\n"),
        "u/p.yaml": "",
      },
      { "u/p.yaml": "apps-update" },
    ],
    [
      "an outer kustomization's namespace overrides the inner one, as kustomize's does",
      {
        "kustomization.yaml": k("namespace: outer\nresources: [./u/]\n"),
        "u/kustomization.yaml": k("namespace: inner\nresources: [p.yaml]\n"),
        "u/p.yaml": "",
      },
      { "u/p.yaml": "outer" },
    ],
    [
      "outer kustomizations that disagree leave the nearest namespace",
      {
        "a/kustomization.yaml": k("namespace: a\nresources: [../u]\n"),
        "b/kustomization.yaml": k("namespace: b\nresources: [../u]\n"),
        "u/kustomization.yaml": k("namespace: inner\nresources: [p.yaml]\n"),
        "u/p.yaml": "",
      },
      { "u/p.yaml": "inner" },
    ],
    [
      "components count as included",
      {
        "u/kustomization.yaml": k("namespace: apps-update\ncomponents: [../c]\n"),
        "c/kustomization.yaml": k("resources: [p.yaml]\n"),
        "c/p.yaml": "",
      },
      { "c/p.yaml": "apps-update" },
    ],
    [
      "a broken kustomization is ignored here (the build reports it)",
      { "u/kustomization.yaml": "namespace: [\n", "u/p.yaml": "" },
      {},
    ],
  ])("%s", (_rule, files, expected) => {
    const list = Object.entries(files).map(([path, text]) => ({ path: `/r/${path}`, text }));
    const got = Object.fromEntries([...kustomizeNamespaces(list)].map(([p, ns]) => [p.slice(3), ns]));
    expect(got).toEqual(expected);
  });

  it("the loader names policies, their repositories and automations by it", () => {
    const config = parsePolicyConfig([
      { path: "/r/u/kustomization.yaml", text: k("namespace: apps-update\nresources: [policy.yaml]\n") },
      {
        path: "/r/u/policy.yaml",
        text: `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: web}
spec: {image: example.com/web, interval: 5m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: web}
spec:
  imageRepositoryRef: {name: web}
  policy: {semver: {range: ">=1.0.0"}}
`,
      },
      {
        path: "/r/other/policy.yaml",
        text: "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: api}\nspec: {image: example.com/api, strategy: semver, range: '>=1'}\n",
      },
    ]);
    expect(config.policies.map((p) => p.id)).toEqual(["apps-update:web", "flux-system:api"]);
  });
});

describe("policy namespace through the CLI", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: "none" });
    await seedTags(reg, "team/web", ["1.0.0", "1.1.0"]);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  const fleet = (host: string) => ({
    "apps/update/kustomization.yaml":
      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: apps-update\nresources:\n  - web.yaml\n",
    "apps/update/web.yaml": `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: web
spec:
  image: ${host}/team/web
  interval: 5m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: web
spec:
  imageRepositoryRef:
    name: web
  policy:
    semver:
      range: ">=1.0.0"
`,
    "apps/web/deploy.yaml": `image: ${host}/team/web:1.0.0 # {"$imagepolicy": "apps-update:web"}\n`,
  });

  it("scan names the policy by its kustomize namespace; update rewrites that namespace's markers", async () => {
    const { work } = seedCheckout(fleet(reg.host));
    const scan = await runCli(["scan", "--policies", join(work, "apps/update"), "--no-cache", "--json"]);
    expect(scan.code, scan.stderr).toBe(0);
    expect(JSON.parse(scan.stdout)).toEqual([
      { policy: "apps-update:web", image: `${reg.host}/team/web`, tag: "1.1.0" },
    ]);
    const update = await runCli([
      "update",
      "--repo",
      work,
      "--policies",
      join(work, "apps/update"),
      "--json",
    ]);
    expect(update.code, update.stderr).toBe(0);
    expect(Object.keys(JSON.parse(update.stdout).files)).toEqual(["apps/web/deploy.yaml"]);
    expect(readFileSync(join(work, "apps/web/deploy.yaml"), "utf8")).toBe(
      `image: ${reg.host}/team/web:1.1.0 # {"$imagepolicy": "apps-update:web"}\n`,
    );
  });
});
