import { describe, expect, it } from "vitest";
import { type EnvTree, planPromotion } from "../../src/promote/plan.ts";

const env = (name: string, files: Record<string, string>): EnvTree => ({
  name,
  path: `apps/${name}`,
  files: Object.entries(files).map(([p, content]) => ({ path: `apps/${name}/${p}`, content })),
});

const overlay = (tag: string, extra = "") => `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base/web
images:
  - name: ghcr.io/acme/web
    newTag: ${tag} # {"$imagepolicy": "flux-system:web-ENV:tag"}
${extra}`;

const deployment = (image: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      containers:
        - name: api
          image: ${image}
        - name: sidecar
          image: docker.io/library/envoy:1.30 # not in staging
`;

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("planPromotion", () => {
  it("kustomize newTag: only the scalar changes; marker comment and the rest stay byte for byte", () => {
    const plan = planPromotion(
      env("staging", { "web/kustomization.yaml": overlay("1.4.0") }),
      env("production", {
        "web/kustomization.yaml": overlay('"1.3.0"', "replicas:\n  - name: web\n    count: 3\n"),
      }),
    );
    expect(plan.changes).toEqual([
      {
        app: "web",
        image: "ghcr.io/acme/web",
        repository: "ghcr.io/acme/web",
        from: "1.3.0",
        to: "1.4.0",
        files: ["apps/production/web/kustomization.yaml"],
      },
    ]);
    expect(plan.files[0]?.content).toBe(overlay('"1.4.0"', "replicas:\n  - name: web\n    count: 3\n"));
    expect(plan.problems).toEqual([]);
  });

  it.each([
    [
      "tag and digest are copied exactly",
      `ghcr.io/acme/api:2.0.0@${DIGEST}`,
      "ghcr.io/acme/api:1.9.0",
      `ghcr.io/acme/api:2.0.0@${DIGEST}`,
    ],
    [
      "a digest-only pin is copied",
      `ghcr.io/acme/api@${DIGEST}`,
      "ghcr.io/acme/api:1.9.0",
      `ghcr.io/acme/api@${DIGEST}`,
    ],
    [
      "the target keeps its own spelling of the name",
      "nginx:1.27.1",
      "docker.io/library/nginx:1.27.0",
      "docker.io/library/nginx:1.27.1",
    ],
    ["a registry port is not a tag", "127.0.0.1:5000/api:3", "127.0.0.1:5000/api:2", "127.0.0.1:5000/api:3"],
  ])("whole references: %s", (_, staging, production, want) => {
    const plan = planPromotion(
      env("staging", { "api/deploy.yaml": deployment(staging) }),
      env("production", { "api/deploy.yaml": deployment(production) }),
    );
    expect(plan.files[0]?.content).toBe(deployment(want));
    // The sidecar only production runs is left alone.
    expect(plan.files[0]?.content).toContain("docker.io/library/envoy:1.30");
  });

  it("images only in the target are left alone; images the target lacks are reported, not added", () => {
    const plan = planPromotion(
      env("staging", {
        "api/deploy.yaml": deployment("ghcr.io/acme/api:2.0.0"),
        "cache/deploy.yaml": deployment("redis:7.4"),
      }),
      env("production", { "api/deploy.yaml": deployment("ghcr.io/acme/api:1.0.0") }),
    );
    expect(plan.changes.map((c) => c.image)).toEqual(["ghcr.io/acme/api"]);
    // The envoy sidecar runs in both api apps at the same version: nothing to do, nothing skipped.
    expect(plan.skipped).toEqual([
      { app: "cache", image: "redis", reason: 'production has no app "cache"' },
      { app: "cache", image: "docker.io/library/envoy", reason: 'production has no app "cache"' },
    ]);
  });

  it("--app limits the promotion; an app the source lacks is an error", () => {
    const from = env("staging", {
      "api/deploy.yaml": deployment("ghcr.io/acme/api:2.0.0"),
      "web/kustomization.yaml": overlay("1.4.0"),
    });
    const to = env("production", {
      "api/deploy.yaml": deployment("ghcr.io/acme/api:1.0.0"),
      "web/kustomization.yaml": overlay("1.3.0"),
    });
    expect(planPromotion(from, to, { apps: ["web"] }).changes.map((c) => c.app)).toEqual(["web"]);
    const bad = planPromotion(from, to, { apps: ["nope"] });
    expect(bad.changes).toEqual([]);
    expect(bad.problems).toEqual([
      { severity: "error", app: "nope", message: 'staging has no app "nope" (under apps/staging)' },
    ]);
  });

  it("the same image pinned twice differently in one source app is not promoted", () => {
    const plan = planPromotion(
      env("staging", {
        "api/a.yaml": deployment("ghcr.io/acme/api:2.0.0"),
        "api/b.yaml": deployment("ghcr.io/acme/api:2.1.0"),
      }),
      env("production", { "api/a.yaml": deployment("ghcr.io/acme/api:1.0.0") }),
    );
    expect(plan.files).toEqual([]);
    expect(plan.problems[0]).toMatchObject({ severity: "error", app: "api" });
    expect(plan.problems[0]?.message).toMatch(/pins ghcr.io\/acme\/api twice in api, as 2.0.0 .* and 2.1.0/);
  });

  it("a target pinned by digest is not downgraded to a tag-only source", () => {
    const withDigest = `${overlay("1.3.0")}    digest: ${DIGEST}\n`;
    const plan = planPromotion(
      env("staging", { "web/kustomization.yaml": overlay("1.4.0") }),
      env("production", { "web/kustomization.yaml": withDigest }),
    );
    expect(plan.files).toEqual([]);
    expect(plan.problems[0]?.message).toBe(
      "production pins ghcr.io/acme/web by digest but staging pins only the tag 1.4.0; not promoted",
    );
  });

  it("kustomize: the source's digest is written where the target has a digest field, warned where not", () => {
    const withDigest = (tag: string, d: string) => `${overlay(tag)}    digest: ${d}\n`;
    const other = `sha256:${"b".repeat(64)}`;
    const both = planPromotion(
      env("staging", { "web/kustomization.yaml": withDigest("1.4.0", DIGEST) }),
      env("production", { "web/kustomization.yaml": withDigest("1.3.0", other) }),
    );
    expect(both.files[0]?.content).toBe(withDigest("1.4.0", DIGEST));
    expect(both.changes[0]).toMatchObject({ from: `1.3.0@${other}`, to: `1.4.0@${DIGEST}` });
    const tagOnly = planPromotion(
      env("staging", { "web/kustomization.yaml": withDigest("1.4.0", DIGEST) }),
      env("production", { "web/kustomization.yaml": overlay("1.3.0") }),
    );
    expect(tagOnly.files[0]?.content).toBe(overlay("1.4.0"));
    expect(tagOnly.problems.map((p) => p.severity)).toEqual(["warning"]);
  });

  it("Helm values maps (registry + repository + tag)", () => {
    const values = (tag: string) =>
      `image:\n  registry: ghcr.io\n  repository: acme/worker\n  tag: '${tag}'\n`;
    const plan = planPromotion(
      env("staging", { "worker/values.yaml": values("5.1.0") }),
      env("production", { "worker/values.yaml": values("5.0.0") }),
    );
    expect(plan.files[0]?.content).toBe(values("5.1.0"));
  });

  it("nothing to promote when the target already runs what the source runs", () => {
    const same = { "web/kustomization.yaml": overlay("1.4.0") };
    const plan = planPromotion(env("staging", same), env("production", same));
    expect(plan.changes).toEqual([]);
    expect(plan.files).toEqual([]);
  });

  it("a target file that is not YAML is reported and the others still promote", () => {
    const plan = planPromotion(
      env("staging", { "web/kustomization.yaml": overlay("1.4.0") }),
      env("production", { "web/kustomization.yaml": overlay("1.3.0"), "broken/x.yaml": "a: [\n" }),
    );
    expect(plan.changes).toHaveLength(1);
    expect(plan.problems).toEqual([
      expect.objectContaining({ severity: "warning", file: "apps/production/broken/x.yaml" }),
    ]);
  });

  it("planning again after applying the plan changes nothing (idempotent)", () => {
    const from = env("staging", {
      "web/kustomization.yaml": overlay("1.4.0"),
      "api/d.yaml": deployment(`ghcr.io/acme/api:2@${DIGEST}`),
    });
    const to = env("production", {
      "web/kustomization.yaml": overlay("1.3.0"),
      "api/d.yaml": deployment("ghcr.io/acme/api:1"),
    });
    const first = planPromotion(from, to);
    const applied: EnvTree = {
      ...to,
      files: to.files.map((f) => first.files.find((u) => u.path === f.path) ?? f),
    };
    expect(planPromotion(from, applied).changes).toEqual([]);
  });
});
