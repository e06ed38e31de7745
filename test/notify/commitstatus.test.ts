/**
 * The `github` commit-status provider against the OpenAPI-checked GitHub
 * fake (github.com cannot run here; every request and answer is checked
 * against GitHub's published description): the status lands on the
 * revision's commit with Flux's context and description, and an event
 * repeated with the same outcome sets nothing new. Gitea is exercised for
 * real in ./agent.e2e.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { NotifyEvent } from "../../src/notify/event.ts";
import { createProvider } from "../../src/notify/providers/index.ts";
import { GitHubState, merge, type OpenApiFake, startFakeGitHub } from "../infra/openapi-forge.ts";

const SHA = "89abcdef0123456789abcdef0123456789abcdef";
let st: GitHubState;
let gh: OpenApiFake;

beforeAll(async () => {
  st = new GitHubState("acme", "fleet");
  gh = await startFakeGitHub(st, (defaults) => ({
    ...defaults,
    "repos/create-commit-status": (req) => {
      const body = req.body as { state: string; context: string; description: string };
      const sha = req.params.sha ?? "";
      st.statuses.set(sha, [...(st.statuses.get(sha) ?? []), { context: body.context, state: body.state }]);
      return {
        status: 201,
        body: merge(gh.spec.sample({ $ref: "#/components/schemas/status" }), {
          state: body.state,
          context: body.context,
          description: body.description,
        }),
      };
    },
  }));
});
afterAll(async () => gh?.close());
afterEach(() => {
  expect(gh.violations.splice(0)).toEqual([]);
});

const event = (over: Partial<NotifyEvent> = {}): NotifyEvent => ({
  involvedObject: {
    apiVersion: "kustomize.toolkit.fluxcd.io/v1",
    kind: "Kustomization",
    name: "apps",
    namespace: "flux-system",
  },
  severity: "info",
  timestamp: "2026-01-01T00:00:00Z",
  message: "applied",
  reason: "ReconciliationSucceeded",
  metadata: { revision: `main@sha1:${SHA}` },
  reportingController: "kustomize-controller",
  ...over,
});

describe("github commit status", () => {
  const provider = () =>
    createProvider({
      type: "github",
      label: "Provider flux-system/github",
      address: `${gh.url}/acme/fleet`,
      token: "ghp_notarealtoken123",
      uid: "5e2f1c0a-aaaa-bbbb-cccc-dddddddddddd",
    });

  it("sets Flux's status on the revision, once per outcome", async () => {
    const p = provider();
    await p.post(event(), AbortSignal.timeout(5000));
    await p.post(event({ message: "applied again" }), AbortSignal.timeout(5000));
    expect(st.statuses.get(SHA)).toEqual([{ context: "kustomization/apps/5e2f1c0a", state: "success" }]);
    const creates = gh.requests.filter((r) => r.operationId === "repos/create-commit-status");
    expect(creates).toHaveLength(1);

    await p.post(event({ severity: "error", reason: "HealthCheckFailed" }), AbortSignal.timeout(5000));
    expect(st.statuses.get(SHA)?.at(-1)).toEqual({
      context: "kustomization/apps/5e2f1c0a",
      state: "failure",
    });
  });

  it("an event without a commit revision is refused, not retried", async () => {
    await expect(provider().post(event({ metadata: {} }), AbortSignal.timeout(5000))).rejects.toMatchObject({
      message: "Provider flux-system/github: the event carries no commit revision",
      retryable: false,
    });
  });
});
