import { describe, expect, it } from "vitest";
import {
  ArtifactGeneratorSpec,
  observedSourcesDigest,
  producersFirst,
  validateGenerator,
} from "../../src/agent/generators.ts";

const spec = (over: Record<string, unknown>) =>
  ArtifactGeneratorSpec.parse({
    sources: [{ alias: "git", kind: "GitRepository", name: "repo" }],
    artifacts: [{ name: "apps", copy: [{ from: "@git/apps/**", to: "@artifact/" }] }],
    ...over,
  });

describe("ArtifactGenerator validation (before anything is fetched)", () => {
  it.each<[string, Record<string, unknown>, string | undefined]>([
    ["a valid generator passes", {}, undefined],
    [
      "aliases are unique",
      {
        sources: [
          { alias: "git", kind: "GitRepository", name: "a" },
          { alias: "git", kind: "GitRepository", name: "b" },
        ],
      },
      "duplicate source alias 'git'",
    ],
    [
      "artifact names are unique",
      {
        artifacts: [
          { name: "a", copy: [{ from: "@git/x", to: "@artifact/" }] },
          { name: "a", copy: [{ from: "@git/y", to: "@artifact/" }] },
        ],
      },
      "duplicate artifact name 'a'",
    ],
    [
      "artifact names are object names",
      { artifacts: [{ name: "Apps_1", copy: [{ from: "@git/x", to: "@artifact/" }] }] },
      "artifact name 'Apps_1' is not a valid Kubernetes object name",
    ],
    [
      "copy names a declared alias",
      { artifacts: [{ name: "a", copy: [{ from: "@other/x", to: "@artifact/" }] }] },
      "artifact 'a': copy from '@other/x' refers to unknown source alias '@other'",
    ],
    [
      "originRevision names a declared alias",
      { artifacts: [{ name: "a", originRevision: "@nope", copy: [{ from: "@git/x", to: "@artifact/" }] }] },
      "artifact 'a' refers to unknown source alias '@nope'",
    ],
  ])("%s", (_rule, over, expected) => {
    expect(validateGenerator(spec(over))).toBe(expected);
  });

  it("the inputs' digest depends on each alias's revision and digest, not on their order", () => {
    const a = { revision: "main@sha1:1", digest: "sha256:a", dir: "/x" };
    const b = { revision: "v1@sha256:2", digest: "sha256:b", dir: "/y" };
    const d1 = observedSourcesDigest(
      new Map([
        ["a", a],
        ["b", b],
      ]),
    );
    const d2 = observedSourcesDigest(
      new Map([
        ["b", b],
        ["a", a],
      ]),
    );
    expect(d1).toBe(d2);
    expect(observedSourcesDigest(new Map([["a", { ...a, revision: "main@sha1:3" }]]))).not.toBe(
      observedSourcesDigest(new Map([["a", a]])),
    );
  });

  it("a generator reading another's ExternalArtifact runs after it", () => {
    const gen = (name: string, reads: string[], makes: string[]) => ({
      metadata: { name, namespace: "ns" },
      spec: {
        sources: reads.map((r) => ({ alias: r, kind: "ExternalArtifact", name: r })),
        artifacts: makes.map((m) => ({ name: m })),
      },
    });
    const order = producersFirst([
      gen("a", ["base"], ["final"]),
      gen("b", [], ["base"]),
      gen("c", [], ["other"]),
    ]);
    expect(order.map((g) => g.metadata.name)).toEqual(["b", "a", "c"]);
  });
});
