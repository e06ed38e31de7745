import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { validateTree } from "../../src/validate/validate.ts";
import { runCli } from "../helpers/cli.ts";

const FIXTURE = new URL("./fixtures/flux-repo/", import.meta.url).pathname;
const made: string[] = [];
afterAll(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

/** A copy of the valid Flux repository with one file rewritten. */
async function repoWith(edits: Record<string, (text: string) => string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "shipmate-validate-"));
  made.push(dir);
  await cp(FIXTURE, dir, { recursive: true });
  for (const [file, edit] of Object.entries(edits)) {
    const path = join(dir, file);
    const text = await readFile(path, "utf8").catch(() => "");
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, edit(text));
  }
  return dir;
}

const replace = (from: string, to: string) => (text: string) => {
  if (!text.includes(from)) throw new Error(`fixture does not contain ${from}`);
  return text.replace(from, to);
};

describe("validate: a Flux repository that shipmate did not scaffold", () => {
  it("is valid as written", async () => {
    const report = await validateTree(FIXTURE);
    expect(report.problems).toEqual([]);
    expect(report.stats).toMatchObject({ builds: 2, markers: 1, kustomizations: 3 });
    expect(report.stats.objects).toBeGreaterThanOrEqual(12);
  });

  it("builds with kubectl kustomize when no standalone kustomize is on PATH", async () => {
    const path = (process.env.PATH ?? "")
      .split(delimiter)
      .filter((d) => !existsSync(join(d, "kustomize")))
      .join(delimiter);
    const report = await validateTree(FIXTURE, { env: { ...process.env, PATH: path } });
    expect(report.stats.tool).toBe("kubectl kustomize");
    expect(report.problems).toEqual([]);
  });
});

describe("validate: one problem per mistake, with file and line", () => {
  it.each([
    [
      "a kustomization that does not build",
      {
        "apps/base/podinfo/kustomization.yaml": replace("  - service.yaml", "  - service.yaml\n  - hpa.yaml"),
      },
      [
        "apps/base/podinfo/kustomization.yaml: kustomize build apps/base/podinfo failed: apps/base/podinfo/hpa.yaml does not exist (also breaks apps/prod)",
      ],
    ],
    [
      "a schema problem behind a broken build is still found (the included kustomizations are built on their own)",
      {
        "apps/prod/kustomization.yaml": replace(
          "  - path: replicas.yaml",
          "  - path: replicas.yaml\n  - path: missing-patch.yaml",
        ),
        "apps/base/podinfo/deployment.yaml": replace("replicas: 2", "replicas: two"),
      },
      [
        "apps/base/podinfo/deployment.yaml:6: Deployment/podinfo: spec.replicas: must be integer (as built from apps/base/podinfo)",
        "apps/prod/kustomization.yaml: kustomize build apps/prod failed: apps/prod/missing-patch.yaml does not exist",
      ],
    ],
    [
      "a marker naming a policy that does not exist",
      { "apps/base/podinfo/deployment.yaml": replace("flux-system:podinfo", "flux-system:podinf0") },
      [
        'apps/base/podinfo/deployment.yaml:17: marker names image policy "flux-system:podinf0", which is not defined in this tree',
      ],
    ],
    [
      "a marker with an unknown suffix",
      { "apps/base/podinfo/deployment.yaml": replace("flux-system:podinfo", "flux-system:podinfo:version") },
      [
        'apps/base/podinfo/deployment.yaml:17: marker "flux-system:podinfo:version" has unknown suffix ":version" (known: :tag, :name, :digest)',
      ],
    ],
    [
      "a dependsOn naming no Kustomization",
      { "clusters/prod/apps.yaml": replace("- name: infrastructure", "- name: infra") },
      [
        'clusters/prod/apps.yaml:8: Kustomization/apps: dependsOn "flux-system/infra", which is not defined in this tree',
      ],
    ],
    [
      "a HelmRelease dependsOn naming no HelmRelease",
      {
        "infrastructure/ingress-nginx.yaml": replace(
          "  interval: 30m\n",
          "  interval: 30m\n  dependsOn:\n    - name: cert-manager\n      namespace: cert-manager\n",
        ),
      },
      [
        'infrastructure/ingress-nginx.yaml:23: HelmRelease/ingress-nginx: dependsOn "cert-manager/cert-manager", which is not defined in this tree',
      ],
    ],
    [
      "a Kustomization whose source is not defined",
      { "clusters/prod/apps.yaml": replace("    name: flux-system", "    name: fleet") },
      [
        'clusters/prod/apps.yaml:15: Kustomization/apps: sourceRef GitRepository "flux-system/fleet" is not defined in this tree',
      ],
    ],
    [
      "a HelmRelease whose chart source is not defined",
      {
        "infrastructure/ingress-nginx.yaml": replace(
          "        name: ingress-nginx\n        namespace: flux-system",
          "        name: nginx\n        namespace: flux-system",
        ),
      },
      [
        'infrastructure/ingress-nginx.yaml:28: HelmRelease/ingress-nginx: sourceRef HelmRepository "flux-system/nginx" is not defined in this tree',
      ],
    ],
    [
      "an ImagePolicy whose ImageRepository is not defined",
      {
        "clusters/prod/image-automation.yaml": replace(
          "  imageRepositoryRef:\n    name: podinfo",
          "  imageRepositoryRef:\n    name: podinfo-repo",
        ),
      },
      [
        'clusters/prod/image-automation.yaml:17: ImagePolicy/podinfo: imageRepositoryRef ImageRepository "flux-system/podinfo-repo" is not defined in this tree',
      ],
    ],
    [
      "a field of the wrong type",
      { "apps/base/podinfo/deployment.yaml": replace("replicas: 2", 'replicas: "two"') },
      [
        "apps/base/podinfo/deployment.yaml:6: Deployment/podinfo: spec.replicas: must be integer (as built from apps/prod)",
      ],
    ],
    [
      "an unknown field (a typo)",
      {
        "apps/base/podinfo/deployment.yaml": replace(
          "          ports:",
          "          imagePullPolcy: Always\n          ports:",
        ),
      },
      [
        'apps/base/podinfo/deployment.yaml:18: Deployment/podinfo: spec.template.spec.containers[0]: unknown field "imagePullPolcy" (as built from apps/prod)',
      ],
    ],
    [
      "a Flux object that breaks its CRD schema",
      { "clusters/prod/apps.yaml": replace("prune: true", "prune: yes please") },
      ["clusters/prod/apps.yaml:11: Kustomization/apps: spec.prune: must be boolean"],
    ],
    [
      "a missing required field",
      { "clusters/prod/image-automation.yaml": replace("  imageRepositoryRef:\n    name: podinfo\n", "") },
      [
        'clusters/prod/image-automation.yaml:15: ImagePolicy/podinfo: spec: missing required field "imageRepositoryRef"',
      ],
    ],
    [
      "an apiVersion Kubernetes no longer serves",
      {
        "clusters/prod/ingress.yaml": () =>
          "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: podinfo\n",
      },
      [
        "clusters/prod/ingress.yaml:1: Ingress/web: Ingress is not served as extensions/v1beta1 (served: networking.k8s.io/v1)",
      ],
    ],
    [
      "invalid YAML",
      { "clusters/prod/apps.yaml": replace("  interval: 10m", "  interval: [10m") },
      [
        "clusters/prod/apps.yaml:10: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
      ],
    ],
    [
      "a Kustomization syncing a folder that does not exist",
      { "clusters/prod/apps.yaml": replace("path: ./apps/prod", "path: ./apps/production") },
      [
        "clusters/prod/apps.yaml:10: Kustomization/apps: spec.path ./apps/production does not exist in this repository",
      ],
    ],
    [
      "a manifest next to a kustomization that does not list it",
      { "apps/prod/extra.yaml": () => "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n" },
      ["apps/prod/extra.yaml:1: not referenced by apps/prod/kustomization.yaml, so never built or applied"],
    ],
    [
      "a shipmate.yaml listing an environment twice",
      {
        "shipmate.yaml": () =>
          "apiVersion: shipmate.dev/v1alpha1\nkind: Fleet\nmetadata:\n  name: acme\nspec:\n  environments:\n    - name: prod\n      path: apps/prod\n    - name: prod\n      path: apps/prod\n",
      },
      ['shipmate.yaml:9: spec.environments.1.name: environment "prod" is listed twice'],
    ],
    [
      "a shipmate.yaml pointing at a folder that does not exist",
      {
        "shipmate.yaml": () =>
          "apiVersion: shipmate.dev/v1alpha1\nkind: Fleet\nmetadata:\n  name: acme\nspec:\n  environments:\n    - name: prod\n      path: apps/prod\n      policies: policies/prod\n",
      },
      ['shipmate.yaml:9: environment "prod": policies policies/prod does not exist'],
    ],
    [
      "a Secret in plain text where a .sops.yaml creation rule says files are encrypted",
      {
        ".sops.yaml": () =>
          "creation_rules:\n  - path_regex: ^secrets/.*\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n",
        "secrets/db.yaml": () =>
          "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: apps\nstringData:\n  password: hunter2\n",
        "secrets/token.yaml": () =>
          "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  namespace: apps\nstringData:\n  token: ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]\nsops:\n  mac: ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]\n  version: 3.13.3\n",
        "other/plain.yaml": () =>
          "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plain\n  namespace: apps\nstringData:\n  a: b\n",
      },
      [
        "secrets/db.yaml:1: Secret db is not encrypted, but .sops.yaml creation rule 0 (path_regex ^secrets/.*\\.yaml$) covers this file: encrypt it with sops --encrypt --in-place",
      ],
    ],
    [
      "a Flux postBuild variable where a number goes is not a schema error (the cluster substitutes it)",
      {
        "vars/deploy.yaml": () =>
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a Flux substitution variable, written ${name}
          "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\nspec:\n  replicas: ${replicas:=2}\n  paused: nope\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n          image: nginx\n",
      },
      ["vars/deploy.yaml:8: Deployment/web: spec.paused: must be boolean"],
    ],
  ])("%s", async (_rule, edits, expected) => {
    const dir = await repoWith(edits);
    const report = await validateTree(dir);
    expect(report.problems.map((p) => `${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`)).toEqual(
      expected,
    );
  });
});

describe("shipmate validate (CLI)", () => {
  it("exits 0 and says so on a valid tree", async () => {
    const r = await runCli(["validate", FIXTURE]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^ok: \d+ objects, 12 YAML files, 2 kustomize builds/);
  });

  it("exits 1 with one line per problem, paths as the user gave the folder", async () => {
    const dir = await repoWith({
      "clusters/prod/apps.yaml": replace("- name: infrastructure", "- name: infra"),
      "apps/base/podinfo/deployment.yaml": replace("flux-system:podinfo", "flux-system:nope"),
    });
    const r = await runCli(["validate", "."], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split("\n")).toEqual([
      'apps/base/podinfo/deployment.yaml:17: marker names image policy "flux-system:nope", which is not defined in this tree',
      'clusters/prod/apps.yaml:8: Kustomization/apps: dependsOn "flux-system/infra", which is not defined in this tree',
    ]);
    expect(r.stderr).toContain("2 problem(s)");
  });

  it("--json reports problems and figures for machines", async () => {
    const r = await runCli(["validate", FIXTURE, "--json"]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as { ok: boolean; problems: unknown[]; stats: { builds: number } };
    expect(json.ok).toBe(true);
    expect(json.problems).toEqual([]);
    expect(json.stats.builds).toBe(2);
  });

  it("a DIR that is not a directory is a usage error", async () => {
    const r = await runCli(["validate", join(FIXTURE, "apps/prod/kustomization.yaml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("is not a directory");
  });
});
