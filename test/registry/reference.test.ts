import { describe, expect, it } from "vitest";
import { ImageReferenceError } from "../../src/errors.ts";
import {
  apiHost,
  credentialKeys,
  familiarName,
  formatReference,
  isLoopback,
  isValidTag,
  parseReference,
} from "../../src/registry/reference.ts";

const D = `sha256:${"a".repeat(64)}`;

describe("parseReference normalises like Docker", () => {
  it.each([
    [
      "a bare name is an official Docker Hub image",
      "nginx",
      "docker.io",
      "library/nginx",
      undefined,
      undefined,
    ],
    [
      "a user/name on Docker Hub keeps its namespace",
      "bitnami/redis",
      "docker.io",
      "bitnami/redis",
      undefined,
      undefined,
    ],
    ["docker.io is written out", "docker.io/nginx", "docker.io", "library/nginx", undefined, undefined],
    [
      "index.docker.io is Docker Hub too",
      "index.docker.io/library/nginx:1",
      "docker.io",
      "library/nginx",
      "1",
      undefined,
    ],
    [
      "a tag follows the last colon",
      "nginx:1.27-alpine",
      "docker.io",
      "library/nginx",
      "1.27-alpine",
      undefined,
    ],
    ["a host with a dot is a registry", "ghcr.io/org/app:v1.0.0", "ghcr.io", "org/app", "v1.0.0", undefined],
    [
      "a host with a port is a registry, the port is not a tag",
      "127.0.0.1:5000/team/app",
      "127.0.0.1:5000",
      "team/app",
      undefined,
      undefined,
    ],
    ["host:port and tag together", "localhost:5000/app:2", "localhost:5000", "app", "2", undefined],
    ["localhost without a port is a registry", "localhost/app", "localhost", "app", undefined, undefined],
    ["an uppercase first component is a registry", "Registry/app", "Registry", "app", undefined, undefined],
    ["nested paths are kept", "reg.example.com/a/b/c/d:x", "reg.example.com", "a/b/c/d", "x", undefined],
    ["a digest alone", `nginx@${D}`, "docker.io", "library/nginx", undefined, D],
    ["tag and digest both", `ghcr.io/o/a:1.0@${D}`, "ghcr.io", "o/a", "1.0", D],
    ["an IPv6 registry", "[::1]:5000/app:1", "[::1]:5000", "app", "1", undefined],
    [
      "separators inside components",
      "r.io/a__b/c-d--e/f.g_h",
      "r.io",
      "a__b/c-d--e/f.g_h",
      undefined,
      undefined,
    ],
    [
      "a 128-character tag is allowed",
      `app:${"t".repeat(128)}`,
      "docker.io",
      "library/app",
      "t".repeat(128),
      undefined,
    ],
  ])("%s: %s", (_rule, input, registry, repository, tag, digest) => {
    const ref = parseReference(input);
    expect(ref).toEqual({
      registry,
      repository,
      ...(tag !== undefined ? { tag } : {}),
      ...(digest !== undefined ? { digest } : {}),
    });
  });
});

describe("parseReference rejects what Docker rejects, naming why", () => {
  it.each([
    ["empty", "", /empty/],
    ["uppercase repository", "ghcr.io/Org/App", /must be lowercase/],
    ["uppercase official name", "Nginx", /must be lowercase/],
    ["a tag longer than 128", `app:${"t".repeat(129)}`, /tag/],
    ["a tag starting with a dot", "app:.hidden", /tag/],
    ["a tag starting with a dash", "app:-x", /tag/],
    ["an empty tag", "app:", /tag/],
    ["a non-numeric port", "host:port/app", /registry host/],
    ["a digest of the wrong length", "app@sha256:abc", /digest/],
    ["a digest in uppercase hex", `app@sha256:${"A".repeat(64)}`, /lowercase hex/],
    ["an unknown digest algorithm", `app@md5:${"a".repeat(32)}`, /unsupported digest algorithm/],
    ["a trailing slash", "ghcr.io/org/", /repository name/],
    ["a double slash", "ghcr.io/org//app", /repository name/],
    ["a leading separator in a component", "ghcr.io/-org/app", /repository name/],
    ["three underscores", "r.io/a___b", /repository name/],
    ["whitespace", " nginx", /whitespace/],
    ["a 64-hex image ID", "a".repeat(64), /image ID/],
    ["a name over 255 characters", `r.io/${"a".repeat(251)}`, /255/],
    ["an empty repository after a host", "ghcr.io/", /empty|repository name/],
  ])("%s: %j", (_rule, input, why) => {
    let caught: unknown;
    try {
      parseReference(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ImageReferenceError);
    const err = caught as ImageReferenceError;
    expect(err.message).toMatch(why);
    expect(err.message).toContain(`"${input}"`);
    expect(err.exitCode).toBe(2);
    expect(err.message).not.toContain("\n");
  });
});

describe("reference helpers", () => {
  it.each([
    ["docker.io/library/nginx", "nginx"],
    ["docker.io/bitnami/redis", "bitnami/redis"],
    ["docker.io/library/a/b", "library/a/b"],
    ["ghcr.io/org/app", "ghcr.io/org/app"],
  ])("familiarName shortens Docker Hub names only: %s → %s", (input, familiar) => {
    expect(familiarName(parseReference(input))).toBe(familiar);
  });

  it("formatReference writes the normalised full form", () => {
    expect(formatReference(parseReference(`nginx:1@${D}`))).toBe(`docker.io/library/nginx:1@${D}`);
  });

  it.each([
    ["docker.io", "registry-1.docker.io"],
    ["ghcr.io", "ghcr.io"],
    ["127.0.0.1:5000", "127.0.0.1:5000"],
  ])("Docker Hub's API lives at registry-1.docker.io: %s → %s", (registry, host) => {
    expect(apiHost(registry)).toBe(host);
  });

  it("Docker Hub credentials are looked up under the legacy index URL first", () => {
    expect(credentialKeys("docker.io")[0]).toBe("https://index.docker.io/v1/");
    expect(credentialKeys("docker.io")).toContain("index.docker.io");
    expect(credentialKeys("ghcr.io")).toEqual(["ghcr.io"]);
  });

  it.each([
    ["127.0.0.1:5000", true],
    ["127.3.4.5", true],
    ["localhost:5000", true],
    ["[::1]:5000", true],
    ["128.0.0.1:5000", false],
    ["localhost.example.com", false],
    ["ghcr.io", false],
  ])("loopback registries are plain HTTP: %s → %s", (registry, loopback) => {
    expect(isLoopback(registry)).toBe(loopback);
  });

  it.each([
    ["1.0.0", true],
    ["v1.0.0-rc.1", true],
    ["_private", true],
    ["latest", true],
    ["-bad", false],
    [".bad", false],
    ["with space", false],
    ["a+b", false],
    ["x".repeat(129), false],
  ])("OCI tag grammar [\\w][\\w.-]{0,127}: %s → %s", (tag, valid) => {
    expect(isValidTag(tag)).toBe(valid);
  });
});
