/**
 * Loading policies directories: Flux documents unchanged, the native format,
 * and every kind of bad input reported with file, line and field.
 * Fixtures are YAML files next to this test (fixtures/).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  loadPolicies,
  loadPolicyConfig,
  mayHoldPolicyDocument,
  type Policy,
  PolicyConfigError,
  parsePolicyConfig,
} from "../../src/config/index.ts";
import { ConfigError } from "../../src/errors.ts";

const FIXTURES = "test/config/fixtures";

function byId(policies: Policy[]): Map<string, Policy> {
  return new Map(policies.map((p) => [p.id, p]));
}

describe("config: Flux ImageRepository + ImagePolicy documents load unchanged", () => {
  let policies: Map<string, Policy>;
  beforeAll(async () => {
    policies = byId(await loadPolicies(`${FIXTURES}/flux`));
  });

  it("config: every ImagePolicy becomes one policy, id <namespace>:<name>", () => {
    expect([...policies.keys()].sort()).toEqual([
      "apps:app-main",
      "apps:nginx",
      "flux-system:podinfo",
      "flux-system:podinfo-prerelease",
    ]);
  });

  it("config: a semver policy takes image, exclusions and labels from its documents", () => {
    expect(policies.get("flux-system:podinfo")).toEqual({
      id: "flux-system:podinfo",
      namespace: "flux-system",
      name: "podinfo",
      image: "ghcr.io/stefanprodan/podinfo",
      insecure: false,
      digestReflection: "Never",
      selection: { strategy: { kind: "semver", range: "5.1.x" }, exclusionList: ["^.*\\.sig$"] },
      labels: { env: "staging" },
      source: { file: `${FIXTURES}/flux/apps/podinfo/policy.yaml`, document: 1, line: 1 },
    });
  });

  it.each([
    ["namespace defaults to flux-system", "flux-system:podinfo-prerelease", { namespace: "flux-system" }],
    [
      "filterTags pattern and extract",
      "flux-system:podinfo-prerelease",
      {
        selection: expect.objectContaining({
          filter: { pattern: "^(?P<v>[0-9]+\\.[0-9]+\\.[0-9]+-rc\\.[0-9]+)$", extract: "$v" },
        }),
      },
    ],
    ["digestReflectionPolicy", "flux-system:podinfo-prerelease", { digestReflection: "IfNotPresent" }],
    [
      "numerical order from spec.policy.numerical",
      "apps:app-main",
      { selection: expect.objectContaining({ strategy: { kind: "numerical", order: "asc" } }) },
    ],
    [
      "secretRef.name and insecure from the ImageRepository",
      "apps:app-main",
      { secretRef: "regcred", insecure: true },
    ],
    [
      "an explicit exclusionList replaces the default",
      "apps:app-main",
      { selection: expect.objectContaining({ exclusionList: ["^.*\\.sig$", "^sha-"] }) },
    ],
    [
      "alphabetical order defaults to asc",
      "apps:nginx",
      { selection: expect.objectContaining({ strategy: { kind: "alphabetical", order: "asc" } }) },
    ],
    [
      "an empty exclusionList means Flux's default",
      "apps:nginx",
      { selection: expect.objectContaining({ exclusionList: ["^.*\\.sig$"] }) },
    ],
    ["a cross-namespace imageRepositoryRef resolves (v1beta1 repository)", "apps:nginx", { image: "nginx" }],
    [
      "the source names file, document and line",
      "apps:nginx",
      { source: { file: `${FIXTURES}/flux/apps/app-policies.yml`, document: 2, line: 18 } },
    ],
  ])("config: %s", (_rule, id, expected) => {
    expect(policies.get(id)).toMatchObject(expected);
  });
});

describe("config: ImageUpdateAutomation documents are exposed for the update helper", () => {
  it("config: sourceRef, checkout branch, author, template, push branch, path and selector", async () => {
    const { automations } = await loadPolicyConfig(`${FIXTURES}/flux`);
    expect(automations).toEqual([
      {
        id: "flux-system:flux-system",
        namespace: "flux-system",
        name: "flux-system",
        sourceRef: { kind: "GitRepository", name: "flux-system", namespace: "flux-system" },
        interval: "30m",
        checkout: { branch: "main" },
        commit: {
          author: { name: "fluxcdbot", email: "fluxcdbot@users.noreply.github.com" },
          messageTemplate: "{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}",
        },
        push: { branch: "image-updates" },
        update: { strategy: "Setters", path: "./clusters/my-cluster" },
        policySelector: { matchLabels: { env: "staging" } },
        suspended: false,
        source: { file: `${FIXTURES}/flux/automation.yaml`, document: 1, line: 1 },
      },
    ]);
  });
  it("config: update.path defaults to the repository root and author name is optional", () => {
    const { automations } = parsePolicyConfig([
      {
        path: "iua.yaml",
        text: [
          "apiVersion: image.toolkit.fluxcd.io/v1beta2",
          "kind: ImageUpdateAutomation",
          "metadata: {name: auto, namespace: apps}",
          "spec:",
          "  interval: 1h",
          "  sourceRef: {kind: GitRepository, name: fleet, namespace: flux-system}",
          "  git: {commit: {author: {email: bot@example.com}}}",
        ].join("\n"),
      },
    ]);
    expect(automations[0]).toMatchObject({
      id: "apps:auto",
      sourceRef: { namespace: "flux-system" },
      commit: { author: { email: "bot@example.com" } },
      update: { strategy: "Setters", path: "." },
    });
    expect(automations[0]?.commit.author).not.toHaveProperty("name");
  });
});

describe("config: the native shipmate.dev/v1alpha1 format", () => {
  let policies: Map<string, Policy>;
  beforeAll(async () => {
    policies = byId(await loadPolicies(`${FIXTURES}/native`));
  });
  it("config: native ImagePolicy with every optional field", () => {
    expect(policies.get("apps:podinfo")).toEqual({
      id: "apps:podinfo",
      namespace: "apps",
      name: "podinfo",
      image: "ghcr.io/stefanprodan/podinfo",
      insecure: false,
      digestReflection: "Always",
      platform: "linux/arm64",
      paths: ["apps/podinfo/*.yaml"],
      mode: "pull-request",
      labels: { team: "web" },
      selection: {
        strategy: { kind: "semver", range: "^6.0" },
        exclusionList: ["^.*\\.sig$"],
        minAgeMs: 72 * 3600 * 1000,
      },
      source: { file: `${FIXTURES}/native/policies.yaml`, document: 1, line: 2 },
    });
  });
  it.each([
    [
      "digest strategy follows its tag and always resolves digests",
      "flux-system:redis",
      {
        digestReflection: "Always",
        selection: expect.objectContaining({ strategy: { kind: "digest", tag: "7-alpine" } }),
      },
    ],
    [
      "list items share the list's namespace and labels",
      "web:frontend",
      { namespace: "web", labels: { env: "prod" } },
    ],
    ["an item's labels override the list's", "web:backend", { labels: { env: "canary" } }],
    [
      "newestBuild with a filter",
      "web:frontend",
      {
        selection: expect.objectContaining({
          strategy: { kind: "newestBuild" },
          filter: { pattern: "^main-" },
        }),
      },
    ],
    [
      "an explicit empty exclusionList means none",
      "web:backend",
      { selection: expect.objectContaining({ exclusionList: [] }) },
    ],
    [
      "numerical order desc with extract",
      "web:backend",
      {
        selection: expect.objectContaining({
          strategy: { kind: "numerical", order: "desc" },
          filter: { pattern: "^build-(?P<n>[0-9]+)$", extract: "$n" },
        }),
      },
    ],
    [
      "digest: IfNotPresent, secretRef",
      "web:docs",
      { digestReflection: "IfNotPresent", secretRef: "ghcr-pull" },
    ],
    [
      "each list item is located at its own line",
      "web:docs",
      { source: { file: `${FIXTURES}/native/list.yaml`, document: 1, line: 23 } },
    ],
  ])("config: %s", (_rule, id, expected) => {
    expect(policies.get(id)).toMatchObject(expected);
  });
});

describe("config: what is not a policy is ignored", () => {
  it("config: Deployments, non-objects, non-YAML files and shipmate's Fleet are skipped silently", async () => {
    const mixed = await loadPolicyConfig(`${FIXTURES}/mixed`);
    expect(mixed.policies.map((p) => p.id)).toEqual(["flux-system:app", "flux-system:app-edge"]);
    const flux = await loadPolicyConfig(`${FIXTURES}/flux`);
    expect(flux.files).toContain(`${FIXTURES}/flux/apps/podinfo/deployment.yaml`);
    expect(flux.files.some((f) => f.endsWith(".md"))).toBe(false);
  });
  it("config: a file that names none of our kinds or groups is never parsed, so a broken Deployment does not stop the load", () => {
    const policy =
      "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {image: redis, strategy: newestBuild}\n";
    const config = parsePolicyConfig([
      { path: "apps/broken.yaml", text: "kind: Deployment\n  bad: [\n" },
      { path: "policies/a.yaml", text: policy },
    ]);
    expect(config.policies.map((p) => p.id)).toEqual(["flux-system:a"]);
  });
  it.each([
    ["a native policy", "kind: ImagePolicy", true],
    ["a Flux repository", "kind: ImageRepository", true],
    ["a Flux automation", "kind: ImageUpdateAutomation", true],
    ["our API group alone", "apiVersion: shipmate.dev/v1alpha1", true],
    ["Flux's image group alone", "apiVersion: image.toolkit.fluxcd.io/v1", true],
    ["an escape that could spell a kind", 'kind: "Image\\x50olicy"', true],
    ["a Deployment", "apiVersion: apps/v1\nkind: Deployment", false],
    ["a Flux Kustomization", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization", false],
  ])("config: %s may hold a policy document: %s", (_, text, expected) => {
    expect(mayHoldPolicyDocument(text)).toBe(expected);
  });
  it("config: a single file can be given instead of a directory", async () => {
    const policies = await loadPolicies(`${FIXTURES}/native/list.yaml`);
    expect(policies.map((p) => p.id)).toEqual(["web:frontend", "web:backend", "web:docs"]);
  });
});

describe("config: directories", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "shipmate-config-"));
    await mkdir(join(dir, ".git", "sub"), { recursive: true });
    await mkdir(join(dir, "deep", "er"), { recursive: true });
    const policy = (name: string) =>
      `apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: ${name}}\nspec: {image: nginx, strategy: semver, range: "^1"}\n`;
    await writeFile(join(dir, ".git", "sub", "x.yaml"), policy("hidden"));
    await writeFile(join(dir, "deep", "er", "b.YML"), policy("deep"));
    await writeFile(join(dir, "a.yaml"), policy("top"));
    await mkdir(join(dir, "empty"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  it("config: YAML files are read recursively (.yaml, .yml, any case); hidden folders are skipped", async () => {
    const { policies, files } = await loadPolicyConfig(dir);
    expect(policies.map((p) => p.name)).toEqual(["top", "deep"]);
    expect(files).toEqual([join(dir, "a.yaml"), join(dir, "deep", "er", "b.YML")]);
  });
  it("config: an empty directory declares nothing", async () => {
    expect(await loadPolicyConfig(join(dir, "empty"))).toEqual({ policies: [], automations: [], files: [] });
  });
  it("config: a missing policies directory is one clear ConfigError naming it", async () => {
    const err = await loadPolicies(join(dir, "nope")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(`${join(dir, "nope")}: policies directory does not exist`);
    expect((err as ConfigError).exitCode).toBe(2);
  });
});

/** [case directory, file inside it, line, message pattern (with the field)] */
const badInput: [string, string, number | undefined, RegExp][] = [
  [
    "invalid-regex",
    "policy.yaml",
    10,
    /spec\.filterTags\.pattern: invalid regular expression: .*missing closing \)/,
  ],
  [
    "invalid-range",
    "policy.yaml",
    11,
    /ImagePolicy flux-system\/broken: items\[1\]\.range: invalid semver range ">= 1\.0 <"/,
  ],
  [
    "unknown-strategy",
    "policy.yaml",
    7,
    /spec\.strategy: strategy must be one of semver, alphabetical, numerical, newestBuild, digest, not "latest"/,
  ],
  ["missing-fields", "policy.yaml", 5, /spec\.image: is required/],
  [
    "duplicate-ids",
    "b.yaml",
    9,
    /policy id flux-system:app is defined twice: here and at test\/config\/fixtures\/bad\/duplicate-ids\/a\.yaml:1/,
  ],
  [
    "dangling-ref",
    "policy.yaml",
    16,
    /ImagePolicy flux-system\/podinfo: spec\.imageRepositoryRef\.name: refers to ImageRepository flux-system\/podinfo, which no policy file defines \(found apps\/podinfo/,
  ],
  ["unknown-field", "policy.yaml", 8, /spec\.rnage: unknown field/],
  ["flux-invalid-regex", "policy.yaml", 21, /spec\.policy\.semver\.range: invalid semver range "\*-\*"/],
  [
    "flux-exclusion-regex",
    "repo.yaml",
    10,
    /ImageRepository flux-system\/app \(used by ImagePolicy flux-system\/app\): spec\.exclusionList\[1\]: invalid regular expression/,
  ],
  ["flux-old-version", "policy.yaml", 1, /apiVersion: image\.toolkit\.fluxcd\.io\/v1alpha1 is not supported/],
  [
    "flux-interval-rule",
    "policy.yaml",
    19,
    /spec\.digestReflectionPolicy: spec\.interval must be set when spec\.digestReflectionPolicy is set to 'Always'/,
  ],
  ["flux-no-choice", "policy.yaml", 15, /spec\.policy: needs one of semver, alphabetical or numerical/],
  [
    "extract-group",
    "policy.yaml",
    10,
    /spec\.filterTags\.extract: extract refers to \$\{timestamp\} but the pattern has no group/,
  ],
  ["bad-duration", "policy.yaml", 8, /spec\.minAge: must be a Go duration/],
  [
    "image-with-tag",
    "policy.yaml",
    6,
    /ImageRepository flux-system\/app: spec\.image: must not start with a URL scheme; remove 'https:\/\/'/,
  ],
];

describe("config: bad input names the file, document, field and line", () => {
  it.each(badInput)("config: %s → %s:%s", async (dir, file, line, pattern) => {
    const err = await loadPolicyConfig(`${FIXTURES}/bad/${dir}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyConfigError);
    const where = `${FIXTURES}/bad/${dir}/${file}${line ? `:${line}` : ""}: `;
    const lines = (err as PolicyConfigError).message.split("\n");
    expect(lines.filter((l) => l.startsWith(where) && pattern.test(l))).toHaveLength(1);
    expect((err as PolicyConfigError).exitCode).toBe(2);
  });
  it("config: a YAML syntax error names file and line (written at run time: the repository's formatter rejects broken YAML)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "shipmate-yaml-"));
    try {
      const file = join(dir, "policy.yaml");
      await writeFile(
        file,
        "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n  image: x\n  strategy: semver\n range: ^1.0\n",
      );
      const err = await loadPolicyConfig(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PolicyConfigError);
      expect((err as Error).message).toBe(
        `${file}:8: document 1: YAML syntax error: All mapping items must start at the same column`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it("config: every problem is reported, one line each, not just the first", async () => {
    const err = (await loadPolicyConfig(`${FIXTURES}/bad/unknown-field`).catch(
      (e: unknown) => e,
    )) as PolicyConfigError;
    expect(err.problems.map((p) => `${p.line} ${p.field}`)).toEqual(["5 spec.range", "8 spec.rnage"]);
    expect(err.message.split("\n")).toHaveLength(2);
  });
  it.each([
    [
      "a native document with another apiVersion",
      "apiVersion: shipmate.dev/v1beta1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {}\n",
      /apiVersion: shipmate\.dev\/v1beta1 is not supported/,
    ],
    [
      "digest: false with the digest strategy",
      "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {image: redis, strategy: digest, digest: false}\n",
      /spec\.digest: the digest strategy always resolves digests/,
    ],
    [
      "an invalid order",
      "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {image: redis, strategy: numerical, order: up}\n",
      /spec\.order: /,
    ],
    [
      "a name Kubernetes would refuse",
      "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: My_App}\nspec: {image: redis, strategy: newestBuild}\n",
      /metadata\.name: must be a lowercase RFC 1123 name/,
    ],
    [
      "an image with a tag",
      "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {image: 'redis:7', strategy: newestBuild}\n",
      /spec\.image: must not contain a tag; remove ':7'/,
    ],
    [
      "an image with a digest",
      "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {image: 'redis@sha256:00', strategy: newestBuild}\n",
      /spec\.image: must not contain a digest/,
    ],
    [
      "an empty list",
      "apiVersion: shipmate.dev/v1alpha1\nkind: ImagePolicyList\nitems: []\n",
      /items: lists no policy/,
    ],
    [
      "duplicate ImageRepositories",
      "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: a}\nspec: {image: redis}\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: a}\nspec: {image: nginx}\n",
      /x\.yaml:8: document 2: metadata\.name: ImageRepository flux-system\/a is also defined at x\.yaml:1/,
    ],
    [
      "duplicate keys in a mapping",
      "apiVersion: shipmate.dev/v1alpha1\napiVersion: shipmate.dev/v1alpha1\n",
      /x\.yaml:2: document 1: YAML syntax error: Map keys must be unique/,
    ],
    [
      "a Flux order outside asc/desc",
      "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: a}\nspec: {image: redis}\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {imageRepositoryRef: {name: a}, policy: {numerical: {order: DESC}}}\n",
      /x\.yaml:9: document 2, ImagePolicy flux-system\/a: spec\.policy\.numerical\.order: /,
    ],
    [
      "an ImageUpdateAutomation without spec.git (no commit author)",
      "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {name: a}\nspec:\n  interval: 5m\n  sourceRef: {kind: GitRepository, name: fleet}\n",
      /x\.yaml:4: document 1, ImageUpdateAutomation flux-system\/a: spec\.git: is required/,
    ],
  ])("config: %s", (_rule, text, pattern) => {
    let caught: unknown;
    try {
      parsePolicyConfig([{ path: "x.yaml", text }]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PolicyConfigError);
    expect((caught as Error).message).toMatch(pattern);
  });
});
