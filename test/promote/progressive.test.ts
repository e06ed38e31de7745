/**
 * The progressive-delivery rules, pure: the canary and conformance gates'
 * verdicts, which Canaries of which apps a target declares, when a Failed
 * canary becomes a rollback request and what it pins, and which forward
 * requests it makes obsolete. The conformance command runs as a real process.
 */
import { describe, expect, it } from "vitest";
import { parseFleet } from "../../src/config/fleet.ts";
import type { PullRequest } from "../../src/forge/types.ts";
import { declaredCanaries } from "../../src/promote/canary.ts";
import { runConformance, tail } from "../../src/promote/conformance.ts";
import {
  type CanaryEvidence,
  type ConformanceEvidence,
  evaluateGates,
  gatesMarkdown,
} from "../../src/promote/gates.ts";
import type { EnvTree } from "../../src/promote/plan.ts";
import { obsoleteForward, rollbackDecision, rollbackIntro } from "../../src/promote/rollback.ts";

const REV = "0123456789abcdef0123456789abcdef01234567";
const now = new Date("2026-06-01T12:00:00Z");
const canary = (phase: string | undefined, extra: Partial<CanaryEvidence> = {}): CanaryEvidence => ({
  namespace: "web",
  name: "web",
  ...(phase ? { phase } : {}),
  ...extra,
});
const gate = (canaries: CanaryEvidence[] | { error: string }) =>
  evaluateGates({ canary: true }, { from: "staging", to: "production", revision: REV, canaries, now });

describe("canary gate: the target's previous rollout finished", () => {
  it.each([
    [
      "no Canary for the promoted apps → passed",
      [],
      "passed",
      "no Canary in production for the promoted apps",
    ],
    [
      "Succeeded → passed",
      [canary("Succeeded"), canary("Initialized", { name: "api" })],
      "passed",
      "2 Canaries in production finished: web/web Succeeded, web/api Initialized",
    ],
    [
      "Progressing → waiting, with Flagger's word",
      [
        canary("Progressing", {
          failedChecks: 1,
          threshold: 5,
          message: "Halt web.web advancement request-success-rate 97.50 < 99",
        }),
      ],
      "waiting",
      "rollout still under way in production: web/web Progressing (failed checks 1/5): Halt web.web advancement request-success-rate 97.50 < 99",
    ],
    [
      "no status yet → waiting",
      [canary(undefined)],
      "waiting",
      "rollout still under way in production: web/web not reported",
    ],
    [
      "Failed → failed",
      [
        canary("Succeeded", { name: "api" }),
        canary("Failed", { failedChecks: 5, threshold: 5, message: "Canary failed! Scaling down web.web" }),
      ],
      "failed",
      "rollout failed in production: web/web Failed (failed checks 5/5): Canary failed! Scaling down web.web",
    ],
    [
      "a metric query error says so",
      [
        canary("Progressing", {
          failedChecks: 2,
          threshold: 5,
          message: 'Prometheus query failed: error response: {"status":"error","error":"boom"}',
        }),
      ],
      "waiting",
      'rollout still under way in production: web/web Progressing (failed checks 2/5): Prometheus query failed: error response: {"status":"error","error":"boom"}',
    ],
    [
      "a Canary whose targetRef names no Deployment → failed, naming it",
      [canary(undefined, { targetMissing: "web/webb" })],
      "failed",
      "Canary web/web targets Deployment web/webb, which does not exist",
    ],
    [
      "not applied yet → waiting",
      [canary(undefined, { missing: true })],
      "waiting",
      "not in production's cluster yet: Canary web/web",
    ],
    [
      "the cluster cannot be read → failed, saying why",
      { error: "connect ECONNREFUSED 127.0.0.1:6443" },
      "failed",
      "cannot read the Canaries of production: connect ECONNREFUSED 127.0.0.1:6443",
    ],
  ] as const)("%s", (_name, canaries, state, message) => {
    const [v] = gate(canaries as CanaryEvidence[] | { error: string });
    expect(v).toEqual({ gate: "canary", state, message });
    expect(message).not.toContain("\n");
  });
});

describe("conformance gate: a test against the source at the promoted revision", () => {
  const base = { what: "Job shipmate-system/conformance-0123456789ab", timeout: "5m" };
  it.each([
    [
      { ...base, state: "succeeded", elapsedMs: 42_000 },
      "passed",
      "Job shipmate-system/conformance-0123456789ab passed on staging at 0123456789ab in 42s",
    ],
    [
      { ...base, state: "running", elapsedMs: 61_000 },
      "waiting",
      "Job shipmate-system/conformance-0123456789ab still running on staging at 0123456789ab (1m of 5m)",
    ],
    [
      { ...base, state: "timeout", elapsedMs: 300_000 },
      "failed",
      "Job shipmate-system/conformance-0123456789ab did not finish within 5m on staging at 0123456789ab",
    ],
    [
      { ...base, state: "failed", elapsedMs: 3_000, reason: "BackoffLimitExceeded" },
      "failed",
      "Job shipmate-system/conformance-0123456789ab failed on staging at 0123456789ab: BackoffLimitExceeded",
    ],
    [
      { ...base, state: "error", elapsedMs: 0, reason: "the Job template (a CronJob) does not exist" },
      "failed",
      "Job shipmate-system/conformance-0123456789ab could not run on staging: the Job template (a CronJob) does not exist",
    ],
  ] as const)("%j", (evidence, state, message) => {
    const [v] = evaluateGates(
      { conformance: { timeout: "5m", command: ["true"] } },
      { from: "staging", revision: REV, conformance: evidence as ConformanceEvidence, now },
    );
    expect(v).toMatchObject({ gate: "conformance", state, message });
  });

  it("the log tail and the link go to the request body, not the one-line message", () => {
    const [v] = evaluateGates(
      { conformance: { timeout: "5m", command: ["true"] } },
      {
        from: "staging",
        revision: REV,
        conformance: {
          ...base,
          state: "failed",
          elapsedMs: 1000,
          reason: "exit code 1",
          logs: "FAIL dns\nok ingress",
          link: "kubectl logs -n x job/y",
        },
        now,
      },
    );
    expect(v?.message).toBe(
      "Job shipmate-system/conformance-0123456789ab failed on staging at 0123456789ab: exit code 1",
    );
    const md = gatesMarkdown(v ? [v] : []);
    expect(md).toContain("- ❌ `conformance` failed: Job shipmate-system/conformance-0123456789ab failed");
    expect(md).toContain("Full log: `kubectl logs -n x job/y`");
    expect(md).toContain("  FAIL dns");
  });

  it.each([
    [
      ["sh", "-c", 'echo "testing $SHIPMATE_ENVIRONMENT at $SHIPMATE_REVISION"'],
      "5s",
      "succeeded",
      `testing staging at ${REV}`,
    ],
    [["sh", "-c", "echo dns broken >&2; exit 3"], "5s", "failed", "dns broken"],
    [["sleep", "5"], "300ms", "timeout", ""],
    [["/nonexistent/conformance"], "5s", "error", ""],
  ] as const)("a command %j within %s: %s", async (command, timeout, state, logs) => {
    const ev = await runConformance({
      config: { command: [...command], timeout },
      revision: REV,
      environment: "staging",
      dir: process.cwd(),
      env: { PATH: process.env.PATH ?? "" },
    });
    expect(ev.state).toBe(state);
    expect(ev.logs ?? "").toBe(logs);
    if (state === "failed") expect(ev.reason).toBe("exit code 3");
  });

  it("the log tail is bounded to the last 20 lines", () => {
    const text = Array.from({ length: 30 }, (_, i) => `line ${i}`).join("\n");
    expect(tail(text).split("\n")).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 10}`));
  });
});

const kustomization = (tag: string, digest?: string) =>
  `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base/web
  - canary.yaml
images:
  - name: registry.example/web
    newTag: "${tag}"${digest ? `\n    digest: ${digest}` : ""}
`;
const CANARY_YAML = `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: web
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
`;
const tree = (tag: string, digest?: string): EnvTree => ({
  name: "production",
  path: "apps/production",
  files: [
    { path: "apps/production/web/kustomization.yaml", content: kustomization(tag, digest) },
    { path: "apps/production/web/canary.yaml", content: CANARY_YAML },
    {
      path: "apps/production/api/kustomization.yaml",
      content: kustomization("2.0.0").replace(/web/g, "api"),
    },
  ],
});
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

describe("declared Canaries: from the target's manifests in git", () => {
  it("finds the Canary of a promoted app, with its target; other apps' none", () => {
    expect(declaredCanaries(tree("1.1.0"), ["web"])).toEqual([
      {
        app: "web",
        file: "apps/production/web/canary.yaml",
        namespace: "web",
        name: "web",
        target: { kind: "Deployment", name: "web" },
      },
    ]);
    expect(declaredCanaries(tree("1.1.0"), ["api"])).toEqual([]);
  });
});

describe("rollback: a Failed canary at the version git pins now", () => {
  const failed = canary("Failed", {
    failedChecks: 1,
    threshold: 1,
    message: "Halt web.web advancement request-success-rate 50.00 < 99",
  });
  it.each([
    [
      "the target ran the pinned version → propose the previous tag and digest",
      failed,
      ["registry.example/web:1.1.0@" + D2],
      { commit: "c0ffee", tree: tree("1.0.0", D1) },
      "propose",
    ],
    [
      "not Failed → nothing",
      canary("Succeeded"),
      ["registry.example/web:1.1.0"],
      { commit: "c0ffee", tree: tree("1.0.0", D1) },
      "skip",
    ],
    ["no earlier pin in history → nothing, said", failed, ["registry.example/web:1.1.0"], undefined, "skip"],
    [
      "the target ran another version (git moved on) → nothing",
      failed,
      ["registry.example/web:0.9.0"],
      { commit: "c0ffee", tree: tree("1.0.0", D1) },
      "skip",
    ],
  ] as const)("%s", (_name, c, running, previous, action) => {
    const d = rollbackDecision({ app: "web", canary: c, current: tree("1.1.0", D2), previous, running });
    expect(d.action).toBe(action);
    if (d.action === "propose") {
      expect(d.failedVersion).toBe(`web:1.1.0@${D2}`);
      expect(d.plan.changes.map((x) => [x.app, x.from, x.to])).toEqual([
        ["web", `1.1.0@${D2}`, `1.0.0@${D1}`],
      ]);
      expect(d.plan.files.map((f) => f.path)).toEqual(["apps/production/web/kustomization.yaml"]);
      expect(d.plan.files[0]?.content).toBe(kustomization("1.0.0", D1));
    } else expect(d.reason).toMatch(/^Canary web\/web /);
  });

  it("the body names the failed analysis and Flagger's metric values", () => {
    const intro = rollbackIntro(
      "production",
      "web",
      {
        ...failed,
        events: [
          "Halt web.web advancement request-success-rate 50.00 < 99",
          "Rolling back web.web failed checks threshold reached 1",
        ],
      },
      "web:1.1.0",
      { commit: "c0ffee0123456789", tree: tree("1.0.0") },
    );
    expect(intro).toContain("the Flagger canary `web/web` of `web` failed in `production` at web:1.1.0");
    expect(intro).toContain(
      "- Analysis: web/web Failed (failed checks 1/1): Halt web.web advancement request-success-rate 50.00 < 99",
    );
    expect(intro).toContain("- Flagger: Rolling back web.web failed checks threshold reached 1");
    expect(intro).toContain("from commit `c0ffee012345`");
  });

  it("forward requests into the environment proposing the failed version are obsolete; others stay", () => {
    const pr = (branch: string, to: string, env = "production"): PullRequest => ({
      number: branch.length,
      url: `http://forge/${branch}`,
      branch,
      base: "main",
      title: branch,
      body: "",
      state: "open",
      labels: [],
      meta: {
        v: 1,
        fingerprint: "f",
        changes: [{ image: "registry.example/web", from: "1.0.0", to, files: [] }],
        promotion: { from: "staging", to: env, revision: REV },
      },
    });
    const d = rollbackDecision({
      app: "web",
      canary: failed,
      current: tree("1.1.0"),
      previous: { commit: "c", tree: tree("1.0.0") },
      running: ["registry.example/web:1.1.0"],
    });
    if (d.action !== "propose") throw new Error("expected a proposal");
    const known = [
      pr("shipmate/promote-production", "1.1.0"),
      pr("shipmate/promote-production-api", "1.2.0"),
      pr("shipmate/promote-qa", "1.1.0", "qa"),
      pr("shipmate/rollback-production-web", "1.1.0"),
    ];
    expect(obsoleteForward(known, "production", d.plan).map((p) => p.branch)).toEqual([
      "shipmate/promote-production",
    ]);
  });
});

describe("shipmate.yaml: the canary and conformance gates", () => {
  const fleet = (gates: string) =>
    `apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata:
  name: f
spec:
  environments:
    - name: staging
      path: apps/staging
    - name: production
      path: apps/production
      kubeContext: prod
      gates:
${gates}`;
  it("a Job template by name (namespace shipmate-system unless given), a 10m timeout by default", () => {
    const f = parseFleet(
      fleet("        canary: true\n        conformance:\n          job: {name: conformance}\n"),
    );
    expect(f.spec.environments[1]?.gates).toMatchObject({
      canary: true,
      conformance: { job: { name: "conformance", namespace: "shipmate-system" }, timeout: "10m" },
    });
    expect(f.spec.environments[1]?.kubeContext).toBe("prod");
  });
  it.each([
    [
      "        conformance:\n          timeout: 5m\n",
      "names exactly one of job (a CronJob used as the Job template) or command",
    ],
    [
      "        conformance:\n          job: {name: c}\n          command: [make, test]\n",
      "names exactly one of job",
    ],
    ["        conformance:\n          command: [make]\n          timeout: soon\n", "must be a duration"],
  ])("bad conformance %j: one line naming the field", (gates, message) => {
    expect(() => parseFleet(fleet(gates))).toThrow(message);
  });
});
