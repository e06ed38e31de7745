/** Go strconv.ParseFloat(s, 64) facts (strconv/atof_test.go), which Flux's numerical policy applies to tags. */
import { describe, expect, it } from "vitest";
import { parseGoFloat } from "../../src/policy/numeric.ts";

describe("numerical: what Go's ParseFloat accepts", () => {
  it.each([
    ["1", 1],
    ["+1", 1],
    ["-62", -62],
    ["1606364286", 1606364286],
    ["53.47333823144817", 53.47333823144817],
    ["1e23", 1e23],
    ["1E23", 1e23],
    ["100000000000000000000000", 1e23],
    ["1e-100", 1e-100],
    ["1.", 1],
    [".5", 0.5],
    ["0x1p-2", 0.25],
    ["0x1.8p1", 3],
    ["0X10P0", 16],
    ["1_23.50_0_0e+1_2", 1.235e14],
    ["0x_1_2.3_4_5p+1_2", 74565],
    ["1e-400", 0],
    ["inf", Number.POSITIVE_INFINITY],
    ["-Inf", Number.NEGATIVE_INFINITY],
    ["+INFINITY", Number.POSITIVE_INFINITY],
  ])("%j parses as %d", (s, expected) => {
    expect(parseGoFloat(s)).toBe(expected);
  });
  it("NaN (any case) parses as NaN", () => {
    expect(parseGoFloat("nAn")).toBeNaN();
  });
  it.each([
    "",
    " 1",
    "1 ",
    "1a",
    "b",
    "1.2.3",
    "1e",
    "e1",
    ".",
    "0x1",
    "0x",
    "+nan",
    "infin",
    "1e400",
    "0x1p2000",
    "-_123.5e+12",
    "_123.5e+12",
    "1__23.5e+12",
    "123_.5e+12",
    "123._5e+12",
    "123.5_e+12",
    "123.5e_+12",
    "123.5e+_12",
    "123.5e+12_",
    "0x__12.345p+12",
    "0x12.345_p+12",
    "v1",
    "1,5",
  ])("%j is a syntax or range error", (s) => {
    expect(parseGoFloat(s)).toBeUndefined();
  });
});
