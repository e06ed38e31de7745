/** Pure pieces of the registry protocol: challenges, Link headers, Retry-After, platforms, URL schemes. */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.ts";
import { parseChallenges } from "../../src/registry/challenge.ts";
import { nextLink } from "../../src/registry/client.ts";
import { parseRetryAfter, Transport } from "../../src/registry/http.ts";
import { parsePlatform, platformKey, selectPlatform } from "../../src/registry/platform.ts";
import type { Descriptor } from "../../src/registry/schemas.ts";

describe("WWW-Authenticate challenges (RFC 7235)", () => {
  it.each([
    [
      "Basic with a realm",
      'Basic realm="Registry Realm"',
      [{ scheme: "basic", params: { realm: "Registry Realm" } }],
    ],
    [
      "Bearer with realm, service and scope",
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
      [
        {
          scheme: "bearer",
          params: {
            realm: "https://auth.docker.io/token",
            service: "registry.docker.io",
            scope: "repository:library/nginx:pull",
          },
        },
      ],
    ],
    [
      "a quoted value may hold commas",
      'Bearer realm="https://a/token",scope="repository:x/y:pull,push"',
      [{ scheme: "bearer", params: { realm: "https://a/token", scope: "repository:x/y:pull,push" } }],
    ],
    [
      "parameter names are case-insensitive, values kept, spaces around = allowed",
      'BEARER Realm = "https://a/t" , Service=reg',
      [{ scheme: "bearer", params: { realm: "https://a/t", service: "reg" } }],
    ],
    [
      "escaped quotes inside a quoted string",
      'Bearer realm="a\\"b",error="insufficient_scope"',
      [{ scheme: "bearer", params: { realm: 'a"b', error: "insufficient_scope" } }],
    ],
    [
      "several challenges in one header",
      'Basic realm="x", Bearer realm="https://t",service="s"',
      [
        { scheme: "basic", params: { realm: "x" } },
        { scheme: "bearer", params: { realm: "https://t", service: "s" } },
      ],
    ],
    ["a scheme without parameters", "Negotiate", [{ scheme: "negotiate", params: {} }]],
    ["an empty header has no challenge", "", []],
  ])("%s", (_rule, header, expected) => {
    expect(parseChallenges(header)).toEqual(expected);
  });
});

describe("Link pagination header (RFC 8288)", () => {
  it.each([
    ["relative next", '</v2/a/tags/list?n=2&last=b>; rel="next"', "/v2/a/tags/list?n=2&last=b"],
    [
      "absolute next",
      '<https://r.io/v2/a/tags/list?last=b>; rel="next"',
      "https://r.io/v2/a/tags/list?last=b",
    ],
    ["unquoted rel", "</next>; rel=next", "/next"],
    ["next among other relations", '</prev>; rel="prev", </next>; rel="next"', "/next"],
    ["rel lists several relation types", '</n>; rel="last next"', "/n"],
    ["no next relation", '</prev>; rel="prev"', undefined],
    ["no header", null, undefined],
  ])("%s", (_rule, header, expected) => {
    expect(nextLink(header)).toBe(expected);
  });
});

describe("Retry-After (RFC 9110 §10.2.3)", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");
  it.each([
    ["delta seconds", "7", 7000],
    ["an HTTP date", "Wed, 01 Jan 2025 00:00:30 GMT", 30_000],
    ["a date in the past is now", "Tue, 31 Dec 2024 00:00:00 GMT", 0],
    ["garbage is ignored", "soon", undefined],
    ["absent", null, undefined],
  ])("%s", (_rule, value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });
});

describe("platform selection inside an index (containerd normalisation)", () => {
  const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
  const m = (
    digest: string,
    platform: Descriptor["platform"],
    annotations?: Record<string, string>,
  ): Descriptor => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest,
    size: 1,
    platform,
    ...(annotations ? { annotations } : {}),
  });
  const index = [
    m(d(1), { os: "linux", architecture: "amd64" }),
    m(d(2), { os: "linux", architecture: "arm64", variant: "v8" }),
    m(d(3), { os: "linux", architecture: "arm", variant: "v6" }),
    m(d(4), { os: "linux", architecture: "arm", variant: "v7" }),
    m(
      d(5),
      { os: "unknown", architecture: "unknown" },
      { "vnd.docker.reference.type": "attestation-manifest" },
    ),
    m(d(6), { os: "windows", architecture: "amd64" }),
  ];
  it.each([
    ["linux/amd64 is the plain amd64 entry", "linux/amd64", d(1)],
    ["arm64 means arm64/v8", "linux/arm64", d(2)],
    ["arm64/v8 spelled out", "linux/arm64/v8", d(2)],
    ["arm without variant means arm/v7", "linux/arm", d(4)],
    ["an explicit variant must match", "linux/arm/v6", d(3)],
    ["the os matters", "windows/amd64", d(6)],
    ["aarch64 is an alias of arm64", "linux/aarch64", d(2)],
    ["a missing platform selects nothing", "linux/s390x", undefined],
    ["a missing explicit variant selects nothing", "linux/arm/v5", undefined],
  ])("%s", (_rule, wanted, digest) => {
    expect(selectPlatform(index, parsePlatform(wanted))?.digest).toBe(digest);
  });

  it("attestation manifests are never chosen", () => {
    expect(selectPlatform(index, parsePlatform("unknown/unknown"))).toBeUndefined();
  });

  it("equivalent spellings share one cache key", () => {
    expect(platformKey(parsePlatform("linux/arm64"))).toBe(platformKey(parsePlatform("linux/arm64/v8")));
    expect(platformKey(parsePlatform("linux/amd64"))).not.toBe(platformKey(parsePlatform("linux/arm64")));
  });

  it.each(["linux", "linux/amd64/v2/extra", "linux//amd64", "linux/am d64"])(
    "invalid platform %j is a config error",
    (text) => {
      expect(() => parsePlatform(text)).toThrow(ConfigError);
    },
  );
});

describe("plain HTTP only for loopback and declared insecure registries", () => {
  const t = new Transport({ insecureRegistries: ["registry.internal:5000", "plain.example"] });
  it.each([
    ["127.0.0.1:5000", "http://127.0.0.1:5000"],
    ["localhost:5000", "http://localhost:5000"],
    ["[::1]:5000", "http://[::1]:5000"],
    ["registry-1.docker.io", "https://registry-1.docker.io"],
    ["ghcr.io", "https://ghcr.io"],
    ["registry.internal:5000", "http://registry.internal:5000"],
    ["registry.internal:5001", "https://registry.internal:5001"],
    ["plain.example:8080", "http://plain.example:8080"],
  ])("%s → %s", (host, base) => {
    expect(t.baseUrl(host)).toBe(base);
  });
});
