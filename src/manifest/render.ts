/**
 * Writing a new value into an existing scalar's place in the source: the
 * quoting style stays what it was unless the new value cannot be written in
 * it; a plain scalar is quoted only when the new value would otherwise read
 * back as something else (a number, a boolean, a comment…).
 */

export type ScalarStyle = "plain" | "single" | "double" | "block";

// Plain text that YAML 1.1 (what Kubernetes' sigs.k8s.io/yaml and Helm read) or
// YAML 1.2 would resolve to something other than a string: null, booleans,
// numbers in every base, sexagesimal, infinities, timestamps.
const NON_STRING = [
  /^(?:~|null|Null|NULL)$/,
  /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  /^[-+]?(?:\d[\d_]*)?(?:\.[\d_]*)?(?:[eE][-+]?\d+)?$/,
  /^[-+]?0(?:x[\da-fA-F_]+|o[0-7_]+|b[01_]+)$/,
  /^[-+]?\d[\d_]*(?::[0-5]?\d)+(?:\.[\d_]*)?$/,
  /^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$/,
  /^\d{4}-\d\d?-\d\d?(?:[Tt ].*)?$/,
  /^[=<]$/,
];

/** Whether `value` can be written as a plain scalar and read back as the same string. */
export function plainSafe(value: string, inFlow: boolean): boolean {
  if (value === "" || value.trim() !== value) return false;
  if (/[\n\r\t]/.test(value)) return false;
  if (value.includes(": ") || value.includes(" #") || value.endsWith(":")) return false;
  if (/^[-?:,[\]{}#&*!|>'"%@`]/.test(value)) return false;
  if (inFlow && /[,[\]{}]/.test(value)) return false;
  if (/^(?:---|\.\.\.)/.test(value)) return false;
  return !NON_STRING.some((re) => re.test(value));
}

export function singleQuoted(value: string): string | undefined {
  // A single-quoted scalar cannot carry line breaks without folding them.
  if (/[\n\r]/.test(value)) return undefined;
  return `'${value.replaceAll("'", "''")}'`;
}

export function doubleQuoted(value: string): string {
  // JSON string syntax is a subset of YAML double-quoted syntax.
  return JSON.stringify(value);
}

/**
 * The source text that replaces a scalar of `style` so it reads as `value`,
 * or undefined when that style cannot hold it in place (block scalars).
 */
export function renderScalar(value: string, style: ScalarStyle, inFlow: boolean): string | undefined {
  switch (style) {
    case "plain":
      return plainSafe(value, inFlow) ? value : doubleQuoted(value);
    case "single":
      return singleQuoted(value) ?? doubleQuoted(value);
    case "double":
      return doubleQuoted(value);
    case "block":
      return undefined;
  }
}
