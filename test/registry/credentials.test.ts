/**
 * Every credential source, proven against a real registry that needs it:
 * Docker's config (inline auths, credHelpers, credsStore, identity and
 * registry tokens), SHIPMATE_REGISTRY_* variables and Kubernetes pull secrets.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, describeError, redact } from "../../src/errors.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import {
  defaultCredentials,
  dockerConfigFileCredentials,
  envKey,
  loadPullSecret,
} from "../../src/registry/credentials.ts";
import { seedImage, startRegistry, type TestRegistry } from "../infra/registry.ts";

const alice = { username: "alice", password: "wonderland-42", identityToken: "refresh-alice-0123456789" };
const b64 = (s: string) => Buffer.from(s).toString("base64");

let basicReg: TestRegistry;
let tokenReg: TestRegistry;
let work: string;
let counter = 0;

function dir(): string {
  const d = join(work, `d${counter++}`);
  mkdirSync(d, { recursive: true });
  return d;
}

function dockerConfig(content: unknown): string {
  const d = dir();
  writeFileSync(join(d, "config.json"), typeof content === "string" ? content : JSON.stringify(content));
  return d;
}

/** A docker-credential-<name> helper that knows alice for `known` servers and logs what it was asked. */
function helper(
  name: string,
  known: Record<string, { Username: string; Secret: string }>,
): { bin: string; log: string } {
  const bin = dir();
  const log = join(bin, "asked.log");
  const cases = Object.entries(known)
    .map(([server, c]) => `  "${server}") printf '%s' '${JSON.stringify({ ServerURL: server, ...c })}' ;;`)
    .join("\n");
  writeFileSync(
    join(bin, `docker-credential-${name}`),
    `#!/bin/sh\n[ "$1" = get ] || exit 2\nserver=$(cat)\necho "$server" >> "${log}"\ncase "$server" in\n${cases}\n  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n`,
  );
  chmodSync(join(bin, `docker-credential-${name}`), 0o755);
  return { bin, log };
}

/** A client using the default sources, as the CLI does, with a controlled environment. */
function defaultClient(env: NodeJS.ProcessEnv): RegistryClient {
  return new RegistryClient({ cacheDir: false, env: { PATH: process.env.PATH, HOME: work, ...env } });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "shipmate-creds-"));
  [basicReg, tokenReg] = await Promise.all([
    startRegistry({ auth: "htpasswd", users: [alice] }),
    startRegistry({ auth: "token", users: [alice], anonymousTokens: false }),
  ]);
  await Promise.all([
    seedImage(basicReg, { repository: "team/app", tags: ["1.0", "1.1"] }),
    seedImage(tokenReg, { repository: "team/app", tags: ["2.0"] }),
  ]);
});
afterAll(async () => {
  await Promise.all([basicReg?.stop(), tokenReg?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

describe("Docker config file ($DOCKER_CONFIG/config.json)", () => {
  it("auths with base64 user:password", async () => {
    const d = dockerConfig({
      auths: { [basicReg.host]: { auth: b64(`${alice.username}:${alice.password}`) } },
    });
    const tags = await defaultClient({ DOCKER_CONFIG: d }).listTags(`${basicReg.host}/team/app`);
    expect(tags.tags.sort()).toEqual(["1.0", "1.1"]);
  });

  it("auths with username/password, keyed by a URL as old docker versions wrote it", async () => {
    const d = dockerConfig({
      auths: { [`http://${basicReg.host}/v2/`]: { username: alice.username, password: alice.password } },
    });
    expect(
      (await defaultClient({ DOCKER_CONFIG: d }).listTags(`${basicReg.host}/team/app`)).tags,
    ).toHaveLength(2);
  });

  it("~/.docker/config.json when DOCKER_CONFIG is unset", async () => {
    const home = dir();
    mkdirSync(join(home, ".docker"));
    writeFileSync(
      join(home, ".docker", "config.json"),
      JSON.stringify({ auths: { [basicReg.host]: { auth: b64(`${alice.username}:${alice.password}`) } } }),
    );
    expect((await defaultClient({ HOME: home }).listTags(`${basicReg.host}/team/app`)).tags).toHaveLength(2);
  });

  it("credHelpers: the helper gets the server on stdin and runs once per client", async () => {
    const h = helper("shipmate-test", {
      [basicReg.host]: { Username: alice.username, Secret: alice.password },
    });
    const d = dockerConfig({ credHelpers: { [basicReg.host]: "shipmate-test" } });
    const c = defaultClient({ DOCKER_CONFIG: d, PATH: `${h.bin}:${process.env.PATH}` });
    await c.listTags(`${basicReg.host}/team/app`);
    await c.resolveDigest(`${basicReg.host}/team/app:1.0`);
    await c.listTags(`${basicReg.host}/team/app`);
    expect(readFileSync(h.log, "utf8")).toBe(`${basicReg.host}\n`);
  });

  it("credsStore serves every registry without an inline entry", async () => {
    const h = helper("shipmate-store", {
      [basicReg.host]: { Username: alice.username, Secret: alice.password },
    });
    const d = dockerConfig({ credsStore: "shipmate-store", auths: { [basicReg.host]: {} } });
    const c = defaultClient({ DOCKER_CONFIG: d, PATH: `${h.bin}:${process.env.PATH}` });
    expect((await c.listTags(`${basicReg.host}/team/app`)).tags).toHaveLength(2);
  });

  it("a helper without credentials for the server means anonymous", async () => {
    const h = helper("shipmate-empty", {});
    const d = dockerConfig({ credsStore: "shipmate-empty" });
    const c = defaultClient({ DOCKER_CONFIG: d, PATH: `${h.bin}:${process.env.PATH}` });
    await expect(c.listTags(`${basicReg.host}/team/app`)).rejects.toThrow(/none are configured/);
  });

  it("a helper that is not installed is a configuration error naming it", async () => {
    const d = dockerConfig({ credHelpers: { [basicReg.host]: "shipmate-missing" } });
    const c = defaultClient({ DOCKER_CONFIG: d });
    const err = await c.listTags(`${basicReg.host}/team/app`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      "credential helper docker-credential-shipmate-missing is not on PATH",
    );
  });

  it("a config file that is not JSON is a configuration error naming the file", async () => {
    const d = dockerConfig("{ not json");
    const err = await defaultClient({ DOCKER_CONFIG: d })
      .listTags(`${basicReg.host}/team/app`)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(`${join(d, "config.json")}: not valid JSON (Docker config file)`);
  });

  it("identitytoken is exchanged at the token realm (OAuth2 refresh-token grant)", async () => {
    const d = dockerConfig({ auths: { [tokenReg.host]: { identitytoken: alice.identityToken } } });
    const seen = tokenReg.tokenRequests.length;
    const c = defaultClient({ DOCKER_CONFIG: d });
    expect((await c.listTags(`${tokenReg.host}/team/app`)).tags).toEqual(["2.0"]);
    expect(tokenReg.tokenRequests.slice(seen)).toEqual([
      { user: "alice", scopes: ["repository:team/app:pull"] },
    ]);
  });

  it("a helper answering Username <token> hands over an identity token", async () => {
    const h = helper("shipmate-idtoken", {
      [tokenReg.host]: { Username: "<token>", Secret: alice.identityToken },
    });
    const d = dockerConfig({ credHelpers: { [tokenReg.host]: "shipmate-idtoken" } });
    const c = defaultClient({ DOCKER_CONFIG: d, PATH: `${h.bin}:${process.env.PATH}` });
    expect((await c.listTags(`${tokenReg.host}/team/app`)).tags).toEqual(["2.0"]);
  });

  it("registrytoken is sent as the bearer token, without asking a token server", async () => {
    const token = tokenReg.authHeaders(["team/app"], ["pull"]).Authorization?.replace(/^Bearer /, "");
    const d = dockerConfig({ auths: { [tokenReg.host]: { registrytoken: token } } });
    const c = defaultClient({ DOCKER_CONFIG: d });
    expect((await c.listTags(`${tokenReg.host}/team/app`)).tags).toEqual(["2.0"]);
    expect(c.stats()).toMatchObject({ total: 1, byKind: { token: 0 } });
  });
});

describe("environment: SHIPMATE_REGISTRY_<HOST>_USERNAME / _PASSWORD", () => {
  it.each([
    ["127.0.0.1:5000", "SHIPMATE_REGISTRY_127_0_0_1_5000"],
    ["ghcr.io", "SHIPMATE_REGISTRY_GHCR_IO"],
    ["docker.io", "SHIPMATE_REGISTRY_DOCKER_IO"],
    ["[::1]:5000", "SHIPMATE_REGISTRY____1__5000"],
  ])("the variable prefix for %s is %s", (registry, key) => {
    expect(envKey(registry)).toBe(key);
  });

  it("authenticate against htpasswd and token registries", async () => {
    for (const reg of [basicReg, tokenReg]) {
      const key = envKey(reg.host);
      const c = defaultClient({ [`${key}_USERNAME`]: alice.username, [`${key}_PASSWORD`]: alice.password });
      expect((await c.listTags(`${reg.host}/team/app`)).tags.length).toBeGreaterThan(0);
    }
  });

  it("one without the other is a configuration error", async () => {
    const key = envKey(basicReg.host);
    await expect(
      defaultClient({ [`${key}_USERNAME`]: alice.username }).listTags(`${basicReg.host}/team/app`),
    ).rejects.toThrow(`${key}_USERNAME and ${key}_PASSWORD must be set together`);
  });

  it("win over the Docker config", async () => {
    const key = envKey(basicReg.host);
    const d = dockerConfig({ auths: { [basicReg.host]: { auth: b64("alice:wrong-password-1") } } });
    const c = defaultClient({
      DOCKER_CONFIG: d,
      [`${key}_USERNAME`]: alice.username,
      [`${key}_PASSWORD`]: alice.password,
    });
    expect((await c.listTags(`${basicReg.host}/team/app`)).tags).toHaveLength(2);
  });
});

describe("Kubernetes dockerconfigjson pull secrets", () => {
  const secretYaml = (host: string, password: string) => `apiVersion: v1
kind: Secret
metadata:
  name: regcred
  namespace: flux-system
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: ${b64(JSON.stringify({ auths: { [host]: { auth: b64(`alice:${password}`) } } }))}
`;
  const write = (name: string, content: string) => {
    const f = join(dir(), name);
    writeFileSync(f, content);
    return f;
  };

  it("YAML with base64 data, used through defaultCredentials", async () => {
    const file = write("regcred.yaml", secretYaml(basicReg.host, alice.password));
    const credentials = await defaultCredentials({ secretFiles: [file], env: { HOME: work } });
    const c = new RegistryClient({ cacheDir: false, credentials });
    expect((await c.listTags(`${basicReg.host}/team/app`)).tags).toHaveLength(2);
  });

  it("JSON with stringData, in a multi-document file next to other objects", async () => {
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "regcred" },
      type: "kubernetes.io/dockerconfigjson",
      stringData: {
        ".dockerconfigjson": JSON.stringify({
          auths: { [tokenReg.host]: { username: alice.username, password: alice.password } },
        }),
      },
    };
    const file = write(
      "regcred.yaml",
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n${JSON.stringify(secret)}\n`,
    );
    const c = new RegistryClient({ cacheDir: false, credentials: await loadPullSecret(file) });
    expect((await c.listTags(`${tokenReg.host}/team/app`)).tags).toEqual(["2.0"]);
  });

  it("the legacy kubernetes.io/dockercfg form", async () => {
    const cfg = b64(JSON.stringify({ [basicReg.host]: { auth: b64(`alice:${alice.password}`) } }));
    const file = write(
      "old.yaml",
      `kind: Secret\ntype: kubernetes.io/dockercfg\ndata:\n  .dockercfg: ${cfg}\n`,
    );
    const c = new RegistryClient({ cacheDir: false, credentials: await loadPullSecret(file) });
    expect((await c.listTags(`${basicReg.host}/team/app`)).tags).toHaveLength(2);
  });

  it("a secret file wins over the environment", async () => {
    const key = envKey(basicReg.host);
    const file = write("regcred.yaml", secretYaml(basicReg.host, alice.password));
    const credentials = await defaultCredentials({
      secretFiles: [file],
      env: { [`${key}_USERNAME`]: "alice", [`${key}_PASSWORD`]: "wrong-password-2" },
    });
    const c = new RegistryClient({ cacheDir: false, credentials });
    expect((await c.listTags(`${basicReg.host}/team/app`)).tags).toHaveLength(2);
  });

  it("a file without a pull secret is a configuration error naming it", async () => {
    const file = write("cm.yaml", "kind: ConfigMap\ndata: {a: b}\n");
    await expect(loadPullSecret(file)).rejects.toThrow(
      `${file}: no Secret with ".dockerconfigjson" (type kubernetes.io/dockerconfigjson) or ".dockercfg" found`,
    );
  });

  it("every secret loaded is masked in anything printed", async () => {
    const password = "masked-password-73";
    const file = write("s.yaml", secretYaml("registry.example.com", password));
    const creds = await (await loadPullSecret(file)).get("registry.example.com");
    expect(creds).toMatchObject({ username: "alice", password });
    expect(creds?.source).toBe(`${file} (Secret regcred) auths["registry.example.com"]`);
    expect(redact(`something said ${password}`)).toBe("something said ***");
    expect(describeError(new Error(`boom ${b64(`alice:${password}`)}`))).not.toContain(password);
  });
});

describe("credential lookups", () => {
  it("Docker Hub credentials are found under the legacy index URL", async () => {
    const d = dockerConfig({
      auths: { "https://index.docker.io/v1/": { auth: b64("hubuser:hub-password-1") } },
    });
    const creds = await dockerConfigFileCredentials(join(d, "config.json")).get("docker.io");
    expect(creds).toMatchObject({ username: "hubuser", password: "hub-password-1" });
  });

  it("a missing Docker config means no credentials, not an error", async () => {
    expect(
      await dockerConfigFileCredentials(join(work, "nope", "config.json")).get("ghcr.io"),
    ).toBeUndefined();
  });
});
