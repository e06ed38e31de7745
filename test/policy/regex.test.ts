// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Go expand templates are written ${name}
/**
 * Go regexp facts the filter relies on: RE2 syntax (re2js), unanchored
 * FindStringSubmatchIndex, and Regexp.Expand as documented by Go's regexp package.
 */
import { describe, expect, it } from "vitest";
import { compileGoRegexp, parseExpandTemplate } from "../../src/policy/regex.ts";

function expand(pattern: string, template: string, input: string): string | undefined {
  const re = compileGoRegexp(pattern);
  const m = re.exec(input);
  return m ? parseExpandTemplate(template, re).expand(input, m) : undefined;
}

describe("regex: Regexp.Expand semantics", () => {
  it.each([
    ["$1 is the first group", "^(\\w+)-(\\d+)$", "$1", "app-42", "app"],
    ["${1} is the same", "^(\\w+)-(\\d+)$", "${1}", "app-42", "app"],
    ["$name is a named group", "^(?P<name>\\w+)-(?P<n>\\d+)$", "$n", "app-42", "42"],
    ["${name} ends at the brace", "^(?P<name>\\w+)-(?P<n>\\d+)$", "${n}x", "app-42", "42x"],
    ["$$ is a literal $", "^(\\d)$", "$$$1", "7", "$7"],
    ["$1x means ${1x}: no such group, nothing", "^(\\d)$", "$1x", "7", ""],
    ["an unknown name expands to nothing", "^(\\d)$", "<$nope>", "7", "<>"],
    ["a group that did not take part expands to nothing", "^(\\d)(z)?$", "[$2]", "7", "[]"],
    ["$0 is the whole match", "\\d+", "$0", "v123-x", "123"],
    ["$01 is a name, not group 1", "^(\\d)$", "$01", "7", ""],
    ["a lone $ at the end is literal", "^(\\d)$", "$1$", "7", "7$"],
    ["${ without a name is literal", "^(\\d)$", "${}$1", "7", "${}7"],
    ["${ without a closing brace is literal", "^(\\d)$", "${1", "7", "${1"],
    ["no references: the template as is", "^(\\d)$", "fixed", "7", "fixed"],
  ])("expand: %s", (_rule, pattern, template, input, expected) => {
    expect(expand(pattern, template, input)).toBe(expected);
  });
});

describe("regex: RE2 syntax and matching", () => {
  it.each([
    ["matching is unanchored", "rc", "1.0.0-rc1", true],
    ["anchors anchor", "^rc", "1.0.0-rc1", false],
    ["$ is end of text, not end of line", "^a$", "a\n", false],
    ["(?i) flag", "(?i)^LATEST$", "latest", true],
    ["POSIX classes", "^[[:digit:]]+$", "2024", true],
    ["\\d is ASCII only", "^\\d$", "٣", false],
    ["\\Q…\\E quotes", "^\\Q1.0\\E$", "1x0", false],
  ])("regex: %s", (_rule, pattern, input, expected) => {
    expect(compileGoRegexp(pattern).test(input)).toBe(expected);
  });
  it.each([
    ["unclosed group", "(a", /missing closing \)/],
    ["nested repetition", "a**", /invalid nested repetition/],
    ["backreferences do not exist in RE2", "(a)\\1", /invalid escape/],
    ["lookahead does not exist in RE2", "a(?=b)", /invalid or unsupported Perl syntax/],
    ["repeat counts are bounded", "a{1001}", /invalid repeat count/],
    ["duplicate group names", "(?P<a>x)(?P<a>y)", /duplicate capture group name/],
  ])("regex: %s is refused with Go's message", (_rule, pattern, message) => {
    expect(() => compileGoRegexp(pattern)).toThrow(message);
  });
  it("regex: a pattern that backtracks exponentially elsewhere answers here (a backtracking engine would not return)", () => {
    const re = compileGoRegexp("^(a+)+$");
    const input = `${"a".repeat(5000)}!`;
    expect(re.test(input)).toBe(false);
    expect(re.exec(input)).toBeUndefined();
  });
});
