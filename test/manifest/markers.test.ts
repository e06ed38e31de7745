import { describe, expect, it } from "vitest";
import { applyUpdates, pathMatches } from "../../src/manifest/apply.ts";
import { parseMarker } from "../../src/manifest/marker.ts";
import { plainSafe } from "../../src/manifest/render.ts";
import type { ImageSelection, PolicyClaim } from "../../src/manifest/types.ts";

const DIGEST = `sha256:${"b".repeat(64)}`;
const OLD_DIGEST = `sha256:${"a".repeat(64)}`;
const sel = new Map<string, ImageSelection>([
  ["flux-system:app", { image: "ghcr.io/org/app", tag: "1.2.3" }],
  ["flux-system:pinned", { image: "ghcr.io/org/app", tag: "1.2.3", digest: DIGEST }],
  ["flux-system:web", { image: "nginx", tag: "1.27.1" }],
]);

function update(content: string, opts: { path?: string; policies?: PolicyClaim[] } = {}) {
  const r = applyUpdates([{ path: opts.path ?? "deploy.yaml", content }], {
    selections: sel,
    policies: opts.policies ?? [],
  });
  return { out: r.files[0]?.content ?? content, changes: r.files[0]?.changes ?? [], problems: r.problems };
}

describe("Flux setter markers", () => {
  it.each([
    [
      "whole reference: the marker sets name:tag",
      `image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "flux-system:app"}`,
      `image: ghcr.io/org/app:1.2.3 # {"$imagepolicy": "flux-system:app"}`,
    ],
    [
      "whole reference: name:tag@digest when the policy tracks digests",
      `image: ghcr.io/org/app:1.0.0@${OLD_DIGEST} # {"$imagepolicy": "flux-system:pinned"}`,
      `image: ghcr.io/org/app:1.2.3@${DIGEST} # {"$imagepolicy": "flux-system:pinned"}`,
    ],
    [
      "whole reference: an unpinned reference becomes pinned when the policy tracks digests (Flux LatestRef)",
      `image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "flux-system:pinned"}`,
      `image: ghcr.io/org/app:1.2.3@${DIGEST} # {"$imagepolicy": "flux-system:pinned"}`,
    ],
    [
      ":tag sets only the tag",
      `  tag: 1.0.0 # {"$imagepolicy": "flux-system:app:tag"}`,
      `  tag: 1.2.3 # {"$imagepolicy": "flux-system:app:tag"}`,
    ],
    [
      ":name sets only the repository",
      `  repository: ghcr.io/old/app # {"$imagepolicy": "flux-system:app:name"}`,
      `  repository: ghcr.io/org/app # {"$imagepolicy": "flux-system:app:name"}`,
    ],
    [
      ":digest sets only the digest",
      `  digest: ${OLD_DIGEST} # {"$imagepolicy": "flux-system:pinned:digest"}`,
      `  digest: ${DIGEST} # {"$imagepolicy": "flux-system:pinned:digest"}`,
    ],
    [
      "a sequence item scalar is a setter too",
      `- ghcr.io/org/app:1.0.0 # {"$imagepolicy": "flux-system:app"}`,
      `- ghcr.io/org/app:1.2.3 # {"$imagepolicy": "flux-system:app"}`,
    ],
    [
      "the kyaml long form $ref means the same",
      `image: x:1 # {"$ref": "#/definitions/io.k8s.cli.setters.flux-system:app"}`,
      `image: ghcr.io/org/app:1.2.3 # {"$ref": "#/definitions/io.k8s.cli.setters.flux-system:app"}`,
    ],
    [
      "single quotes are kept",
      `image: 'ghcr.io/org/app:1.0.0' # {"$imagepolicy": "flux-system:app"}`,
      `image: 'ghcr.io/org/app:1.2.3' # {"$imagepolicy": "flux-system:app"}`,
    ],
    [
      "double quotes are kept",
      `image: "ghcr.io/org/app:1.0.0" # {"$imagepolicy": "flux-system:app"}`,
      `image: "ghcr.io/org/app:1.2.3" # {"$imagepolicy": "flux-system:app"}`,
    ],
    [
      "a tab before the comment and trailing spaces after it stay",
      `image: nginx:1.0\t# {"$imagepolicy": "flux-system:web"}   `,
      `image: nginx:1.27.1\t# {"$imagepolicy": "flux-system:web"}   `,
    ],
    [
      "a marker inside a flow mapping on its own line",
      `image: {name: x, ref: nginx:1.0 # {"$imagepolicy": "flux-system:web"}\n  }`,
      `image: {name: x, ref: nginx:1.27.1 # {"$imagepolicy": "flux-system:web"}\n  }`,
    ],
    [
      "an anchored scalar is set in place; its aliases follow",
      `a: &img nginx:1.0 # {"$imagepolicy": "flux-system:web"}\nb: *img`,
      `a: &img nginx:1.27.1 # {"$imagepolicy": "flux-system:web"}\nb: *img`,
    ],
  ])("%s", (_rule, input, expected) => {
    const { out, problems } = update(input);
    expect(problems).toEqual([]);
    expect(out).toBe(expected);
  });

  it.each([
    ["a comment on its own line is not a marker", `# {"$imagepolicy": "flux-system:app"}\nimage: nginx:1.0`],
    ["prose that mentions the key is not a marker", `image: nginx:1.0 # set by "$imagepolicy" later`],
    [
      "a marker on a key with a block value sets nothing",
      `image: # {"$imagepolicy": "flux-system:app"}\n  name: x`,
    ],
    [
      "the value already selected is not rewritten",
      `image: nginx:1.27.1 # {"$imagepolicy": "flux-system:web"}`,
    ],
  ])("%s", (_rule, input) => {
    const { out, changes } = update(input);
    expect(changes).toEqual([]);
    expect(out).toBe(input);
  });

  it.each([
    [
      "unknown policy: left alone, reported as a warning",
      `image: nginx:1.0 # {"$imagepolicy": "other:policy"}`,
      { kind: "unknown-policy", severity: "warning", line: 1, policy: "other:policy" },
    ],
    [
      "a :digest marker of a policy without digests is left alone",
      `digest: ${OLD_DIGEST} # {"$imagepolicy": "flux-system:app:digest"}`,
      { kind: "digest-not-tracked", severity: "warning", line: 1, policy: "flux-system:app" },
    ],
    [
      "invalid marker JSON is an error with its line",
      `a: 1\nimage: nginx:1.0 # {"$imagepolicy": flux-system:web}`,
      { kind: "invalid-marker", severity: "error", line: 2 },
    ],
    [
      "an unknown setter suffix is an error",
      `image: nginx:1.0 # {"$imagepolicy": "flux-system:web:version"}`,
      { kind: "invalid-marker", severity: "error", line: 1 },
    ],
    [
      "a marker on a block scalar cannot be applied in place",
      `image: | # {"$imagepolicy": "flux-system:web"}\n  nginx:1.0\n`,
      { kind: "unsupported-scalar", severity: "error", line: 1, policy: "flux-system:web" },
    ],
  ])("%s", (_rule, input, problem) => {
    const { out, problems } = update(input);
    expect(out).toBe(input);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: "deploy.yaml", ...problem });
    // A problem about a policy names it as a field: nobody reads the id back out of the message.
    if (!("policy" in problem)) expect(problems[0]).not.toHaveProperty("policy");
  });

  it("a plain value that would read as a number or boolean is quoted; nothing else is", () => {
    const s = new Map([["ns:p", { image: "x", tag: "1.10" }]]);
    const r = applyUpdates([{ path: "v.yaml", content: `tag: 1.9.0 # {"$imagepolicy": "ns:p:tag"}\n` }], {
      selections: s,
      policies: [],
    });
    expect(r.files[0]?.content).toBe(`tag: "1.10" # {"$imagepolicy": "ns:p:tag"}\n`);
  });

  it.each([
    ["1.2.3", true],
    ["v1.2", true],
    ["1.10", false],
    ["10", false],
    ["1e3", false],
    ["yes", false],
    ["on", false],
    ["null", false],
    ["0x1F", false],
    ["2024-01-02", false],
    ["- x", false],
    ["a: b", false],
    ["a #b", false],
    ["registry:5000/app:1", true],
  ])("plain scalars: %s is plain-safe = %s", (value, safe) => {
    expect(plainSafe(value, false)).toBe(safe);
  });

  it("changes carry the setter, old and new values, line and the object they sit in", () => {
    const { changes } = update(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.0 # {"$imagepolicy": "flux-system:web"}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: job}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - image: ghcr.io/org/app:0.1 # {"$imagepolicy": "flux-system:app"}
`);
    expect(changes).toEqual([
      {
        setter: "flux-system:web",
        policy: "flux-system:web",
        part: "image",
        via: "marker",
        old: "nginx:1.0",
        new: "nginx:1.27.1",
        line: 11,
        object: { apiVersion: "apps/v1", kind: "Deployment", namespace: "prod", name: "web" },
      },
      {
        setter: "flux-system:app",
        policy: "flux-system:app",
        part: "image",
        via: "marker",
        old: "ghcr.io/org/app:0.1",
        new: "ghcr.io/org/app:1.2.3",
        line: 22,
        object: { apiVersion: "batch/v1", kind: "CronJob", name: "job" },
      },
    ]);
  });
});

describe("kustomize and Helm", () => {
  const kustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deploy.yaml
images:
  - name: app
    newName: ghcr.io/org/old # {"$imagepolicy": "flux-system:pinned:name"}
    newTag: v1 # {"$imagepolicy": "flux-system:pinned:tag"}
    digest: ${OLD_DIGEST} # {"$imagepolicy": "flux-system:pinned:digest"}
`;
  it.each([["kustomization.yaml"], ["kustomization.yml"], ["Kustomization"]])(
    "kustomize images: newName/newTag/digest markers in %s",
    (path) => {
      const { out, changes } = update(kustomization, { path });
      expect(out).toBe(
        kustomization
          .replace("ghcr.io/org/old #", "ghcr.io/org/app #")
          .replace("newTag: v1 #", "newTag: 1.2.3 #")
          .replace(OLD_DIGEST, DIGEST),
      );
      expect(changes.map((c) => c.setter)).toEqual([
        "flux-system:pinned:name",
        "flux-system:pinned:tag",
        "flux-system:pinned:digest",
      ]);
    },
  );

  it("kustomize patches: markers inside inline patches (JSON 6902 and strategic merge) are set", () => {
    const input = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
patches:
  - target: {kind: Deployment, name: web}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: nginx:1.0 # {"$imagepolicy": "flux-system:web"}
patchesStrategicMerge:
  - |
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: api
    spec:
      template:
        spec:
          containers:
            - name: api
              image: "ghcr.io/org/app:0.9" # {"$imagepolicy": "flux-system:app"}
`;
    const { out, changes, problems } = update(input, { path: "overlays/prod/kustomization.yaml" });
    expect(problems).toEqual([]);
    expect(out).toBe(
      input
        .replace("value: nginx:1.0 #", "value: nginx:1.27.1 #")
        .replace('"ghcr.io/org/app:0.9"', '"ghcr.io/org/app:1.2.3"'),
    );
    expect(changes.map((c) => [c.line, c.setter, c.object.name])).toEqual([
      [8, "flux-system:web", undefined],
      [20, "flux-system:app", "api"],
    ]);
  });

  it("HelmRelease values: markers under spec.values", () => {
    const input = `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  values:
    image:
      repository: ghcr.io/old/app # {"$imagepolicy": "flux-system:app:name"}
      tag: 0.0.1 # {"$imagepolicy": "flux-system:app:tag"}
`;
    const { out, changes } = update(input);
    expect(out).toBe(input.replace("ghcr.io/old/app #", "ghcr.io/org/app #").replace("0.0.1", "1.2.3"));
    expect(changes[0]?.object).toEqual({
      apiVersion: "helm.toolkit.fluxcd.io/v2",
      kind: "HelmRelease",
      namespace: "apps",
      name: "podinfo",
    });
  });
});

describe("native policies claiming paths (no markers)", () => {
  const web: PolicyClaim = { id: "flux-system:web", image: "nginx", paths: ["apps/web/**"] };
  const app: PolicyClaim = { id: "flux-system:pinned", image: "ghcr.io/org/app", paths: ["apps/app"] };

  it.each([
    [
      "paths: references to the policy's image are rewritten, the name kept as written",
      "apps/web/deploy.yaml",
      "containers:\n  - image: docker.io/library/nginx:1.0\n  - image: nginx:1.25 # a comment\n",
      "containers:\n  - image: docker.io/library/nginx:1.27.1\n  - image: nginx:1.27.1 # a comment\n",
    ],
    [
      "paths: references to other images are never touched",
      "apps/web/deploy.yaml",
      "containers:\n  - image: nginx-exporter:1.0\n  - image: ghcr.io/nginx:1.0\n  - image: redis:7\n",
      "containers:\n  - image: nginx-exporter:1.0\n  - image: ghcr.io/nginx:1.0\n  - image: redis:7\n",
    ],
    [
      "paths: a file outside the policy's paths is never touched",
      "apps/other/deploy.yaml",
      "image: nginx:1.0\n",
      "image: nginx:1.0\n",
    ],
    [
      "paths: a digest-pinned reference gets the new tag and digest",
      "apps/app/deploy.yaml",
      `image: ghcr.io/org/app:1.0@${OLD_DIGEST}\n`,
      `image: ghcr.io/org/app:1.2.3@${DIGEST}\n`,
    ],
    [
      "paths: kustomize images entries get newTag and digest",
      "apps/app/kustomization.yaml",
      `images:\n  - name: ghcr.io/org/app\n    newTag: "1.0"\n    digest: ${OLD_DIGEST}\n  - name: redis\n    newTag: "7"\n`,
      `images:\n  - name: ghcr.io/org/app\n    newTag: "1.2.3"\n    digest: ${DIGEST}\n  - name: redis\n    newTag: "7"\n`,
    ],
    [
      "paths: Helm values repository/tag pairs",
      "apps/web/values.yaml",
      "image:\n  registry: docker.io\n  repository: library/nginx\n  tag: 1.0 # pinned by ops\n",
      "image:\n  registry: docker.io\n  repository: library/nginx\n  tag: 1.27.1 # pinned by ops\n",
    ],
    [
      "paths: a marker on the same scalar wins over the claim",
      "apps/web/deploy.yaml",
      `image: nginx:1.0 # {"$imagepolicy": "flux-system:app"}\n`,
      `image: ghcr.io/org/app:1.2.3 # {"$imagepolicy": "flux-system:app"}\n`,
    ],
  ])("%s", (_rule, path, input, expected) => {
    const { out } = update(input, { path, policies: [web, app] });
    expect(out).toBe(expected);
  });

  it("paths: a digest-pinned reference of a policy without digests is left alone and reported", () => {
    const { out, problems } = update(`image: nginx:1.0@${OLD_DIGEST}\n`, {
      path: "apps/web/a.yaml",
      policies: [web],
    });
    expect(out).toBe(`image: nginx:1.0@${OLD_DIGEST}\n`);
    expect(problems).toMatchObject([{ kind: "digest-not-tracked", line: 1 }]);
  });

  it.each([
    ["apps/web/a.yaml", "apps/web", true],
    ["apps/web/a.yaml", "./apps/web/", true],
    ["apps/website/a.yaml", "apps/web", false],
    ["apps/web/x/a.yaml", "apps/*/a.yaml", false],
    ["apps/web/x/a.yaml", "apps/**/a.yaml", true],
    ["a.yaml", ".", true],
  ])("path patterns: %s under %s = %s", (file, pattern, expected) => {
    expect(pathMatches(file, pattern)).toBe(expected);
  });
});

describe("marker parsing", () => {
  it.each([
    [` {"$imagepolicy": "ns:a"}`, { kind: "marker", setter: "ns:a", policy: "ns:a", part: "image" }],
    [`{"$imagepolicy":"ns:a:tag"}`, { kind: "marker", policy: "ns:a", part: "tag" }],
    [` {"$imagepolicy": "ns:a:digest"}`, { kind: "marker", part: "digest" }],
    [` {"$imagepolicy": "a"}`, { kind: "invalid" }],
    [` {"$imagepolicy": 3}`, { kind: "invalid" }],
    [` {"$imagepolicy": "ns:a:tag:x"}`, { kind: "invalid" }],
    [` plain comment`, { kind: "none" }],
    [` {"other": "x"}`, { kind: "none" }],
  ])("%s", (comment, expected) => {
    expect(parseMarker(comment)).toMatchObject(expected);
  });
});
