/**
 * The agent's own CRDs (deploy/agent/crds.yaml) against Flux's: every kind we
 * ship has Flux's group, names, scope, served/storage versions, printer
 * columns and status subresource (so `kubectl get` reads the same either way),
 * and which of them an agent installs or requires by its flags (src/agent/own-crds.ts).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type CrdFeatures, type CrdNeed, crdNeed } from "../../src/agent/own-crds.ts";
import { parseManifests } from "../../src/agent/render.ts";
import { type CustomResourceDefinition as Crd, fluxCrdDir, readCrdDir } from "../../src/validate/crds.ts";

type CustomResourceDefinition = Crd & { metadata: { name: string } };

const ours = parseManifests(
  readFileSync(new URL("../../deploy/agent/crds.yaml", import.meta.url), "utf8"),
  "deploy/agent/crds.yaml",
) as unknown as CustomResourceDefinition[];
const flux = readCrdDir(fluxCrdDir()) as CustomResourceDefinition[];

interface Version {
  name: string;
  served: boolean;
  storage: boolean;
  subresources?: unknown;
  additionalPrinterColumns?: { name: string; type: string; jsonPath: string; priority?: number }[];
}
const versionsOf = (crd: CustomResourceDefinition) =>
  (crd.spec.versions as unknown as Version[])
    .filter((v) => v.served)
    .map((v) => ({
      name: v.name,
      storage: v.storage,
      status: (v.subresources as { status?: unknown } | undefined)?.status !== undefined,
      columns: (v.additionalPrinterColumns ?? []).map((c) => ({ ...c, priority: c.priority ?? 0 })),
    }));

describe("deploy/agent/crds.yaml is a compatible subset of Flux's CRDs", () => {
  it("ships the image, Receiver, Alert and Provider kinds", () => {
    const names = ours.map((c) => c.metadata.name);
    for (const n of [
      "imagerepositories.image.toolkit.fluxcd.io",
      "imagepolicies.image.toolkit.fluxcd.io",
      "imageupdateautomations.image.toolkit.fluxcd.io",
      "receivers.notification.toolkit.fluxcd.io",
      "alerts.notification.toolkit.fluxcd.io",
      "providers.notification.toolkit.fluxcd.io",
    ])
      expect(names).toContain(n);
  });

  it.each(ours.map((c) => [c.metadata.name, c] as const))(
    "%s: names, scope, versions, printer columns and status as Flux's",
    (name, crd) => {
      const theirs = flux.find((c) => c.metadata.name === name);
      expect(theirs, `no Flux CRD ${name} in ${fluxCrdDir()}`).toBeDefined();
      const { categories, ...names } = crd.spec.names as Record<string, unknown>;
      const { categories: fluxCategories, ...fluxNames } = theirs!.spec.names as Record<string, unknown>;
      expect(crd.spec.group).toBe(theirs!.spec.group);
      expect(names).toEqual(fluxNames);
      if (categories !== undefined) expect(categories).toEqual(fluxCategories);
      expect((crd.spec as { scope?: string }).scope).toBe((theirs!.spec as { scope?: string }).scope);
      expect(versionsOf(crd)).toEqual(versionsOf(theirs!));
    },
  );

  it.each(ours.map((c) => [c.metadata.name, c] as const))(
    "%s: spec and status stay open, and require no field Flux does not",
    (name, crd) => {
      const theirs = flux.find((c) => c.metadata.name === name)!;
      for (const v of crd.spec.versions) {
        const props = (v.schema!.openAPIV3Schema as { properties: Record<string, Record<string, unknown>> })
          .properties;
        expect(props.spec?.["x-kubernetes-preserve-unknown-fields"]).toBe(true);
        expect(props.status?.["x-kubernetes-preserve-unknown-fields"]).toBe(true);
        const fluxVersion = theirs.spec.versions.find((f) => f.name === v.name)!;
        const fluxSpec = (
          fluxVersion.schema!.openAPIV3Schema as { properties: { spec: { required?: string[] } } }
        ).properties.spec;
        for (const field of (props.spec?.required as string[] | undefined) ?? [])
          expect(fluxSpec.required ?? []).toContain(field);
      }
    },
  );
});

describe("which CRDs an agent installs or requires, by its flags", () => {
  const none: CrdFeatures = { imageAutomation: false, receivers: false };
  const images: CrdFeatures = { imageAutomation: true, receivers: false };
  const receivers: CrdFeatures = { imageAutomation: false, receivers: true };
  it.each<[string, CrdFeatures, CrdNeed]>([
    ["kustomizations.kustomize.toolkit.fluxcd.io", none, "required"],
    ["gitrepositories.source.toolkit.fluxcd.io", none, "required"],
    ["helmreleases.helm.toolkit.fluxcd.io", none, "required"],
    ["imagerepositories.image.toolkit.fluxcd.io", none, "skip"],
    ["imagepolicies.image.toolkit.fluxcd.io", receivers, "skip"],
    ["imageupdateautomations.image.toolkit.fluxcd.io", images, "required"],
    ["imagerepositories.image.toolkit.fluxcd.io", images, "required"],
    ["receivers.notification.toolkit.fluxcd.io", none, "skip"],
    ["receivers.notification.toolkit.fluxcd.io", receivers, "required"],
    ["receivers.notification.toolkit.fluxcd.io", images, "required"],
    ["alerts.notification.toolkit.fluxcd.io", none, "optional"],
    ["providers.notification.toolkit.fluxcd.io", images, "optional"],
  ])("%s with %j: %s", (name, features, need) => {
    expect(crdNeed(name, features)).toBe(need);
  });
});
