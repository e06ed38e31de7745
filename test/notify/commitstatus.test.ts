/**
 * The `github` and `gitlab` commit-status providers against the
 * OpenAPI-checked GitHub and GitLab fakes (neither can run here; every
 * request and answer is checked against the forge's description — GitLab's
 * `POST /projects/:id/statuses/:sha` written into the fake's document from
 * GitLab's REST reference): the status lands on the revision's commit with
 * Flux's state, context and description, an event repeated with the same
 * outcome sets nothing new, and the token travels in its header only.
 * Gitea is exercised for real in ./agent.e2e.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { NotifyEvent } from "../../src/notify/event.ts";
import { MAX_DESCRIPTION } from "../../src/notify/providers/commitstatus.ts";
import { createProvider } from "../../src/notify/providers/index.ts";
import {
  GitHubState,
  GitLabState,
  merge,
  type OpenApiFake,
  startFakeGitHub,
  startFakeGitLab,
} from "../infra/openapi-forge.ts";

const SHA = "89abcdef0123456789abcdef0123456789abcdef";
let st: GitHubState;
let gh: OpenApiFake;
let glState: GitLabState;
let gl: OpenApiFake;

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
beforeAll(async () => {
  glState = new GitLabState("acme/platform/fleet");
  gl = await startFakeGitLab(glState);
});
afterAll(async () => {
  await Promise.all([gh?.close(), gl?.close()]);
});
afterEach(() => {
  expect(gh.violations.splice(0)).toEqual([]);
  expect(gl.violations.splice(0)).toEqual([]);
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

describe("gitlab commit status", () => {
  const TOKEN = "glpat-notarealtoken-0123456789";
  const provider = () =>
    createProvider({
      type: "gitlab",
      label: "Provider flux-system/gitlab",
      address: `${gl.url}/acme/platform/fleet`,
      token: TOKEN,
      uid: "0c9c2e41-aaaa-bbbb-cccc-dddddddddddd",
    });
  const sha = (n: number) => `${String(n).repeat(8)}`.padEnd(40, "0").slice(0, 40);
  const posted = () => gl.requests.filter((r) => r.operationId === "createCommitStatus");

  it.each([
    [
      "an info event is success",
      { severity: "info", reason: "ReconciliationSucceeded" },
      "success",
      "reconciliation succeeded",
    ],
    [
      "an error event is failed",
      { severity: "error", reason: "HealthCheckFailed" },
      "failed",
      "health check failed",
    ],
    ["another error reason", { severity: "error", reason: "ArtifactFailed" }, "failed", "artifact failed"],
  ] as const)(
    "%s, named kind/name/uid, no target_url (Flux sets none)",
    async (_n, over, state, description) => {
      const commit = sha(posted().length + 1);
      await provider().post(
        event({ ...over, metadata: { revision: `main@sha1:${commit}` } }),
        AbortSignal.timeout(5000),
      );
      expect(glState.statuses.get(commit)).toEqual([
        { name: "kustomization/apps/0c9c2e41", status: state, description, target_url: null },
      ]);
    },
  );

  it("the same outcome again sets nothing; a new one is added on top", async () => {
    const commit = sha(7);
    const p = provider();
    await p.post(event({ metadata: { revision: `main@sha1:${commit}` } }), AbortSignal.timeout(5000));
    const before = posted().length;
    await p.post(
      event({ message: "again", metadata: { revision: `main@sha1:${commit}` } }),
      AbortSignal.timeout(5000),
    );
    expect(posted()).toHaveLength(before);
    await p.post(
      event({
        severity: "error",
        reason: "HealthCheckFailed",
        metadata: { revision: `main@sha1:${commit}` },
      }),
      AbortSignal.timeout(5000),
    );
    expect(glState.statuses.get(commit)?.map((x) => x.status)).toEqual(["failed", "success"]);
  });

  it("a Progressing event sets no status", async () => {
    const before = posted().length;
    await provider().post(event({ reason: "Progressing" }), AbortSignal.timeout(5000));
    expect(posted()).toHaveLength(before);
  });

  it("a long reason is cut to the description limit, its start kept", async () => {
    const commit = sha(8);
    const reason = `Dependency${"NotReady".repeat(30)}`;
    await provider().post(
      event({ severity: "error", reason, metadata: { revision: `main@sha1:${commit}` } }),
      AbortSignal.timeout(5000),
    );
    const description = glState.statuses.get(commit)?.[0]?.description ?? "";
    expect(description).toHaveLength(MAX_DESCRIPTION);
    expect(description.startsWith("dependency not ready not ready")).toBe(true);
    expect(description.endsWith("…")).toBe(true);
  });

  it("the token goes in GitLab's token header only, and a refusal never prints it", async () => {
    const headers: (string | undefined)[] = [];
    gl.inject((req) => {
      headers.push(req.headers["private-token"] ?? req.headers.authorization);
      expect(JSON.stringify([req.query, req.body, req.path])).not.toContain(TOKEN);
      return undefined;
    }, 2);
    await provider().post(
      event({ metadata: { revision: `main@sha1:${sha(9)}` } }),
      AbortSignal.timeout(5000),
    );
    expect(headers.length).toBeGreaterThan(0);
    for (const h of headers) expect(h).toContain(TOKEN);

    gl.inject(() => ({ status: 401, body: { message: "401 Unauthorized" } }), 1);
    const err = await provider()
      .post(event({ metadata: { revision: `main@sha1:${sha(5)}` } }), AbortSignal.timeout(5000))
      .then(
        () => undefined,
        (e: Error & { retryable?: boolean }) => e,
      );
    expect(err?.message).toMatch(/^Provider flux-system\/gitlab: /);
    expect(err?.message).not.toContain(TOKEN);
    expect(err?.retryable).toBe(false);
  });

  it("an address that is not the project's URL is refused when the provider is made", () => {
    expect(() =>
      createProvider({ type: "gitlab", label: "Provider flux-system/gitlab", address: gl.url, token: TOKEN }),
    ).toThrow("Provider flux-system/gitlab: address must be the repository's URL (https://host/owner/name)");
  });
});
