/**
 * Flux OCI artifacts: the reproducible tarball, defensive extraction, and
 * `shipmate push artifact` / `build artifact` against Debian's
 * docker-registry (no auth, htpasswd, tokens).
 */
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  buildArtifact,
  FLUX_CONFIG_MEDIA_TYPE,
  FLUX_CONTENT_MEDIA_TYPE,
  REPRODUCIBLE_CREATED,
} from "../../src/registry/artifact.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { envKey } from "../../src/registry/credentials.ts";
import { buildTarball, extractTarball, safeEntryPath } from "../../src/registry/tar.ts";
import { runCli } from "../helpers/cli.ts";
import { startRegistry, type TestRegistry } from "../infra/registry.ts";

vi.setConfig({ testTimeout: 60_000 });

const scratch = mkdtempSync(join(tmpdir(), "shipmate-artifact-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const fresh = (name = "d") => {
  const dir = join(scratch, `${name}-${n++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

function tree(
  files: Record<string, string>,
  opts: { mode?: number; mtime?: number; reverse?: boolean } = {},
) {
  const dir = fresh("tree");
  const entries = Object.entries(files);
  if (opts.reverse) entries.reverse();
  for (const [path, content] of entries) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
    if (opts.mode !== undefined) chmodSync(join(dir, path), opts.mode);
    if (opts.mtime !== undefined) utimesSync(join(dir, path), opts.mtime, opts.mtime);
  }
  return dir;
}

/** A gzip'd tarball with arbitrary (hostile) entries. */
async function hostile(
  entries: { name: string; type?: tar.Header["type"]; content?: string; linkname?: string }[],
) {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on("end", () => r()));
  for (const e of entries) {
    if (e.content !== undefined) pack.entry({ name: e.name, type: e.type ?? "file" }, e.content);
    else pack.entry({ name: e.name, type: e.type ?? "directory", linkname: e.linkname });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

async function entriesOf(tgz: Buffer) {
  const ex = tar.extract();
  const out: tar.Header[] = [];
  const feeding = new Promise<void>((resolve, reject) => {
    ex.on("finish", resolve);
    ex.on("error", reject);
  });
  ex.on("entry", (h, stream, next) => {
    out.push(h);
    stream.on("end", () => next());
    stream.resume();
  });
  ex.end(gunzipSync(tgz));
  await feeding;
  return out;
}

const FILES = {
  "apps/web/deploy.yaml": "kind: Deployment\n",
  "apps/web/svc.yaml": "kind: Service\n",
  "README.md": "hi\n",
};

describe("build: the same tree gives the same bytes", () => {
  it("whatever the mtimes, the file modes' non-exec bits and the order files were written in", async () => {
    const a = await buildTarball(tree(FILES, { mode: 0o600, mtime: 1_000_000 }));
    const b = await buildTarball(tree(FILES, { mode: 0o664, mtime: 2_000_000, reverse: true }));
    expect(a.digest).toBe(b.digest);
    expect(a.data.equals(b.data)).toBe(true);
    expect(a.files).toBe(3);
  });

  it("a changed byte changes the digest", async () => {
    const a = await buildTarball(tree(FILES));
    const b = await buildTarball(tree({ ...FILES, "README.md": "hi!\n" }));
    expect(a.digest).not.toBe(b.digest);
  });

  it("entries are in byte order with zero mtimes, uid/gid 0, no names, fixed modes (as fluxcd/pkg/tar, modes fixed too)", async () => {
    const dir = tree({ ...FILES, "bin/run.sh": "#!/bin/sh\n" });
    chmodSync(join(dir, "bin/run.sh"), 0o700);
    const headers = await entriesOf((await buildTarball(dir)).data);
    expect(headers.map((h) => h.name.replace(/\/$/, ""))).toEqual([
      "README.md",
      "apps",
      "apps/web",
      "apps/web/deploy.yaml",
      "apps/web/svc.yaml",
      "bin",
      "bin/run.sh",
    ]);
    for (const h of headers) {
      expect(h.mtime?.getTime()).toBe(0);
      expect([h.uid, h.gid, h.uname, h.gname]).toEqual([0, 0, "", ""]);
    }
    expect(headers.find((h) => h.name === "bin/run.sh")?.mode).toBe(0o755);
    expect(headers.find((h) => h.name === "README.md")?.mode).toBe(0o644);
  });

  it("a symbolic link in the tree is refused, naming it", async () => {
    const dir = tree(FILES);
    symlinkSync("/etc/passwd", join(dir, "apps/leak"));
    await expect(buildTarball(dir)).rejects.toThrow(/apps\/leak: a symbolic link/);
  });

  it("the artifact manifest is Flux's: config type, one tar+gzip layer, the three annotations", async () => {
    const built = await buildArtifact(tree(FILES), {
      source: "https://git.example/fleet.git",
      revision: "main@sha1:abc",
    });
    const m = JSON.parse(built.manifest.toString());
    expect(m).toMatchObject({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: FLUX_CONFIG_MEDIA_TYPE },
      layers: [
        { mediaType: FLUX_CONTENT_MEDIA_TYPE, digest: built.layer.digest, size: built.layer.data.length },
      ],
      annotations: {
        "org.opencontainers.image.created": REPRODUCIBLE_CREATED,
        "org.opencontainers.image.source": "https://git.example/fleet.git",
        "org.opencontainers.image.revision": "main@sha1:abc",
      },
    });
    expect(JSON.parse(built.config.toString()).rootfs.diff_ids).toEqual([built.layer.diffId]);
  });
});

describe("extract: only regular files and directories inside the target", () => {
  it.each([
    ["a plain relative path", "a/b.yaml", "a/b.yaml"],
    ["a leading ./ is dropped", "./a/b.yaml", "a/b.yaml"],
    ["the root entry of a Flux tarball is fine", ".", ""],
    ["doubled slashes collapse", "a//b/", "a/b"],
  ])("safe path: %s", (_rule, name, path) => {
    expect(safeEntryPath(name)).toEqual({ path });
  });
  it.each([
    ["an absolute path", "/etc/passwd", "is an absolute path"],
    ["a climb out", "../evil.yaml", "climbs out"],
    ["a climb in the middle", "a/../../evil.yaml", "climbs out"],
    ["a Windows drive", "C:\\x", "is an absolute path"],
    ["a NUL byte", "a\0b", "NUL"],
  ])("refused path: %s", (_rule, name, why) => {
    const got = safeEntryPath(name);
    expect("refused" in got && got.refused).toContain(why);
  });

  it.each([
    ["a ../ entry", [{ name: "../evil.yaml", content: "x" }], /entry "..\/evil.yaml" climbs out/],
    ["an absolute entry", [{ name: "/tmp/evil.yaml", content: "x" }], /is an absolute path/],
    [
      "a symlink",
      [{ name: "leak", type: "symlink" as const, linkname: "/etc/passwd" }],
      /is a symlink to "\/etc\/passwd"/,
    ],
    ["a hard link", [{ name: "hl", type: "link" as const, linkname: "a.yaml" }], /is a link/],
    ["a device", [{ name: "dev", type: "character-device" as const }], /is a character-device/],
  ])("refuses %s, one line, and leaves nothing behind", async (_rule, entries, message) => {
    const file = join(fresh(), "l.tgz");
    writeFileSync(file, await hostile([{ name: "ok.yaml", content: "a: 1" }, ...entries]));
    const target = join(fresh(), "out");
    const err = await extractTarball(file, target).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain("\n");
    expect(() => readFileSync(join(target, "ok.yaml"))).toThrow();
  });

  it("refuses what is not a gzip'd tarball, and a gzip bomb past the byte limit", async () => {
    const notGzip = join(fresh(), "x.tgz");
    writeFileSync(notGzip, "plain text, not gzip");
    await expect(extractTarball(notGzip, join(fresh(), "o"))).rejects.toThrow(/not a gzip'd tarball/);
    const big = join(fresh(), "big.tgz");
    writeFileSync(big, await hostile([{ name: "zeros", content: "\0".repeat(2_000_000) }]));
    expect(readFileSync(big).length).toBeLessThan(10_000);
    await expect(extractTarball(big, join(fresh(), "o"), { maxBytes: 1_000_000 })).rejects.toThrow(
      /more than 1000000 bytes once extracted/,
    );
  });

  it("what build writes, extract reads back", async () => {
    const built = await buildTarball(tree(FILES));
    const file = join(fresh(), "l.tgz");
    writeFileSync(file, built.data);
    const target = join(fresh(), "out");
    const paths = await extractTarball(file, target);
    expect(paths.sort()).toEqual([
      "README.md",
      "apps/",
      "apps/web/",
      "apps/web/deploy.yaml",
      "apps/web/svc.yaml",
    ]);
    expect(readFileSync(join(target, "apps/web/svc.yaml"), "utf8")).toBe("kind: Service\n");
  });
});

describe.each(["none", "htpasswd", "token"] as const)("push artifact to a registry (auth %s)", (auth) => {
  let reg: TestRegistry;
  let env: Record<string, string>;
  beforeAll(async () => {
    reg = await startRegistry({ auth });
    env =
      auth === "none"
        ? {}
        : {
            [`${envKey(reg.host)}_USERNAME`]: reg.admin.username,
            [`${envKey(reg.host)}_PASSWORD`]: reg.admin.password,
          };
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("pushes Flux's format; the same tree again uploads nothing and gives the same digest", async () => {
    const dir = tree(FILES);
    const args = [
      "push",
      "artifact",
      `oci://${reg.host}/fleet/manifests:v1.0.0`,
      "--path",
      dir,
      "--source",
      "https://git.example/fleet.git",
      "--revision",
      "main@sha1:0123",
      "--json",
    ];
    const first = await runCli(args, { env });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const { digest, reference } = JSON.parse(first.stdout);
    expect(reference).toBe(`${reg.host}/fleet/manifests:v1.0.0@${digest}`);

    const again = await runCli(args.slice(0, -1), { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`@${digest}`);
    expect(again.stdout).toContain("0 blobs uploaded, 2 already there");

    const headers = {
      ...reg.authHeaders(["fleet/manifests"], ["pull"]),
      Accept: "application/vnd.oci.image.manifest.v1+json",
    };
    const res = await fetch(`${reg.url}/v2/fleet/manifests/manifests/v1.0.0`, { headers });
    expect(res.headers.get("docker-content-digest")).toBe(digest);
    const manifest = (await res.json()) as {
      config: { mediaType: string };
      layers: { mediaType: string; digest: string }[];
      annotations: Record<string, string>;
    };
    expect(manifest.config.mediaType).toBe(FLUX_CONFIG_MEDIA_TYPE);
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([FLUX_CONTENT_MEDIA_TYPE]);
    expect(manifest.annotations["org.opencontainers.image.revision"]).toBe("main@sha1:0123");

    // The layer is byte for byte what `build artifact` writes.
    const out = join(fresh(), "a.tgz");
    const built = await runCli(["build", "artifact", "--path", dir, "--output", out, "--json"]);
    expect(built.code).toBe(0);
    expect(JSON.parse(built.stdout).digest).toBe(manifest.layers[0]?.digest);
  });

  it("pulls it back through the registry client: manifest by digest, layer streamed and checked", async () => {
    const dir = tree({ "a.yaml": "a: 1\n" });
    const pushed = await runCli(
      ["push", "artifact", `oci://${reg.host}/fleet/pull:latest`, "--path", dir, "--json"],
      { env },
    );
    expect(pushed.code).toBe(0);
    const { digest } = JSON.parse(pushed.stdout);
    const client = new RegistryClient({
      cacheDir: false,
      credentials: { get: async () => (auth === "none" ? undefined : { ...reg.admin, source: "test" }) },
    });
    const m = await client.manifest({ registry: reg.host, repository: "fleet/pull", digest });
    expect(m.manifest?.layers).toHaveLength(1);
    const layer = m.manifest!.layers[0]!;
    const file = join(fresh(), "l.tgz");
    expect(
      await client.downloadBlob(
        { registry: reg.host, repository: "fleet/pull" },
        layer.digest,
        file,
        1 << 20,
      ),
    ).toBe(layer.size);
    await expect(
      client.downloadBlob(
        { registry: reg.host, repository: "fleet/pull" },
        layer.digest,
        join(fresh(), "x"),
        10,
      ),
    ).rejects.toThrow(/larger than the 10 bytes allowed/);
  });
});

describe("push/build artifact: usage errors are one line, exit 2", () => {
  it.each([
    [["push"], "what to push?"],
    [["push", "artifact"], "needs the destination"],
    [["push", "artifact", "127.0.0.1:5000/x:1", "--path", "."], 'starts with "oci://"'],
    [["push", "artifact", "oci://127.0.0.1:5000/x", "--path", "."], "push to a tag"],
    [["push", "artifact", "oci://127.0.0.1:5000/x:1"], "--path is required"],
    [["push", "artifact", "oci://127.0.0.1:5000/x:1", "--path", "/nonexistent-dir"], "no such directory"],
    [["build", "artifact", "--path", "."], "--output is required"],
    [["build", "chart", "--path", "."], "unknown kind 'chart'"],
    [["push", "artifact", "oci://127.0.0.1:1/x:1", "--path", ".", "--created", "yesterday"], "--created"],
  ])("%j", async (argv, message) => {
    const r = await runCli(argv, { cwd: tree({ "a.yaml": "a: 1\n" }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
