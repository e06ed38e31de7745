/**
 * Go's `strconv.ParseFloat(s, 64)`, which Flux's numerical policy applies to
 * every tag: decimal and hexadecimal (`0x1p-2`) literals, `_` digit
 * separators, `Inf`/`Infinity`/`NaN` in any case; no surrounding spaces.
 * A value out of float64 range is an error there, so it is here.
 */

const DECIMAL = /^[+-]?(?=\.?[0-9])[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?$/;
const HEX = /^[+-]?0[xX](?=\.?[0-9a-fA-F_])[0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?[pP][+-]?[0-9_]+$/;

/** Go `underscoreOK`: `_` only between digits, or between the base prefix and a digit. */
function underscoresOk(s: string): boolean {
  let t = s;
  if (t[0] === "+" || t[0] === "-") t = t.slice(1);
  let saw = "^";
  let i = 0;
  let hex = false;
  if (t.length >= 2 && t[0] === "0" && "xXbBoO".includes(t[1]!)) {
    i = 2;
    saw = "0";
    hex = t[1] === "x" || t[1] === "X";
  }
  for (; i < t.length; i++) {
    const c = t[i]!;
    if ((c >= "0" && c <= "9") || (hex && /[a-fA-F]/.test(c))) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

function special(s: string): number | undefined {
  const lower = s.toLowerCase();
  if (lower === "nan") return Number.NaN;
  const unsigned = lower[0] === "+" || lower[0] === "-" ? lower.slice(1) : lower;
  if (unsigned === "inf" || unsigned === "infinity") {
    return lower[0] === "-" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  return undefined;
}

function parseHex(s: string): number {
  const negative = s[0] === "-";
  const body = s.replace(/^[+-]?0[xX]/, "").replaceAll("_", "");
  const p = body.search(/[pP]/);
  const mantissa = body.slice(0, p);
  const exponent = Number.parseInt(body.slice(p + 1), 10);
  const dot = mantissa.indexOf(".");
  const digits = dot >= 0 ? mantissa.slice(0, dot) + mantissa.slice(dot + 1) : mantissa;
  const fractionDigits = dot >= 0 ? mantissa.length - dot - 1 : 0;
  const value = (digits === "" ? 0 : Number(BigInt(`0x${digits}`))) * 2 ** (exponent - 4 * fractionDigits);
  return negative ? -value : value;
}

/** The float64 Go would parse, or `undefined` where Go reports a syntax or range error. */
export function parseGoFloat(s: string): number | undefined {
  const sp = special(s);
  if (sp !== undefined) return sp;
  let value: number;
  if (DECIMAL.test(s)) {
    if (s.includes("_") && !underscoresOk(s)) return undefined;
    value = Number(s.replaceAll("_", ""));
  } else if (HEX.test(s)) {
    if (s.includes("_") && !underscoresOk(s)) return undefined;
    value = parseHex(s);
  } else {
    return undefined;
  }
  return Number.isFinite(value) ? value : undefined;
}
