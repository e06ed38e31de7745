// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Flux substitution variables are written ${name}
/**
 * spec.postBuild on built objects, as kustomize-controller does it: the
 * object's YAML text is substituted and read back. Cases follow Flux's
 * Kustomization docs ("Post build variable substitution", "Post build
 * substitution of numbers and booleans").
 */
import { describe, expect, it } from "vitest";
import {
  MAX_VALUE_BYTES,
  mergeVariables,
  substituteObjects,
} from "../../../src/agent/postbuild/substitute.ts";
import type { KubeObject } from "../../../src/kube/schema.ts";

const ns = (labels: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name: "apps", labels },
});
const on = { always: false, strict: true };
const vars = (o: Record<string, string>) => new Map(Object.entries(o));

describe("postBuild: substituting built objects", () => {
  it('docs example: ${cluster_env:=dev} and "${cluster_region}"', () => {
    const [out] = substituteObjects(
      [ns({ environment: "${cluster_env:=dev}", region: "${cluster_region}" })],
      vars({ cluster_region: "eu-central-1" }),
      on,
    );
    expect(out?.metadata.labels).toEqual({ environment: "dev", region: "eu-central-1" });
  });

  it("docs: a Secret takes variables through stringData", () => {
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "secret", namespace: "flux-system" },
      type: "Opaque",
      stringData: { token: "${token}" },
    };
    const [out] = substituteObjects([secret], vars({ token: "s3cr3t" }), on);
    expect(out?.stringData).toEqual({ token: "s3cr3t" });
  });

  it("docs: numbers and booleans become YAML numbers and booleans unless quoted with ${quote}", () => {
    const sa = {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: {
        name: "app",
        annotations: { id: "${quote}${id}${quote}", enabled: "${quote}${enabled}${quote}" },
      },
    };
    const [quoted] = substituteObjects([sa], vars({ quote: '"', id: "123", enabled: "true" }), on);
    expect(quoted?.metadata.annotations).toEqual({ id: "123", enabled: "true" });
    const deploy = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "d" },
      spec: { replicas: "${n}", paused: "${p}" },
    };
    const [typed] = substituteObjects([deploy], vars({ n: "3", p: "on" }), on);
    // YAML 1.1 as Go reads it: `on` is a boolean.
    expect(typed?.spec).toEqual({ replicas: 3, paused: true });
  });

  it("strings that only look like numbers stay strings when no variable touches them", () => {
    const cm = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c" },
      data: { a: "123", b: "on", c: "${v}" },
    };
    const [out] = substituteObjects([cm], vars({ v: "x" }), on);
    expect(out?.data).toEqual({ a: "123", b: "on", c: "x" });
  });

  it("docs: $var is left for scripts, $${var} prints ${var}", () => {
    const cm = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c" },
      data: { s: "echo $HOME $${HOME} ${v}" },
    };
    const [out] = substituteObjects([cm], vars({ v: "x", HOME: "no" }), on);
    expect(out?.data).toEqual({ s: "echo $HOME ${HOME} x" });
  });

  it.each([["label"], ["annotation"]])(
    "docs: kustomize.toolkit.fluxcd.io/substitute: disabled as a %s skips the object",
    (where) => {
      const meta = { "kustomize.toolkit.fluxcd.io/substitute": "disabled" };
      const cm = {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "c", ...(where === "label" ? { labels: meta } : { annotations: meta }) },
        data: { s: "${undefined_in_strict_mode}" },
      };
      const [out] = substituteObjects([cm], vars({ v: "x" }), on);
      expect(out?.data).toEqual({ s: "${undefined_in_strict_mode}" });
    },
  );

  it("docs: WithVariables (default) skips substitution when no variable is defined, defaults included", () => {
    const objs = [ns({ env: "${cluster_env:=dev}" })];
    expect(substituteObjects(objs, vars({}), on)[0]?.metadata.labels).toEqual({ env: "${cluster_env:=dev}" });
  });

  it("docs: substituteStrategy Always substitutes with no variable defined", () => {
    const objs = [ns({ env: "${cluster_env:=dev}" })];
    expect(substituteObjects(objs, vars({}), { ...on, always: true })[0]?.metadata.labels).toEqual({
      env: "dev",
    });
  });

  it("strict: an undefined variable fails naming it and the object, without any value", () => {
    expect(() =>
      substituteObjects(
        [ns({ a: "${defined}", b: "${not_defined}" })],
        vars({ defined: "s3cr3t-value" }),
        on,
      ),
    ).toThrow(/^post build failed for Namespace\/apps: variable not set \(strict mode\): "not_defined"$/);
  });

  it("a substitution that breaks the YAML is one line that quotes no text", () => {
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: "${v}" } };
    let message = "";
    try {
      substituteObjects([cm], vars({ v: "[s3cr3t: {" }), on);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^post build failed for ConfigMap\/c: the substituted text is not valid YAML/);
    expect(message).not.toContain("s3cr3t");
  });

  it("docs: substitute wins over substituteFrom; later substituteFrom sources override earlier ones", () => {
    const merged = mergeVariables(
      [
        { kind: "ConfigMap", name: "a", data: { x: "cm-a", y: "cm-a", z: "cm-a" } },
        { kind: "Secret", name: "b", data: { y: "secret-b", z: "secret-b" } },
      ],
      { z: "inline" },
    );
    expect(Object.fromEntries(merged)).toEqual({ x: "cm-a", y: "secret-b", z: "inline" });
  });

  it("newlines are dropped from values, as Flux does", () => {
    expect(mergeVariables([{ kind: "Secret", name: "s", data: { t: "abc\n" } }], { u: "a\nb" })).toEqual(
      new Map([
        ["t", "abc"],
        ["u", "ab"],
      ]),
    );
  });

  it("docs: a variable name outside ^[_[:alpha:]][_[:alpha:][:digit:]]*$ fails the build", () => {
    expect(() => mergeVariables([{ kind: "ConfigMap", name: "c", data: { "my-key": "v" } }], {})).toThrow(
      "'my-key' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'",
    );
  });

  it("a 1 MB value is one line naming the variable, not its value", () => {
    const big = "x".repeat(1024 * 1024);
    expect(() => mergeVariables([], { big })).toThrow(
      `variable 'big' is ${1024 * 1024} bytes, over the ${MAX_VALUE_BYTES}-byte limit`,
    );
  });

  it("a value used many times cannot build an object past the API server's limit", () => {
    const v = "y".repeat(MAX_VALUE_BYTES - 10);
    const cm = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c" },
      data: Object.fromEntries([...Array(8).keys()].map((i) => [`k${i}`, "${v}"])),
    };
    expect(() => substituteObjects([cm], vars({ v }), on)).toThrow(
      "ConfigMap/c: the substituted object is over",
    );
  });

  it("variables referring to each other are inserted once: no loop", () => {
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: "${a}" } };
    const [out] = substituteObjects([cm], vars({ a: "${b}", b: "${a}" }), on);
    expect(out?.data).toEqual({ a: "${b}" });
  });
});
