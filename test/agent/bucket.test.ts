/**
 * Bucket sources on the real API server, reading a real S3-compatible
 * server (versitygw, scripts/provision/80-s3.sh): Flux's revision, the
 * steady-state cost (one listing, no write), credentials from a Secret,
 * the listing bound, and refusals. Requests are counted by a pass-through
 * proxy in front of the server.
 */
import { createHash } from "node:crypto";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { stringify } from "yaml";
import type { AgentOptions } from "../../src/agent/agent.ts";
import { refusedFields } from "../../src/agent/fields/support.ts";
import {
  BUCKET_FIELDS,
  BucketSpec,
  bareEtag,
  bucketCredentials,
  bucketRevision,
} from "../../src/agent/sources/bucket.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { type CountingProxy, countingProxy } from "../infra/proxy.ts";
import { startS3, type TestS3 } from "../infra/s3.ts";
import { cliLifecycle, configMap, getObject, kustomization, namespace } from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

let s3: TestS3;
let proxy: CountingProxy;
const never = new AbortController().signal;

const k = kubeSuite({
  name: "bucket",
  namespaces: ["shipmate-system"],
  alongside: async () => {
    s3 = await startS3();
  },
});
beforeAll(async () => {
  proxy = await countingProxy(s3.endpoint);
  const res = await k.client.raw({
    method: "POST",
    path: "/api/v1/namespaces/shipmate-system/secrets",
    body: {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s3-creds", namespace: "shipmate-system" },
      stringData: { accesskey: s3.accessKey, secretkey: s3.secretKey },
    },
  });
  if (res.code !== 201) throw new Error(`secret s3-creds: ${res.code}`);
});
afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
});

const bucket = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "Bucket",
  metadata: { name, namespace: "shipmate-system" },
  spec: {
    interval: "10m",
    provider: "generic",
    endpoint: proxy.host,
    insecure: true,
    secretRef: { name: "s3-creds" },
    ...spec,
  },
});

async function bucketStatus(name: string) {
  const obj = await getObject(
    k.client,
    `/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/buckets/${name}`,
  );
  const cond = (type: string) =>
    (obj?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
  return { obj, artifact: obj?.status?.artifact, ready: cond("Ready"), stalled: cond("Stalled") };
}

function agentFor(name: string, files: Record<string, object[]>, opts: Partial<AgentOptions> = {}) {
  const { repo, agent } = k.setup(name, opts);
  repo.commit(files);
  return agent;
}

/** source-controller's formula, written out independently: sha256 over `<key> <etag>\n`, keys sorted. */
async function fluxRevision(name: string, prefix: string): Promise<string> {
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: name, Prefix: prefix }));
  const lines = (listed.Contents ?? [])
    .map((o) => `${o.Key} ${(o.ETag ?? "").replace(/"/g, "")}\n`)
    .sort()
    .join("");
  return `sha256:${createHash("sha256").update(lines).digest("hex")}`;
}

const cm = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;

describe("Bucket (generic, S3-compatible)", () => {
  it("syncs a prefix; the revision is Flux's; a second pass is one listing and no write; a changed object is applied", async () => {
    await s3.createBucket("fleet");
    await s3.put(
      "fleet",
      "apps/app.yaml",
      [namespace("t-bkt"), configMap("web", "t-bkt", { v: "1" })].map((d) => stringify(d)).join("---\n"),
    );
    await s3.put("fleet", "other/ignored.yaml", stringify(configMap("other", "t-bkt", { v: "x" })));
    const agent = agentFor("t-bkt", {
      "clusters/test/sources.yaml": [
        bucket("t-bkt-src", { bucketName: "fleet", prefix: "apps/" }),
        kustomization("t-bkt-apps", { path: "./apps", sourceRef: { kind: "Bucket", name: "t-bkt-src" } }),
      ],
    });
    const first = await agent.once();
    expect(first.reconciled.find((k) => k.name === "t-bkt-apps")?.ready).toBe(true);
    expect((await getObject(k.client, cm("t-bkt", "web")))?.data).toEqual({ v: "1" });
    expect(await getObject(k.client, cm("t-bkt", "other"))).toBeUndefined();
    const s1 = await bucketStatus("t-bkt-src");
    expect(s1.ready).toMatchObject({ status: "True", reason: "Succeeded" });
    expect(s1.artifact.revision).toBe(await fluxRevision("fleet", "apps/"));

    proxy.log.length = 0;
    const steady = await agent.pass(never, true);
    expect(steady.writes).toBe(0);
    expect(proxy.log).toEqual(["GET /fleet/"]);

    await s3.put(
      "fleet",
      "apps/app.yaml",
      [namespace("t-bkt"), configMap("web", "t-bkt", { v: "2" })].map((d) => stringify(d)).join("---\n"),
    );
    await agent.pass(never, true);
    expect((await getObject(k.client, cm("t-bkt", "web")))?.data).toEqual({ v: "2" });
    expect((await bucketStatus("t-bkt-src")).artifact.revision).toBe(await fluxRevision("fleet", "apps/"));

    // The CLI, as flux's `get|reconcile|suspend|resume source bucket`, with the agent answering.
    await cliLifecycle({
      client: k.client,
      kubeconfig: k.kube.kubeconfig,
      get: ["get", "sources", "bucket"],
      target: ["source", "bucket"],
      path: "/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/buckets/t-bkt-src",
      what: "Bucket shipmate-system/t-bkt-src",
      pass: () => agent.pass(never, true),
    });
  });

  it("a listing past the bound fails with one line; without credentials the store's refusal is one line; no secret is printed", async () => {
    await s3.createBucket("many");
    for (let i = 0; i < 25; i++) await s3.put("many", `o/${String(i).padStart(3, "0")}.yaml`, `a: ${i}\n`);
    const agent = agentFor(
      "t-bnd",
      {
        "clusters/test/sources.yaml": [
          bucket("t-bnd-many", { bucketName: "many" }),
          bucket("t-bnd-anon", { bucketName: "many", secretRef: undefined }),
          bucket("t-bnd-sts", {
            bucketName: "many",
            sts: { provider: "ldap", endpoint: "https://sts.example" },
          }),
        ],
      },
      { bucketLimits: { objects: 20 } },
    );
    await agent.once();
    const many = await bucketStatus("t-bnd-many");
    expect(many.ready).toMatchObject({ status: "False", reason: "BucketOperationFailed" });
    expect(many.ready.message).toMatch(
      /bucket 'many' at 127\.0\.0\.1:\d+ lists more than 20 objects, the most the agent fetches/,
    );
    const anon = await bucketStatus("t-bnd-anon");
    expect(anon.ready).toMatchObject({ status: "False", reason: "BucketOperationFailed" });
    expect(anon.ready.message).toMatch(/listing objects from bucket 'many' .* failed: \w+ \(HTTP 403\)/);
    const sts = await bucketStatus("t-bnd-sts");
    expect(sts.stalled).toMatchObject({ status: "True", reason: "UnsupportedField" });
    expect(sts.ready.message).toContain(
      "spec.sts (security token service authentication is not implemented)",
    );
    for (const s of [many, anon, sts]) expect(s.ready.message).not.toContain("\n");
    expect(JSON.stringify([many, anon, sts])).not.toContain(s3.secretKey);
  });

  it("the bucket's .sourceignore and spec.ignore leave objects out of the artifact and its revision, as source-controller", async () => {
    await s3.createBucket("ign");
    await s3.put("ign", ".sourceignore", "drafts/\n");
    await s3.put(
      "ign",
      "apps/a.yaml",
      [namespace("t-ign"), configMap("a", "t-ign", { a: "1" })].map((d) => stringify(d)).join("---\n"),
    );
    await s3.put("ign", "apps/drafts/b.yaml", stringify(configMap("draft", "t-ign", { b: "1" })));
    await s3.put("ign", "apps/local.yaml", stringify(configMap("local", "t-ign", { c: "1" })));
    const sources = (ignore?: string) => ({
      "clusters/test/sources.yaml": [
        bucket("t-ign-src", { bucketName: "ign", ...(ignore ? { ignore } : {}) }),
        kustomization("t-ign-apps", { path: "./apps", sourceRef: { kind: "Bucket", name: "t-ign-src" } }),
      ],
    });
    const { repo, agent } = k.setup("t-ign");
    repo.commit(sources());
    await agent.once();
    expect((await getObject(k.client, cm("t-ign", "a")))?.data).toEqual({ a: "1" });
    expect((await getObject(k.client, cm("t-ign", "local")))?.data).toEqual({ c: "1" });
    expect(await getObject(k.client, cm("t-ign", "draft"))).toBeUndefined();
    // The revision covers the kept objects only (source-controller's index skips the ignored keys).
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: "ign" }));
    const kept = (listed.Contents ?? [])
      .filter((o) => o.Key !== ".sourceignore" && !o.Key?.includes("/drafts/"))
      .map((o) => `${o.Key} ${(o.ETag ?? "").replace(/"/g, "")}\n`)
      .sort()
      .join("");
    expect((await bucketStatus("t-ign-src")).artifact.revision).toBe(
      `sha256:${createHash("sha256").update(kept).digest("hex")}`,
    );

    // spec.ignore adds to the file's rules: local.yaml goes too, and is pruned.
    repo.commit(sources("**/local.yaml\n"));
    await agent.pass(never, true);
    await agent.pass(never, true);
    expect(await getObject(k.client, cm("t-ign", "local"))).toBeUndefined();
    expect((await getObject(k.client, cm("t-ign", "a")))?.data).toEqual({ a: "1" });
  });
});

describe("Bucket rules", () => {
  it.each([
    ["a quoted ETag loses its quotes", '"abc"', "abc"],
    ["a weak one too", 'W/"abc"', "abc"],
    ["a bare one stays", "abc", "abc"],
  ])("%s", (_rule, etag, bare) => {
    expect(bareEtag(etag)).toBe(bare);
  });
  it("the revision is sha256 over '<key> <etag>\\n' in key order, whatever order the store listed", () => {
    const a = bucketRevision(
      new Map([
        ["b.yaml", "2"],
        ["a.yaml", "1"],
      ]),
    );
    const b = bucketRevision(
      new Map([
        ["a.yaml", "1"],
        ["b.yaml", "2"],
      ]),
    );
    expect(a).toBe(b);
    expect(a).toBe(`sha256:${createHash("sha256").update("a.yaml 1\nb.yaml 2\n").digest("hex")}`);
    expect(
      bucketRevision(
        new Map([
          ["a.yaml", "1"],
          ["b.yaml", "3"],
        ]),
      ),
    ).not.toBe(a);
  });
  it.each([
    [
      "the generic example passes",
      { provider: "generic", region: "us-east-1", prefix: "p/", insecure: true },
      [],
    ],
    ["a cloud provider is refused", { provider: "aws" }, ["spec.provider"]],
    [
      "STS, TLS, proxy and service account are refused; ignore rules are honoured",
      {
        sts: { provider: "ldap" },
        certSecretRef: { name: "c" },
        proxySecretRef: { name: "p" },
        serviceAccountName: "s",
        ignore: "x",
      },
      ["spec.sts", "spec.certSecretRef", "spec.proxySecretRef", "spec.serviceAccountName"],
    ],
  ])("fields: %s", (_rule, extra, expected) => {
    expect(
      refusedFields({ bucketName: "b", endpoint: "s3.example", interval: "5m", ...extra }, BUCKET_FIELDS),
    ).toEqual(expected);
  });
  it("an endpoint with a scheme is refused with a hint", () => {
    expect(
      BucketSpec.safeParse({ bucketName: "b", endpoint: "https://s3.example", interval: "5m" }).error
        ?.issues[0]?.message,
    ).toBe("endpoint is host[:port], without a scheme (insecure: true for http)");
  });
  it("a Secret without accesskey/secretkey is refused, naming its keys", () => {
    expect(() => bucketCredentials({ username: "eA==" }, "secret ns/s")).toThrow(
      'secret ns/s has username; the shipmate agent reads "accesskey" and "secretkey"',
    );
  });
});
