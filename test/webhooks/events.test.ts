import { describe, expect, it } from "vitest";
import {
  detectSource,
  type ImagePush,
  parseWebhook,
  type WebhookRequest,
} from "../../src/webhooks/events.ts";
import { githubWebhookPayload } from "../app/payloads.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** One Distribution event as docker-registry 2.8 sends it (docs/notifications.md "Events"). */
function distributionEvent(over: { action?: string; tag?: string; mediaType?: string; repository?: string }) {
  return {
    id: "4d7a1c2e-0f5b-4a8e-9c31-0a1b2c3d4e5f",
    timestamp: "2026-01-01T00:00:00Z",
    action: over.action ?? "push",
    target: {
      mediaType: over.mediaType ?? MANIFEST,
      size: 528,
      digest: DIGEST,
      length: 528,
      repository: over.repository ?? "team/app",
      url: `http://127.0.0.1:5000/v2/${over.repository ?? "team/app"}/manifests/${DIGEST}`,
      ...(over.tag !== undefined ? { tag: over.tag } : {}),
    },
    request: { id: "r1", addr: "127.0.0.1:40000", host: "127.0.0.1:5000", method: "PUT", useragent: "test" },
    actor: {},
    source: { addr: "registry:5000", instanceID: "i1" },
  };
}

const distribution = (...events: ReturnType<typeof distributionEvent>[]): WebhookRequest => ({
  headers: { "content-type": "application/vnd.docker.distribution.events.v1+json" },
  body: { events },
});

/** Docker Hub's documented example payload (docs.docker.com, "Example webhook payload"). */
const dockerHub = (repoName: string, tag: string): WebhookRequest => ({
  headers: { "content-type": "application/json" },
  body: {
    callback_url: `https://registry.hub.docker.com/u/${repoName}/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/`,
    push_data: { pushed_at: 1417566161, pusher: "trustedbuilder", tag },
    repository: {
      comment_count: 0,
      date_created: 1417494799,
      description: "",
      is_official: false,
      is_private: true,
      is_trusted: true,
      name: repoName.split("/")[1],
      namespace: repoName.split("/")[0],
      owner: repoName.split("/")[0],
      repo_name: repoName,
      repo_url: `https://registry.hub.docker.com/u/${repoName}/`,
      star_count: 0,
      status: "Active",
    },
  },
});

/** Harbor's "Default" payload for an artifact push (goharbor.io configure-webhooks). */
const harbor = (type: string, resourceUrl: string, tag: string): WebhookRequest => ({
  headers: { "content-type": "application/json" },
  body: {
    type,
    occur_at: 1680501893,
    operator: "admin",
    event_data: {
      resources: [{ digest: DIGEST, tag, resource_url: resourceUrl }],
      repository: {
        date_created: 1680501893,
        name: "app",
        namespace: "library",
        repo_full_name: "library/app",
        repo_type: "private",
      },
    },
  },
});

const harborCloud = (tag: string): WebhookRequest => ({
  headers: { "content-type": "application/cloudevents+json" },
  body: {
    specversion: "1.0",
    id: "1",
    source: "/projects/1/webhook/policies/1",
    type: "harbor.artifact.pushed",
    datacontenttype: "application/json",
    time: "2026-01-01T00:00:00Z",
    operator: "admin",
    data: {
      resources: [{ digest: DIGEST, tag, resource_url: `harbor.example.test/library/app:${tag}` }],
      repository: { name: "app", namespace: "library", repo_full_name: "library/app", repo_type: "private" },
    },
  },
});

const ghcr = (action: string, packageType: string, tag: string): WebhookRequest => ({
  headers: { "x-github-event": "registry_package", "content-type": "application/json" },
  body: githubWebhookPayload("registry-package-published", {
    action,
    registry_package: {
      name: "api",
      namespace: "example-org",
      package_type: packageType,
      owner: { login: "Example-Org" },
      package_version: {
        id: 7,
        name: DIGEST,
        description: "",
        summary: "",
        html_url: "https://github.example.test/orgs/example-org/packages/container/api/7",
        metadata: [],
        package_files: [],
        installation_command: `docker pull ghcr.io/example-org/api:${tag}`,
        version: DIGEST,
        package_url: `ghcr.io/example-org/api:${tag}`,
        container_metadata: { tag: { name: tag, digest: DIGEST }, labels: {}, manifest: {} },
      },
      registry: {
        about_url: "https://ghcr.io",
        name: "GitHub CONTAINER registry",
        type: "docker",
        url: "https://ghcr.io",
        vendor: "GitHub Inc",
      },
    },
  }),
});

type Row = [string, WebhookRequest, ImagePush[], number];

describe("registry webhook payloads", () => {
  it.each<Row>([
    [
      "distribution: a manifest pushed by tag is a push of that tag",
      distribution(distributionEvent({ tag: "1.2.3" })),
      [{ image: "127.0.0.1:5000/team/app", tag: "1.2.3", digest: DIGEST }],
      0,
    ],
    [
      "distribution: blob uploads, pulls and by-digest pushes move no tag",
      distribution(
        distributionEvent({ mediaType: "application/octet-stream" }),
        distributionEvent({ action: "pull", tag: "1.2.3" }),
        distributionEvent({}),
        distributionEvent({ action: "delete", tag: "1.0.0" }),
      ),
      [],
      4,
    ],
    [
      "distribution: several repositories in one envelope",
      distribution(
        distributionEvent({ tag: "2.0.0", repository: "team/api" }),
        distributionEvent({ tag: "v9", repository: "web" }),
      ),
      [
        { image: "127.0.0.1:5000/team/api", tag: "2.0.0", digest: DIGEST },
        { image: "127.0.0.1:5000/web", tag: "v9", digest: DIGEST },
      ],
      0,
    ],
    [
      "docker hub: user repositories live on docker.io",
      dockerHub("svendowideit/testhook", "latest"),
      [{ image: "docker.io/svendowideit/testhook", tag: "latest" }],
      0,
    ],
    [
      "docker hub: official images are library/<name>",
      dockerHub("library/nginx", "1.27"),
      [{ image: "docker.io/library/nginx", tag: "1.27" }],
      0,
    ],
    [
      "ghcr: a container version published with a tag",
      ghcr("published", "CONTAINER", "1.4.0"),
      [{ image: "ghcr.io/example-org/api", tag: "1.4.0", digest: DIGEST }],
      0,
    ],
    ["ghcr: npm packages are not images", ghcr("published", "npm", "1.4.0"), [], 1],
    [
      "harbor: PUSH_ARTIFACT names the registry in resource_url",
      harbor("PUSH_ARTIFACT", "harbor.example.test/library/app:v1.0", "v1.0"),
      [{ image: "harbor.example.test/library/app", tag: "v1.0", digest: DIGEST }],
      0,
    ],
    [
      "harbor: CloudEvents format",
      harborCloud("v2.0"),
      [{ image: "harbor.example.test/library/app", tag: "v2.0", digest: DIGEST }],
      0,
    ],
    [
      "harbor: scans and pulls move nothing",
      harbor("SCANNING_COMPLETED", "harbor.example.test/library/app:v1", "v1"),
      [],
      1,
    ],
  ])("%s", (_name, req, pushes, ignored) => {
    const parsed = parseWebhook(req);
    expect(parsed).toEqual({ ok: true, source: detectSource(req), pushes, ignored });
  });

  it.each<[string, WebhookRequest, string]>([
    [
      "distribution: ?registry= names the registry as policies write it",
      { ...distribution(distributionEvent({ tag: "1.0.0" })), registry: "registry.example.test" },
      "registry.example.test/team/app",
    ],
    [
      "docker hub: ?registry= points at a mirror",
      { ...dockerHub("org/app", "1"), registry: "127.0.0.1:5000" },
      "127.0.0.1:5000/org/app",
    ],
  ])("%s", (_name, req, image) => {
    const parsed = parseWebhook(req);
    expect(parsed.ok && parsed.pushes.map((p) => p.image)).toEqual([image]);
  });

  it.each<[string, WebhookRequest, "unknown" | "invalid"]>([
    [
      "a GitHub event that is not about packages is unknown",
      { headers: { "x-github-event": "issues" }, body: {} },
      "unknown",
    ],
    ["a JSON body of no known shape is unknown", { headers: {}, body: { hello: "world" } }, "unknown"],
    ["a JSON array is unknown", { headers: {}, body: [1, 2] }, "unknown"],
    [
      "a Distribution envelope with malformed events is invalid",
      {
        headers: { "content-type": "application/vnd.docker.distribution.events.v1+json" },
        body: { events: [{ action: 1 }] },
      },
      "invalid",
    ],
    [
      "a Docker Hub payload without repo_name is invalid",
      { headers: {}, body: { push_data: { tag: "x" }, repository: {} } },
      "invalid",
    ],
    [
      "a repository name no registry accepts is invalid",
      { headers: {}, body: { push_data: { tag: "x" }, repository: { repo_name: "UPPER/Case Name" } } },
      "invalid",
    ],
  ])("%s", (_name, req, reason) => {
    const parsed = parseWebhook(req);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toBe(reason);
  });
});
