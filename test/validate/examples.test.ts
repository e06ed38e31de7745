/**
 * `validate` tells the truth on repositories shaped like Flux's public
 * examples (our own minimal files in their layouts): the Flux 2.7 monorepo
 * with an ArtifactGenerator and ExternalArtifact sources
 * (flux2-kustomize-helm-example), a platform repository with tenants
 * (flux2-multi-tenancy) and a hub reconciling spokes with no flux-system
 * folder (flux2-hub-spoke-example). Zero errors; only kinds whose CRDs
 * charts install are warnings.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { validateTree } from "../../src/validate/validate.ts";
import { runCli } from "../helpers/cli.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}/`, import.meta.url).pathname;
const made: string[] = [];
afterAll(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

/** A copy of a fixture with files rewritten (a function) or removed (null). */
async function copyOf(
  name: string,
  edits: Record<string, ((text: string) => string) | null>,
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "shipmate-examples-"));
  made.push(dir);
  await cp(fixture(name), dir, { recursive: true });
  for (const [file, edit] of Object.entries(edits)) {
    const path = join(dir, file);
    if (edit === null) await rm(path);
    else {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, edit(await readFile(path, "utf8").catch(() => "")));
    }
  }
  return dir;
}

const replace = (from: string, to: string) => (text: string) => {
  if (!text.includes(from)) throw new Error(`fixture does not contain ${from}`);
  return text.replace(from, to);
};
const lines = (ps: { file: string; line?: number; message: string }[]) =>
  ps.map((p) => `${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`);

describe("validate: repositories shaped like Flux's examples have no false errors", () => {
  it.each([
    [
      "kustomize-helm",
      [
        "infrastructure/configs/cluster-issuers.yaml:2: no CRD in this tree defines ClusterIssuer cert-manager.io/v1, so it is not checked (a chart or controller may install it) (2 objects)",
      ],
    ],
    [
      "multi-tenancy",
      [
        "infrastructure/kyverno-policies/tenant-sources.yaml:2: no CRD in this tree defines ClusterPolicy kyverno.io/v1, so it is not checked (a chart or controller may install it)",
      ],
    ],
    ["hub-spoke", []],
  ])("%s: no problem; kinds charts install are warnings", async (name, warnings) => {
    const report = await validateTree(fixture(name));
    expect(lines(report.problems)).toEqual([]);
    expect(lines(report.warnings)).toEqual(warnings);
    expect(report.stats.builds).toBeGreaterThan(1);
  });
});

describe("validate: the rules that make those repositories pass", () => {
  it("the fleet's own sync GitRepository counts as defined (bootstrap creates it); any other missing source does not", async () => {
    const dir = await copyOf("hub-spoke", {
      "hub/staging.yaml": replace(
        "  path: ./clusters/staging/apps\n  sourceRef:\n    kind: GitRepository\n    name: flux-system",
        "  path: ./clusters/staging/apps\n  sourceRef:\n    kind: GitRepository\n    name: fleet",
      ),
    });
    expect(lines((await validateTree(dir)).problems)).toEqual([
      'hub/staging.yaml:67: Kustomization/apps-sync: sourceRef GitRepository "flux-system/fleet" is not defined in this tree',
    ]);
  });

  it("an ArtifactGenerator defines its ExternalArtifacts; a Kustomization naming one it does not make is an error", async () => {
    const dir = await copyOf("kustomize-helm", {
      "clusters/staging/apps.yaml": replace("    name: apps", "    name: applications"),
    });
    expect(lines((await validateTree(dir)).problems)).toEqual([
      'clusters/staging/apps.yaml:12: Kustomization/apps: sourceRef ExternalArtifact "flux-system/applications" is not defined in this tree',
    ]);
  });

  it("an ArtifactGenerator's sources must exist", async () => {
    const dir = await copyOf("kustomize-helm", {
      "clusters/production/artifacts.yaml": replace(
        "      kind: GitRepository\n      name: flux-system",
        "      kind: GitRepository\n      name: monorepo",
      ),
    });
    expect(lines((await validateTree(dir)).problems)).toEqual([
      'clusters/production/artifacts.yaml:11: ArtifactGenerator/fleet: sources GitRepository "flux-system/monorepo" is not defined in this tree',
    ]);
  });

  it(".sourceignore is honoured: without it, the files it leaves out of the artifact are read and fail", async () => {
    const dir = await copyOf("kustomize-helm", { ".sourceignore": null });
    expect(lines((await validateTree(dir)).problems)).toEqual([
      "scripts/check.yaml:5: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
    ]);
    const tenants = await copyOf("multi-tenancy", { ".sourceignore": null });
    expect(lines((await validateTree(tenants)).problems)).toEqual([
      'docs/tenant-repository/base/release.yaml:13: HelmRelease/podinfo: sourceRef HelmRepository "podinfo" is not defined in this tree',
    ]);
  });

  it("the sync GitRepository's spec.ignore is honoured too, when every cluster's says the same", async () => {
    const ignore = (t: string) =>
      t.replace("  interval: 1m0s\n", "  interval: 1m0s\n  ignore: |\n    scripts/\n");
    const both = await copyOf("kustomize-helm", {
      ".sourceignore": null,
      "clusters/staging/flux-system/gotk-sync.yaml": ignore,
      "clusters/production/flux-system/gotk-sync.yaml": ignore,
    });
    expect(lines((await validateTree(both)).problems)).toEqual([]);
    const one = await copyOf("kustomize-helm", {
      ".sourceignore": null,
      "clusters/staging/flux-system/gotk-sync.yaml": ignore,
    });
    expect(lines((await validateTree(one)).problems)).toEqual([
      "scripts/check.yaml:5: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
    ]);
  });

  it("the sync GitRepository's sparseCheckout is honoured: only its directories are in the artifact", async () => {
    const sparse = (dirs: string) => (t: string) =>
      t.replace("  interval: 1m0s\n", `  interval: 1m0s\n  sparseCheckout: [${dirs}]\n`);
    // scripts/ is outside the checkout, so its broken YAML is not Flux's concern.
    const both = await copyOf("kustomize-helm", {
      ".sourceignore": null,
      "clusters/staging/flux-system/gotk-sync.yaml": sparse("apps, ./clusters, infrastructure/"),
      "clusters/production/flux-system/gotk-sync.yaml": sparse("apps, ./clusters, infrastructure/"),
    });
    expect(lines((await validateTree(both)).problems)).toEqual([]);
    // A file a kustomization uses outside the sparse directories: Flux's build will not find it.
    const narrow = await copyOf("kustomize-helm", {
      "clusters/staging/flux-system/gotk-sync.yaml": sparse(
        "apps/base, apps/staging, clusters, infrastructure",
      ),
      "clusters/production/flux-system/gotk-sync.yaml": sparse(
        "apps/base, apps/staging, clusters, infrastructure",
      ),
      "apps/staging/kustomization.yaml": (t) =>
        t.replace("path: podinfo-values.yaml", "path: ../production/podinfo-values.yaml"),
    });
    expect(lines((await validateTree(narrow)).problems)).toContain(
      "apps/staging/kustomization.yaml: ../production/podinfo-values.yaml is outside the sync GitRepository's sparseCheckout (apps/base, apps/staging, clusters, infrastructure), so Flux's build will not find it",
    );
    // Clusters that disagree: no single artifact to judge by, the whole tree is read.
    const one = await copyOf("kustomize-helm", {
      ".sourceignore": null,
      "clusters/staging/flux-system/gotk-sync.yaml": sparse("apps, clusters, infrastructure"),
    });
    expect(lines((await validateTree(one)).problems)).toEqual([
      "scripts/check.yaml:5: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
    ]);
  });

  it("a kustomization using a file the artifact leaves out is an error (Flux's build will not find it)", async () => {
    const dir = await copyOf("kustomize-helm", {
      ".sourceignore": (t) => `${t}podinfo-values.yaml\n`,
    });
    expect(lines((await validateTree(dir)).problems)).toEqual([
      "apps/production/kustomization.yaml: podinfo-values.yaml is excluded from Flux's source artifact (.sourceignore or Flux's default exclusions), so Flux's build will not find it",
      "apps/staging/kustomization.yaml: podinfo-values.yaml is excluded from Flux's source artifact (.sourceignore or Flux's default exclusions), so Flux's build will not find it",
    ]);
  });

  it("markers name policies by the namespace scan and update give them (kustomize's namespace: first)", async () => {
    const policy =
      "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: web\nspec:\n  image: example.com/web\n  interval: 5m\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: web\nspec:\n  imageRepositoryRef:\n    name: web\n  policy:\n    semver:\n      range: '>=1.0.0'\n";
    const dir = await copyOf("hub-spoke", {
      "update/kustomization.yaml": () =>
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: apps-update\nresources:\n  - web.yaml\n",
      "update/web.yaml": () => policy,
      "update/marked.yaml": () =>
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\ndata:\n  a: "x:1" # {"$imagepolicy": "apps-update:web:tag"}\n  b: "x:1" # {"$imagepolicy": "flux-system:web:tag"}\n',
    });
    expect(lines((await validateTree(dir)).problems)).toEqual([
      "update/marked.yaml:1: not referenced by update/kustomization.yaml, so never built or applied",
      'update/marked.yaml:7: marker names image policy "flux-system:web", which is not defined in this tree',
    ]);
  });

  it("a kind no CRD defines is a warning; a CRD in the tree teaches it, and then it is checked", async () => {
    const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clusterissuers.cert-manager.io
spec:
  group: cert-manager.io
  names: { kind: ClusterIssuer, plural: clusterissuers }
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                ca: { type: object, properties: { secretName: { type: string } } }
`;
    const dir = await copyOf("kustomize-helm", {
      "infrastructure/controllers/cert-manager-crds.yaml": () => crd,
      "infrastructure/controllers/kustomization.yaml": (t) => `${t}  - cert-manager-crds.yaml\n`,
    });
    const report = await validateTree(dir);
    expect(lines(report.warnings)).toEqual([]);
    expect(lines(report.problems)).toEqual([
      'infrastructure/configs/cluster-issuers.yaml:7: ClusterIssuer/letsencrypt: spec: unknown field "acme" (as built from infrastructure/configs)',
      'infrastructure/configs/cluster-issuers.yaml:22: ClusterIssuer/letsencrypt-production: spec: unknown field "acme" (as built from infrastructure/configs)',
    ]);
  });
});

describe("shipmate validate (CLI): warnings", () => {
  it("prints one warning line per unchecked kind and still exits 0", async () => {
    const r = await runCli(["validate", "."], { cwd: fixture("multi-tenancy") });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual([
      "infrastructure/kyverno-policies/tenant-sources.yaml:2: warning: no CRD in this tree defines ClusterPolicy kyverno.io/v1, so it is not checked (a chart or controller may install it)",
    ]);
    expect(r.stderr).toMatch(/^ok, 1 warning\(s\): /);
  });

  it("--json carries the warnings apart from the problems", async () => {
    const r = await runCli(["validate", fixture("multi-tenancy"), "--json"]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as { ok: boolean; problems: unknown[]; warnings: { file: string }[] };
    expect(json.ok).toBe(true);
    expect(json.problems).toEqual([]);
    expect(json.warnings.map((w) => w.file)).toEqual(["infrastructure/kyverno-policies/tenant-sources.yaml"]);
  });
});
