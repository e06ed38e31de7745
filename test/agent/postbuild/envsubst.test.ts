// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Flux substitution variables are written ${name}
/**
 * Flux's envsubst (fluxcd/pkg/envsubst as kustomize-controller v1.9 runs it,
 * strict by default): table cases named after the rule they pin, with the
 * examples of Flux's Kustomization docs ("Post build variable substitution").
 */
import { describe, expect, it } from "vitest";
import { envsubst, globToRegExp, MAX_NESTING } from "../../../src/agent/postbuild/envsubst.ts";

const vars: Record<string, string> = {
  cluster_env: "prod",
  cluster_region: "eu-central-1",
  empty: "",
  name: "podinfo",
  path: "a/b/c.tar.gz",
  greeting: "hello world",
  loop_a: "${loop_b}",
  loop_b: "${loop_a}",
  n: "42",
};
const lookup = (k: string) => vars[k];
const strict = (t: string) => envsubst(t, lookup, { strict: true });
const lax = (t: string) => envsubst(t, lookup, { strict: false });

describe("envsubst: Flux's post-build substitution language", () => {
  it.each([
    ["docs: ${var} is replaced", "region: ${cluster_region}", "region: eu-central-1"],
    ["docs: ${var:=default} keeps a set value", "env: ${cluster_env:=dev}", "env: prod"],
    ["docs: ${var:=default} gives the default when unset", "env: ${missing:=dev}", "env: dev"],
    ["${var:-default} gives the default when unset", "${missing:-x}", "x"],
    ["${var:=default} gives the default when set but empty", "${empty:=dev}", "dev"],
    ["${var=default} behaves as := (Flux defaults on empty too)", "${empty=dev}/${missing=d}", "dev/d"],
    ["a default may hold another expansion", "${missing:=${name}-x}", "podinfo-x"],
    ["docs: plain $var is not substituted", "cmd: echo $name", "cmd: echo $name"],
    ["docs: $${var} prints ${var}", "keep: $${name}", "keep: ${name}"],
    ["$$ is a literal $ anywhere in text", "a$$b", "a$b"],
    ["$$$ then ${ expands after the literal $", "$$${name}", "$podinfo"],
    ["a lone $ and braces without $ are text", "cost $ {name} }", "cost $ {name} }"],
    ["docs: ${var:position}", "${cluster_region:3}", "central-1"],
    ["docs: ${var:position:length}", "${cluster_region:0:2}", "eu"],
    ["${var:-1} is the :- default, not an offset (as in bash)", "${cluster_region:-1}", "eu-central-1"],
    ["${var:-3:2} is the :- default too, its word taken whole", "${missing:-3:2}", "3:2"],
    ["negative length drops from the end", "${name:1:-1}", "odinf"],
    ["offset past the end is empty", "${name:99}", ""],
    ["a non-number offset leaves the value", "${name:x}", "podinfo"],
    ["docs: ${var/substring/replacement} replaces the first", "${path/\\//-}", "a-b/c.tar.gz"],
    ["${var//old/new} replaces every one", "${path//\\//-}", "a-b-c.tar.gz"],
    ["${var/old/} with an empty replacement deletes", "${greeting/o/}", "hell world"],
    ["${var/#old/new} replaces a prefix only", "${name/#pod/web}|${name/#info/x}", "webinfo|podinfo"],
    ["${var/%old/new} replaces a suffix only", "${name/%info/cast}", "podcast"],
    ["${#var} is the length in bytes", "${#greeting}", "11"],
    ["${var^} / ${var^^} upper-case", "${name^} ${name^^}", "Podinfo PODINFO"],
    ["${var,} / ${var,,} lower-case", "${cluster_region,,}", "eu-central-1"],
    ["${var#glob} strips the shortest non-empty prefix", "${path#*/}", "b/c.tar.gz"],
    ["${var##glob} strips the longest prefix", "${greeting##h*o}", "rld"],
    ["${var%glob} strips the shortest suffix", "${path%.*}", "a/b/c.tar"],
    ["${var%%glob} strips the longest suffix", "${greeting%%o*}", "hell"],
    ["globs do not cross /, as Go's path.Match", "${path##*c}", "a/b/c.tar.gz"],
    ["values are inserted once, never expanded again (no loop)", "${loop_a}", "${loop_b}"],
    ["numbers stay text here; YAML decides types later", "replicas: ${n}", "replicas: 42"],
    ["unicode letters are part of a name", "${café:=x}", "x"],
  ])("%s", (_rule, input, expected) => {
    expect(strict(input)).toBe(expected);
  });

  it.each([
    ["strict: an unset ${var} fails naming it", "${missing}", 'variable not set (strict mode): "missing"'],
    [
      "strict: a transform of an unset var fails",
      "${missing^^}",
      'variable not set (strict mode): "missing"',
    ],
    ["strict: an unset var inside a default fails even when unused", "${name:=${missing}}", '"missing"'],
    ["${var-default} is not in Flux's grammar", "${missing-x}", "missing closing brace"],
    ["an unterminated expansion", "a: ${name", "missing closing brace"],
    ["an unterminated default", "${missing:=abc", "unable to parse substitution within function"],
    ["an empty name", "${}", "unable to parse variable name"],
    ["a name with a dash", "${my-var}", "missing closing brace"],
    ["a replace without its second slash", "${name/x}", "bad substitution"],
  ])("%s", (_rule, input, message) => {
    expect(() => strict(input)).toThrow(message);
  });

  it("without strict mode an unset variable is empty (the feature gate off)", () => {
    expect(lax("a${missing}b${missing^^}")).toBe("ab");
  });

  it("nesting is bounded: a deep chain is one error, not a stack overflow", () => {
    const deep = `${"${missing:=".repeat(MAX_NESTING + 5)}x${"}".repeat(MAX_NESTING + 5)}`;
    expect(() => strict(deep)).toThrow(`nested more than ${MAX_NESTING} deep`);
    const ok = `${"${missing:=".repeat(MAX_NESTING - 1)}x${"}".repeat(MAX_NESTING - 1)}`;
    expect(strict(ok)).toBe("x");
  });

  it("a large text with many expansions is linear", () => {
    const text = "v: ${name}\n".repeat(50_000);
    const started = Date.now();
    expect(strict(text)).toBe("v: podinfo\n".repeat(50_000));
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.each([
    ["* within a segment", "a*", "abc", true],
    ["* stops at /", "a*", "a/b", false],
    ["? one character", "a?c", "abc", true],
    ["class with range", "[a-c]x", "bx", true],
    ["negated class", "[^a-c]x", "dx", true],
    ["escaped star", "a\\*", "a*", true],
  ])("glob (Go path.Match): %s", (_rule, glob, text, matches) => {
    expect(globToRegExp(glob)?.test(text)).toBe(matches);
  });

  it.each([["[]"], ["[a-]"], ["a\\"], ["[abc"]])(
    "a malformed glob %s is no pattern (the value is left alone)",
    (g) => {
      expect(globToRegExp(g)).toBeUndefined();
      expect(strict(`\${name#${g}}`)).toBe("podinfo");
    },
  );
});
