/**
 * OCIRepository sources on the real API server, pulling from Debian's
 * docker-registry what `shipmate push artifact` published: tag, semver
 * (with semverFilter) and digest references; the steady-state cost (one
 * manifest HEAD, no write); credentials from a dockerconfigjson Secret;
 * hostile or oversized artifacts refused with one line and nothing applied.
 *
 * Registry requests are counted by a pass-through HTTP proxy in front of
 * the real registry: the OCIRepository URLs name the proxy.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { stringify } from "yaml";
import { artifactDocuments, FLUX_CONTENT_MEDIA_TYPE, pushArtifact } from "../../src/registry/artifact.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { envKey } from "../../src/registry/credentials.ts";
import { sha256 } from "../../src/registry/tar.ts";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { type CountingProxy, countingProxy } from "../infra/proxy.ts";
import { startRegistry, type TestRegistry } from "../infra/registry.ts";
import { cliLifecycle, configMap, getObject, ksStatus, kustomization, namespace } from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

let reg: TestRegistry;
let secure: TestRegistry;
let proxy: CountingProxy;
const never = new AbortController().signal;
const scratch = mkdtempSync(join(tmpdir(), "shipmate-oci-"));

const k = kubeSuite({
  name: "oci",
  alongside: async () => {
    [reg, secure] = await Promise.all([
      startRegistry(),
      startRegistry({
        auth: "token",
        users: [
          {
            username: "reader",
            password: "reader-secret-7f3a9c",
            access: [{ repository: "*", actions: ["pull"] }],
          },
        ],
      }),
    ]);
  },
});
beforeAll(async () => {
  proxy = await countingProxy(reg.host);
});
afterAll(async () => {
  await proxy?.close();
  await Promise.all([reg?.stop(), secure?.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});

let n = 0;
/** A directory of YAML documents, as a CI would publish it. */
function content(files: Record<string, object[]>): string {
  const dir = join(scratch, `content-${n++}`);
  for (const [path, docs] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), docs.map((d) => stringify(d)).join("---\n"));
  }
  return dir;
}

async function push(target: TestRegistry, ref: string, dir: string, extra: string[] = []): Promise<string> {
  const env =
    target.auth === "none"
      ? {}
      : {
          [`${envKey(target.host)}_USERNAME`]: target.admin.username,
          [`${envKey(target.host)}_PASSWORD`]: target.admin.password,
        };
  const r = await runCli(
    ["push", "artifact", `oci://${target.host}/${ref}`, "--path", dir, "--json", ...extra],
    { env },
  );
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout).digest as string;
}

const ociRepo = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "OCIRepository",
  metadata: { name, namespace: "shipmate-system" },
  spec: { interval: "10m", ...spec },
});

const fromOci = (name: string, source: string, spec: Record<string, unknown> = {}) =>
  kustomization(name, { path: "./", sourceRef: { kind: "OCIRepository", name: source }, ...spec });

async function ociStatus(name: string) {
  const obj = await getObject(
    k.client,
    `/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/ocirepositories/${name}`,
  );
  const cond = (type: string) =>
    (obj?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
  return { obj, artifact: obj?.status?.artifact, ready: cond("Ready"), stalled: cond("Stalled") };
}

const cm = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;

describe("OCIRepository from an artifact pushed with shipmate push artifact", () => {
  it("syncs a tag; a second pass costs one manifest HEAD and no write; a moved tag is pulled and applied", async () => {
    const v1 = await push(
      reg,
      "apps/web:stable",
      content({ "app.yaml": [namespace("t-oci"), configMap("web", "t-oci", { v: "1" })] }),
      ["--source", "https://git.example/apps.git", "--revision", "main@sha1:1111"],
    );
    const repo = k.fleet();
    repo.commit({
      "clusters/test/sources.yaml": [
        ociRepo("t-oci-web", { url: `oci://${proxy.host}/apps/web`, ref: { tag: "stable" } }),
        fromOci("t-oci-web", "t-oci-web"),
      ],
    });
    const agent = k.agent(repo, "t-oci");
    const first = await agent.once();
    expect(first.reconciled.map((k) => [k.name, k.ready, k.message])).toContainEqual([
      "t-oci-web",
      true,
      expect.any(String),
    ]);
    expect((await getObject(k.client, cm("t-oci", "web")))?.data).toEqual({ v: "1" });
    const s1 = await ociStatus("t-oci-web");
    expect(s1.ready).toMatchObject({ status: "True", reason: "Succeeded" });
    expect(s1.artifact.revision).toBe(`stable@${v1}`);
    expect(s1.artifact.metadata).toMatchObject({
      "org.opencontainers.image.source": "https://git.example/apps.git",
      "org.opencontainers.image.revision": "main@sha1:1111",
    });
    expect((await ksStatus(k.client, "t-oci-web")).ks?.status.lastAppliedRevision).toBe(`stable@${v1}`);

    proxy.log.length = 0;
    const steady = await agent.pass(never, true);
    expect(steady.reconciled.find((k) => k.name === "t-oci-web")?.ready).toBe(true);
    expect(proxy.log).toEqual(["HEAD /v2/apps/web/manifests/stable"]);
    expect(steady.writes).toBe(0);

    const v2 = await push(
      reg,
      "apps/web:stable",
      content({ "app.yaml": [namespace("t-oci"), configMap("web", "t-oci", { v: "2" })] }),
    );
    proxy.log.length = 0;
    await agent.pass(never, true);
    expect(proxy.log).toEqual([
      "HEAD /v2/apps/web/manifests/stable",
      `GET /v2/apps/web/manifests/${v2}`,
      expect.stringMatching(/^GET \/v2\/apps\/web\/blobs\/sha256:/),
    ]);
    expect((await getObject(k.client, cm("t-oci", "web")))?.data).toEqual({ v: "2" });
    expect((await ociStatus("t-oci-web")).artifact.revision).toBe(`stable@${v2}`);

    // The CLI, as flux's `get|reconcile|suspend|resume source oci`, with the agent answering.
    await cliLifecycle({
      client: k.client,
      kubeconfig: k.kube.kubeconfig,
      get: ["get", "sources", "oci"],
      target: ["source", "oci"],
      path: "/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/ocirepositories/t-oci-web",
      what: "OCIRepository shipmate-system/t-oci-web",
      pass: () => agent.pass(never, true),
    });
  });

  it("Flux's exclusions apply to the extracted layer: defaults, then spec.ignore (which replaces them but keeps VCS files out)", async () => {
    await push(
      reg,
      "apps/ignored:v1",
      content({
        "app.yaml": [namespace("t-oci-ign"), configMap("app", "t-oci-ign", { v: "1" })],
        // A default exclusion (a CI config file): not rendered, though it holds a manifest.
        "cloudbuild.yaml": [configMap("from-ci", "t-oci-ign", { v: "ci" })],
        "extra/more.yaml": [configMap("extra", "t-oci-ign", { v: "x" })],
      }),
    );
    const repo = k.fleet();
    repo.commit({
      "clusters/test/sources.yaml": [
        ociRepo("t-oign-src", { url: `oci://${reg.host}/apps/ignored`, ref: { tag: "v1" }, insecure: true }),
        fromOci("t-oign-app", "t-oign-src"),
      ],
    });
    const agent = k.agent(repo, "t-oign");
    await agent.once();
    expect((await getObject(k.client, cm("t-oci-ign", "app")))?.data).toEqual({ v: "1" });
    expect((await getObject(k.client, cm("t-oci-ign", "extra")))?.data).toEqual({ v: "x" });
    expect(await getObject(k.client, cm("t-oci-ign", "from-ci"))).toBeUndefined();

    // spec.ignore: its patterns replace the defaults (the CI file comes in), extra/ goes.
    repo.commit({
      "clusters/test/sources.yaml": [
        ociRepo("t-oign-src", {
          url: `oci://${reg.host}/apps/ignored`,
          ref: { tag: "v1" },
          insecure: true,
          ignore: "extra/\n",
        }),
        fromOci("t-oign-app", "t-oign-src"),
      ],
    });
    // The pass that applies the new spec fetches the source again; the next renders from it.
    await agent.pass(never, true);
    await agent.pass(never, true);
    expect((await getObject(k.client, cm("t-oci-ign", "from-ci")))?.data).toEqual({ v: "ci" });
    expect(await getObject(k.client, cm("t-oci-ign", "extra"))).toBeUndefined();
  });

  it("semver picks the highest matching tag, semverFilter narrows the tags first, a digest pins (and wins over a tag)", async () => {
    const digests: Record<string, string> = {};
    for (const tag of ["1.0.0", "1.1.0", "2.0.0", "1.2.0-rc.1"])
      digests[tag] = await push(
        reg,
        `apps/sem:${tag}`,
        content({
          "app.yaml": [namespace("t-sem"), configMap(`v-${tag.replace(/\./g, "-")}`, "t-sem", { tag })],
        }),
      );
    const repo = k.fleet();
    repo.commit({
      "clusters/test/sources.yaml": [
        ociRepo("t-sem-range", { url: `oci://${proxy.host}/apps/sem`, ref: { semver: ">=1.0.0 <2.0.0" } }),
        ociRepo("t-sem-rc", {
          url: `oci://${proxy.host}/apps/sem`,
          ref: { semver: ">=1.0.0-0", semverFilter: ".*-rc.*" },
        }),
        ociRepo("t-sem-pin", {
          url: `oci://${proxy.host}/apps/sem`,
          ref: { tag: "2.0.0", digest: digests["1.0.0"] },
        }),
      ],
    });
    const agent = k.agent(repo, "t-sem");
    await agent.once();
    expect((await ociStatus("t-sem-range")).artifact.revision).toBe(`1.1.0@${digests["1.1.0"]}`);
    expect((await ociStatus("t-sem-rc")).artifact.revision).toBe(`1.2.0-rc.1@${digests["1.2.0-rc.1"]}`);
    expect((await ociStatus("t-sem-pin")).artifact.revision).toBe(digests["1.0.0"]);

    // A pinned digest needs no request at all once held; a semver range lists tags and HEADs the pick.
    proxy.log.length = 0;
    const again = await agent.pass(never, true);
    expect(again.writes).toBe(0);
    expect(
      proxy.log.filter((l) => l.startsWith("GET /v2/apps/sem/manifests") || l.includes("/blobs/")),
    ).toEqual([]);
    expect(proxy.log.filter((l) => l === "HEAD /v2/apps/sem/manifests/1.1.0")).toHaveLength(1);
  });

  it("credentials come from a dockerconfigjson Secret; without them the pull fails with one line, and no password is printed", async () => {
    await push(
      secure,
      "private/app:v1",
      content({ "app.yaml": [namespace("t-priv"), configMap("p", "t-priv", { ok: "yes" })] }),
    );
    const password = "reader-secret-7f3a9c";
    const docker = {
      auths: { [secure.host]: { auth: Buffer.from(`reader:${password}`).toString("base64") } },
    };
    const res = await k.client.raw({
      method: "POST",
      path: "/api/v1/namespaces/shipmate-system/secrets",
      body: {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "regcred", namespace: "shipmate-system" },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": Buffer.from(JSON.stringify(docker)).toString("base64") },
      },
    });
    expect(res.code).toBe(201);
    const repo = k.fleet();
    repo.commit({
      "clusters/test/sources.yaml": [
        ociRepo("t-priv-ok", {
          url: `oci://${secure.host}/private/app`,
          ref: { tag: "v1" },
          secretRef: { name: "regcred" },
        }),
        ociRepo("t-priv-anon", { url: `oci://${secure.host}/private/app`, ref: { tag: "v1" } }),
        fromOci("t-priv-ok", "t-priv-ok"),
      ],
    });
    const agent = k.agent(repo, "t-priv");
    await agent.once();
    expect((await getObject(k.client, cm("t-priv", "p")))?.data).toEqual({ ok: "yes" });
    const anon = await ociStatus("t-priv-anon");
    expect(anon.ready).toMatchObject({ status: "False", reason: "OCIArtifactPullFailed" });
    expect(anon.ready.message).toMatch(/failed to determine artifact digest: registry .*401/);
    expect(anon.ready.message).not.toContain("\n");
    const all = JSON.stringify([await ociStatus("t-priv-ok"), anon]);
    expect(all).not.toContain(password);
  });
});

/** A gzip'd tarball with whatever entries a hostile publisher chooses. */
async function tarball(
  entries: { name: string; type?: tar.Header["type"]; content?: string; linkname?: string }[],
) {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on("end", () => r()));
  for (const e of entries)
    if (e.content !== undefined) pack.entry({ name: e.name }, e.content);
    else pack.entry({ name: e.name, type: e.type ?? "directory", linkname: e.linkname });
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** Pushes a Flux-shaped artifact around an arbitrary layer (bypassing our own builder's checks). */
async function pushRaw(ref: string, layer: Buffer, mediaType = FLUX_CONTENT_MEDIA_TYPE): Promise<string> {
  const registry = new RegistryClient({ cacheDir: false, credentials: { get: async () => undefined } });
  const built = artifactDocuments(
    { data: layer, digest: sha256(layer), diffId: sha256(layer), files: 1 },
    {},
  );
  if (mediaType !== FLUX_CONTENT_MEDIA_TYPE) {
    const m = JSON.parse(built.manifest.toString());
    m.layers[0].mediaType = mediaType;
    built.manifest = Buffer.from(JSON.stringify(m));
  }
  const [repository, tag] = ref.split(":");
  return (await pushArtifact(registry, { registry: reg.host, repository: repository!, tag: tag! }, built))
    .digest;
}

describe("bad artifacts: one line on the source, nothing applied from them", () => {
  it("refuses ../ paths, absolute paths, symlinks, hard links, a wrong layer media type and an oversized layer", async () => {
    const cmDoc = stringify(configMap("evil", "t-bad", { from: "bad" }));
    await pushRaw("bad/climb:v1", await tarball([{ name: "../evil.yaml", content: cmDoc }]));
    await pushRaw("bad/abs:v1", await tarball([{ name: "/tmp/evil.yaml", content: cmDoc }]));
    await pushRaw(
      "bad/link:v1",
      await tarball([{ name: "a.yaml", type: "symlink", linkname: "/etc/passwd" }]),
    );
    await pushRaw("bad/hard:v1", await tarball([{ name: "b.yaml", type: "link", linkname: "a.yaml" }]));
    await pushRaw(
      "bad/type:v1",
      await tarball([{ name: "ok.yaml", content: cmDoc }]),
      "application/vnd.example.other",
    );
    // Random bytes do not compress: the layer stays over the 20,000-byte limit set below.
    const noise = randomBytes(40_000);
    await pushRaw("bad/big:v1", await tarball([{ name: "big.yaml", content: noise.toString("base64") }]));

    const cases: [string, string, RegExp][] = [
      ["climb", "bad/climb", /entry "\.\.\/evil\.yaml" climbs out of the artifact/],
      ["abs", "bad/abs", /entry "\/tmp\/evil\.yaml" is an absolute path/],
      ["link", "bad/link", /entry "a\.yaml" is a symlink to "\/etc\/passwd"/],
      ["hard", "bad/hard", /entry "b\.yaml" is a link/],
      [
        "type",
        "bad/type",
        /failed to find layer with media type 'application\/vnd\.cncf\.flux\.content\.v1\.tar\+gzip'/,
      ],
      ["big", "bad/big", /bytes, more than the 20000 allowed/],
    ];
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ns.yaml": [namespace("t-bad")],
      "clusters/test/sources.yaml": cases.flatMap(([name, path]) => [
        ociRepo(`t-bad-${name}`, {
          url: `oci://${proxy.host}/${path}`,
          ref: { tag: "v1" },
          ...(name === "type"
            ? { layerSelector: { mediaType: FLUX_CONTENT_MEDIA_TYPE, operation: "extract" } }
            : {}),
        }),
        fromOci(`t-bad-${name}`, `t-bad-${name}`),
      ]),
    });
    const agent = k.agent(repo, "t-bad", { artifactLimits: { layerBytes: 20_000 } });
    const pass = await agent.once();
    for (const [name, , message] of cases) {
      const s = await ociStatus(`t-bad-${name}`);
      expect(s.ready?.status, name).toBe("False");
      expect(s.ready?.reason, name).toBe("OCIArtifactLayerOperationFailed");
      expect(s.ready?.message, name).toMatch(message);
      expect(s.ready?.message, name).not.toContain("\n");
      expect(pass.reconciled.find((k) => k.name === `t-bad-${name}`)?.ready, name).toBe(false);
    }
    expect(await getObject(k.client, cm("t-bad", "evil"))).toBeUndefined();
  });

  it("a tag moved to a bad artifact keeps the last good tree in use: nothing of the bad revision is applied", async () => {
    await push(
      reg,
      "bad/moved:live",
      content({ "app.yaml": [namespace("t-moved"), configMap("keep", "t-moved", { v: "good" })] }),
    );
    const repo = k.fleet();
    repo.commit({
      "clusters/test/sources.yaml": [
        ociRepo("t-moved-src", { url: `oci://${proxy.host}/bad/moved`, ref: { tag: "live" } }),
        fromOci("t-moved-app", "t-moved-src"),
      ],
    });
    const agent = k.agent(repo, "t-moved");
    await agent.once();
    const good = (await ociStatus("t-moved-src")).artifact.revision;
    await pushRaw(
      "bad/moved:live",
      await tarball([
        { name: "app.yaml", content: stringify(configMap("keep", "t-moved", { v: "bad" })) },
        { name: "../../escape.yaml", content: "x: 1" },
      ]),
    );
    await agent.pass(never, true);
    const s = await ociStatus("t-moved-src");
    expect(s.ready).toMatchObject({ status: "False", reason: "OCIArtifactLayerOperationFailed" });
    expect(s.artifact.revision).toBe(good);
    expect((await getObject(k.client, cm("t-moved", "keep")))?.data).toEqual({ v: "good" });
  });

  it("fields the agent does not honour (verify, a cloud provider) stall the source, naming each", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/sources.yaml": [
        ociRepo("t-unsup-src", {
          url: `oci://${proxy.host}/apps/web`,
          provider: "aws",
          verify: { provider: "cosign" },
        }),
      ],
    });
    const agent = k.agent(repo, "t-unsup");
    await agent.once();
    const s = await ociStatus("t-unsup-src");
    expect(s.stalled).toMatchObject({ status: "True", reason: "UnsupportedField" });
    expect(s.ready?.message).toMatch(
      /spec\.provider .*; spec\.verify \(cosign\/notation signature verification/,
    );
  });
});

it("the scratch directory is private to this file", () => {
  expect(scratch.startsWith(tmpdir())).toBe(true);
});
