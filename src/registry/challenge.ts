/**
 * `WWW-Authenticate` parsing (RFC 7235 §4.1 challenges with RFC 7230 quoted
 * strings), as registries send it: `Bearer realm="https://auth/token",
 * service="registry",scope="repository:a/b:pull,push"` — a quoted value may
 * hold commas, and one header may carry several challenges.
 */

export interface Challenge {
  /** Lowercased: `basic`, `bearer`. */
  scheme: string;
  /** Parameter names lowercased; values unquoted. */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skip = (chars: RegExp) => {
    while (i < n && chars.test(header[i] ?? "")) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && TOKEN_CHAR.test(header[i] ?? "")) i++;
    return header.slice(start, i);
  };
  const quoted = (): string => {
    i++; // opening quote
    let value = "";
    while (i < n && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < n) i++;
      value += header[i];
      i++;
    }
    i++; // closing quote (or end)
    return value;
  };

  while (i < n) {
    skip(/[\s,]/);
    const scheme = token();
    if (!scheme) {
      i++; // a stray character: not worth failing the whole header over
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    // Parameters until the next token that is not followed by "=" (that one starts a new challenge).
    for (;;) {
      skip(/[\s,]/);
      const mark = i;
      const name = token();
      if (!name) break;
      skip(/[ \t]/);
      if (header[i] !== "=") {
        // token68 (e.g. `Negotiate abc==`) or the next scheme.
        i = mark;
        break;
      }
      i++;
      skip(/[ \t]/);
      const value = header[i] === '"' ? quoted() : token();
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return out;
}
