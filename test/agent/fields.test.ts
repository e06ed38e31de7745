import { describe, expect, it } from "vitest";
import { ARTIFACT_GENERATOR_FIELDS } from "../../src/agent/fields/artifactgenerator.ts";
import { KUSTOMIZATION_FIELDS } from "../../src/agent/fields/kustomization.ts";
import { type FieldTable, refusedFields, unsupportedMessage } from "../../src/agent/fields/support.ts";
import { GIT_REPOSITORY_FIELDS, ROOT_GIT_REPOSITORY_FIELDS } from "../../src/agent/sources/git.ts";

const table: FieldTable = {
  interval: "honoured",
  values: "honoured",
  dependsOn: "honoured",
  "dependsOn.name": "honoured",
  "dependsOn.readyExpr": { refused: "not evaluated" },
  postBuild: { refused: "not performed" },
  deletionPolicy: { refused: "only MirrorPrune", accepts: ["MirrorPrune"] },
};

describe("fail closed: a field is honoured or refused, never ignored", () => {
  it.each([
    ["an honoured leaf", { interval: "1m" }, []],
    [
      "an honoured field without children in the table takes its whole subtree",
      { values: { a: { b: [1] } } },
      [],
    ],
    [
      "a refused field is named by its path",
      { interval: "1m", postBuild: { substitute: { a: "b" } } },
      ["spec.postBuild"],
    ],
    [
      "a field no table entry knows (a newer Flux's) is refused",
      { interval: "1m", shinyNew: true },
      ["spec.shinyNew"],
    ],
    [
      "array items are walked through",
      { dependsOn: [{ name: "a" }, { name: "b", readyExpr: "x" }] },
      ["spec.dependsOn.readyExpr"],
    ],
    [
      "an unknown child of an honoured parent with children is refused",
      { dependsOn: [{ name: "a", extra: 1 }] },
      ["spec.dependsOn.extra"],
    ],
    ["Go zero values mean the same as absent", { postBuild: {}, deletionPolicy: "", shinyNew: false }, []],
    ["a refused field's accepted value (Flux's default) passes", { deletionPolicy: "MirrorPrune" }, []],
    ["any other value of it is refused", { deletionPolicy: "Orphan" }, ["spec.deletionPolicy"]],
    [
      "each field is named once, in spec order",
      { postBuild: { a: 1 }, dependsOn: [{ readyExpr: "a" }, { readyExpr: "b" }] },
      ["spec.postBuild", "spec.dependsOn.readyExpr"],
    ],
  ])("%s", (_rule, spec, expected) => {
    expect(refusedFields(spec, table)).toEqual(expected);
  });

  it("the message names every field and why, in one line", () => {
    const msg = unsupportedMessage("Kustomization", ["spec.postBuild", "spec.shinyNew"], table);
    expect(msg).toBe(
      "Kustomization fields not supported by the shipmate agent, refused rather than ignored: spec.postBuild (not performed); spec.shinyNew (not a field this agent knows)",
    );
    expect(msg).not.toContain("\n");
  });

  it.each([
    ["serviceAccountName", { serviceAccountName: "tenant" }, []],
    ["kubeConfig.secretRef", { kubeConfig: { secretRef: { name: "spoke", key: "value.yaml" } } }, []],
    [
      "kubeConfig.configMapRef (workload identity)",
      { kubeConfig: { configMapRef: { name: "spoke" } } },
      ["spec.kubeConfig.configMapRef"],
    ],
  ])("Kustomization: tenancy field %s", (_field, extra, expected) => {
    const spec = {
      interval: "1m",
      prune: true,
      path: "./",
      sourceRef: { kind: "GitRepository", name: "x" },
      ...extra,
    };
    expect(refusedFields(spec, KUSTOMIZATION_FIELDS)).toEqual(expected);
  });

  it.each([
    [
      "healthCheckExprs",
      { healthCheckExprs: [{ apiVersion: "v1", kind: "X", current: "true", failed: "false" }] },
    ],
    ["ignoreMissingComponents", { ignoreMissingComponents: true }],
    ["deletionPolicy", { deletionPolicy: "Orphan" }],
    [
      "postBuild",
      {
        postBuild: {
          substitute: { a: "b" },
          substituteFrom: [{ kind: "Secret", name: "s", optional: true }],
          substituteStrategy: "Always",
        },
      },
    ],
    ["decryption with age keys", { decryption: { provider: "sops", secretRef: { name: "sops-age" } } }],
  ])("Kustomization: %s is honoured", (_field, extra) => {
    const spec = { interval: "1m", prune: true, sourceRef: { kind: "GitRepository", name: "x" }, ...extra };
    expect(refusedFields(spec, KUSTOMIZATION_FIELDS)).toEqual([]);
  });

  it("Kustomization: decryption through a KMS service account is refused", () => {
    const spec = { interval: "1m", prune: true, decryption: { provider: "sops", serviceAccountName: "kms" } };
    expect(refusedFields(spec, KUSTOMIZATION_FIELDS)).toEqual(["spec.decryption.serviceAccountName"]);
  });

  it.each([
    ["ref.commit is honoured", { ref: { branch: "main", commit: "abc" } }, []],
    ["ref.name is honoured", { ref: { name: "refs/pull/1/head" } }, []],
    [
      "include is honoured",
      { include: [{ repository: { name: "lib" }, fromPath: "deploy", toPath: "base/lib" }] },
      [],
    ],
    ["recurseSubmodules is honoured", { recurseSubmodules: true }, []],
    ["sparseCheckout is honoured", { sparseCheckout: ["charts", "kustomize"] }, []],
    ["verify is honoured", { verify: { mode: "TagAndHEAD", secretRef: { name: "pgp" } } }, []],
    [
      "an unknown child of include is refused",
      { include: [{ repository: { name: "lib" }, copyStrategy: "x" }] },
      ["spec.include.copyStrategy"],
    ],
    ["provider generic is what the agent does", { provider: "generic" }, []],
    ["provider azure is refused", { provider: "azure" }, ["spec.provider"]],
  ])("GitRepository: %s", (_rule, extra, expected) => {
    expect(refusedFields({ url: "https://x", interval: "1m", ...extra }, GIT_REPOSITORY_FIELDS)).toEqual(
      expected,
    );
  });

  it.each([
    ["ref.commit", { ref: { commit: "abc" } }, ["spec.ref.commit"]],
    ["ref.name", { ref: { name: "refs/heads/main" } }, ["spec.ref.name"]],
    ["include", { include: [{ repository: { name: "lib" } }] }, ["spec.include"]],
    ["no recurseSubmodules (honoured there too)", { recurseSubmodules: true }, []],
    ["no sparseCheckout (honoured there too)", { sparseCheckout: ["apps"] }, []],
    ["no verify (honoured there too)", { verify: { mode: "HEAD", secretRef: { name: "pgp" } } }, []],
    ["no ignore", { ignore: "/*\n!/deploy/" }, []],
  ])("the fleet's own GitRepository (fetched from the agent's flags) refuses %s", (_f, extra, expected) => {
    expect(refusedFields({ url: "https://x", interval: "1m", ...extra }, ROOT_GIT_REPOSITORY_FIELDS)).toEqual(
      expected,
    );
  });

  it.each([["ignore (gitignore rules) is honoured", { ignore: "/*\n!/deploy/" }, []]])(
    "GitRepository: %s",
    (_rule, extra, expected) => {
      expect(refusedFields({ url: "https://x", interval: "1m", ...extra }, GIT_REPOSITORY_FIELDS)).toEqual(
        expected,
      );
    },
  );

  const generator = (copy: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    sources: [{ alias: "git", kind: "GitRepository", name: "flux-system", namespace: "flux-system" }],
    artifacts: [
      { name: "apps", originRevision: "@git", copy: [{ from: "@git/apps/**", to: "@artifact/", ...copy }] },
    ],
    commonMetadata: { labels: { team: "a" } },
    ...extra,
  });
  it.each([
    ["the Flux 2.7 example's generator is honoured whole", generator({ exclude: ["*.md"] }), []],
    ["the Overwrite strategy (the default) is honoured", generator({ strategy: "Overwrite" }), []],
    ["the Merge strategy is refused", generator({ strategy: "Merge" }), ["spec.artifacts.copy.strategy"]],
    ["pathPattern is refused", generator({}, { pathPattern: "@git/apps/{app}" }), ["spec.pathPattern"]],
  ])("ArtifactGenerator: %s", (_rule, spec, expected) => {
    expect(refusedFields(spec, ARTIFACT_GENERATOR_FIELDS)).toEqual(expected);
  });
});
