/** The image reflector's pure rules (./src/agent/images/rules.ts), with Flux's documented behaviour as cases. */
import { describe, expect, it } from "vitest";
import {
  accessAllowed,
  imageRepository,
  latestTags,
  policyMessage,
  scanMessage,
} from "../../src/agent/images/rules.ts";

describe("latestTags: the first ten tags in descending alphabetical order", () => {
  it.each([
    [[], []],
    [
      ["1.0.0", "1.2.0", "1.10.0"],
      ["1.2.0", "1.10.0", "1.0.0"],
    ],
    [
      Array.from({ length: 12 }, (_, i) => `t${String(i).padStart(2, "0")}`),
      ["t11", "t10", "t09", "t08", "t07", "t06", "t05", "t04", "t03", "t02"],
    ],
    [
      ["latest", "main-abc", "v2"],
      ["v2", "main-abc", "latest"],
    ],
  ])("%j → %j", (tags, want) => {
    expect(latestTags(tags)).toEqual(want);
  });
});

describe("imageRepository: the canonical name Flux shows", () => {
  it.each([
    ["nginx", "docker.io/library/nginx"],
    ["ghcr.io/stefanprodan/podinfo", "ghcr.io/stefanprodan/podinfo"],
    ["127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app"],
  ])("%s → %s", (image, canonical) => {
    expect(imageRepository(image).canonical).toBe(canonical);
  });
  it("a tag or digest in spec.image is refused", () => {
    expect(() => imageRepository("ghcr.io/org/app:1.0")).toThrow(/must not carry a tag/);
  });
});

describe("accessAllowed: accessFrom.namespaceSelectors", () => {
  const sel = (matchLabels?: Record<string, string>) => ({ namespaceSelectors: [{ matchLabels }] });
  it.each([
    ["same namespace, no accessFrom", "apps", "apps", undefined, {}, true],
    ["other namespace, no accessFrom", "flux-system", "apps", undefined, {}, false],
    ["empty matchLabels selects every namespace", "flux-system", "apps", sel({}), {}, true],
    ["labels match", "flux-system", "apps", sel({ team: "a" }), { team: "a", x: "y" }, true],
    ["a label differs", "flux-system", "apps", sel({ team: "a" }), { team: "b" }, false],
    ["a label is missing", "flux-system", "apps", sel({ team: "a", env: "prod" }), { team: "a" }, false],
  ] as const)("%s", (_, repoNs, policyNs, accessFrom, labels, want) => {
    expect(accessAllowed(repoNs, policyNs, accessFrom, { ...labels })).toBe(want);
  });
});

describe("messages", () => {
  it("match Flux's wording", () => {
    expect(scanMessage(3)).toBe("successful scan: found 3 tags");
    expect(policyMessage("r/app", "1.1.0", undefined)).toBe("Latest image tag for 'r/app' resolved to 1.1.0");
    expect(policyMessage("r/app", "1.1.0", "1.0.0")).toBe(
      "Latest image tag for 'r/app' updated from 1.0.0 to 1.1.0",
    );
  });
});
