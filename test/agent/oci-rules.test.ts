/**
 * OCIRepository rules without I/O, as source-controller's docs state them:
 * reference precedence, layer selection, the URL, the pull Secret, and the
 * field table.
 */
import { describe, expect, it } from "vitest";
import { refusedFields } from "../../src/agent/fields/support.ts";
import {
  OCI_REPOSITORY_FIELDS,
  ociRepository,
  ociTarget,
  secretCredentials,
  selectLayer,
} from "../../src/agent/sources/oci.ts";

const D1 = `sha256:${"1".repeat(64)}`;

describe("reference: later fields take precedence (tag < semver < digest); none is the latest tag", () => {
  it.each([
    ["no ref means the latest tag", undefined, { tag: "latest" }],
    ["an empty ref too", {}, { tag: "latest" }],
    ["a tag", { tag: "6.1.8" }, { tag: "6.1.8" }],
    ["semver over tag", { tag: "6.1.8", semver: ">=6.0.0" }, { semver: ">=6.0.0" }],
    [
      "semverFilter travels with semver",
      { semver: ">= 6.1.x-0", semverFilter: ".*-rc.*" },
      { semver: ">= 6.1.x-0", filter: ".*-rc.*" },
    ],
    ["semverFilter alone is ignored, as Flux documents", { tag: "x", semverFilter: ".*" }, { tag: "x" }],
    ["digest over everything", { tag: "a", semver: "1.x", digest: D1 }, { digest: D1 }],
  ])("%s", (_rule, ref, expected) => {
    expect(ociTarget({ ref })).toEqual(expected);
  });
});

describe("URL", () => {
  it("names a repository", () => {
    expect(ociRepository("oci://ghcr.io/stefanprodan/manifests/podinfo")).toEqual({
      registry: "ghcr.io",
      repository: "stefanprodan/manifests/podinfo",
    });
  });
  it.each([
    ["a tag belongs in spec.ref", "oci://ghcr.io/org/app:v1", /must not contain a tag; remove ':v1'/],
    ["a digest too", `oci://ghcr.io/org/app@${D1}`, /must not contain a digest/],
    ["the scheme is required", "ghcr.io/org/app", /starts with "oci:\/\/"/],
    ["upper case is not a repository", "oci://ghcr.io/Org/App", /must be lowercase/],
  ])("%s", (_rule, url, message) => {
    expect(() => ociRepository(url)).toThrow(message);
  });
});

describe("layer selection: the first of the selector's media type, else the first layer", () => {
  const layers = [
    { mediaType: "application/vnd.cncf.helm.config.v1+json", digest: D1, size: 1 },
    {
      mediaType: "application/vnd.cncf.flux.content.v1.tar+gzip",
      digest: `sha256:${"2".repeat(64)}`,
      size: 2,
    },
    {
      mediaType: "application/vnd.cncf.flux.content.v1.tar+gzip",
      digest: `sha256:${"3".repeat(64)}`,
      size: 3,
    },
  ];
  it("no selector: the first layer, whatever its type", () => {
    expect(selectLayer({ layers }, undefined).size).toBe(1);
  });
  it("a selector: the first layer of that type", () => {
    expect(selectLayer({ layers }, "application/vnd.cncf.flux.content.v1.tar+gzip").size).toBe(2);
  });
  it("a selector no layer matches is refused, saying what the artifact has", () => {
    expect(() => selectLayer({ layers }, "application/x-other")).toThrow(
      "failed to find layer with media type 'application/x-other' in artifact (it has: application/vnd.cncf.helm.config.v1+json, application/vnd.cncf.flux.content.v1.tar+gzip)",
    );
  });
  it("an artifact without layers is refused", () => {
    expect(() => selectLayer({ layers: [] }, undefined)).toThrow("no layers found in artifact");
  });
});

describe("pull Secret (kubernetes.io/dockerconfigjson)", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  it("gives the credentials of the registry's auths entry", async () => {
    const doc = { auths: { "ghcr.io": { auth: b64("bot:s3cr3t-value") } } };
    const creds = secretCredentials({ ".dockerconfigjson": b64(JSON.stringify(doc)) }, "secret ns/regcred");
    expect(await creds.get("ghcr.io")).toMatchObject({ username: "bot", password: "s3cr3t-value" });
    expect(await creds.get("quay.io")).toBeUndefined();
  });
  it("never runs a credential helper a Secret names", async () => {
    const doc = { credHelpers: { "ghcr.io": "evil" }, credsStore: "evil" };
    const creds = secretCredentials({ ".dockerconfigjson": b64(JSON.stringify(doc)) }, "secret ns/regcred");
    expect(await creds.get("ghcr.io")).toBeUndefined();
  });
  it.each([
    [
      "a Secret of another kind names its keys",
      { username: "x", password: "y" },
      /has password, username; the shipmate agent reads ".dockerconfigjson"/,
    ],
    [
      "a payload that is not JSON",
      { ".dockerconfigjson": b64("{nope") },
      /is not a Docker config JSON document/,
    ],
  ])("%s", (_rule, data, message) => {
    expect(() => secretCredentials(data, "secret ns/regcred")).toThrow(message);
  });
});

describe("fields: honoured or refused", () => {
  const base = { url: "oci://ghcr.io/org/app", interval: "5m" };
  it.each([
    ["the documented example passes", { ref: { tag: "latest" } }, []],
    [
      "everything the agent implements passes",
      {
        ref: { semver: "1.x", semverFilter: ".*", tag: "a", digest: D1 },
        layerSelector: { mediaType: "x", operation: "copy" },
        secretRef: { name: "s" },
        insecure: true,
        timeout: "1m",
        suspend: false,
        provider: "generic",
      },
      [],
    ],
    ["a cloud provider is refused", { provider: "gcp" }, ["spec.provider"]],
    ["signature verification is refused", { verify: { provider: "cosign" } }, ["spec.verify"]],
    [
      "TLS, proxy and service account are refused; ignore rules are honoured",
      {
        certSecretRef: { name: "c" },
        proxySecretRef: { name: "p" },
        serviceAccountName: "sa",
        ignore: "*.md",
      },
      ["spec.certSecretRef", "spec.proxySecretRef", "spec.serviceAccountName"],
    ],
    ["a field no Flux version has is refused", { layerSelector: { shiny: 1 } }, ["spec.layerSelector.shiny"]],
  ])("%s", (_rule, extra, expected) => {
    expect(refusedFields({ ...base, ...extra }, OCI_REPOSITORY_FIELDS)).toEqual(expected);
  });
});
