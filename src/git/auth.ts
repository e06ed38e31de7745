/**
 * HTTPS credentials for git without ever persisting them: a token reaches git
 * only through the environment of the git processes shipmate starts, read
 * back by a tiny GIT_ASKPASS script; credential helpers are switched off for
 * those commands so none of them stores it. Nothing goes into argv, the
 * remote URL or `.git/config`. Without a token, git's own credential helpers
 * and SSH configuration apply unchanged.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { registerSecret } from "../errors.ts";
import { releaseScratch, scratchDir } from "./scratch.ts";

export interface GitCredentials {
  username: string;
  password: string;
}

/** Where a token comes from when `--token-env` names no other variable. */
export const DEFAULT_TOKEN_ENV = "SHIPMATE_GIT_TOKEN";
/** GitHub wants this user name with an installation or personal token; GitLab and Gitea accept any. */
export const DEFAULT_TOKEN_USER = "x-access-token";

/** Splits `https://user:secret@host/x` into a URL without userinfo and the credentials it carried. */
export function stripUserinfo(url: string): { url: string; credentials?: GitCredentials } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url };
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return { url };
  if (!u.username && !u.password) return { url };
  const credentials = u.password
    ? {
        username: decodeURIComponent(u.username) || DEFAULT_TOKEN_USER,
        password: decodeURIComponent(u.password),
      }
    : undefined;
  u.username = "";
  u.password = "";
  if (credentials) registerSecret(credentials.password);
  return credentials ? { url: u.toString(), credentials } : { url: u.toString() };
}

/** Credentials from the environment: the token variable, with an optional user name variable beside it. */
export function credentialsFromEnv(
  env: NodeJS.ProcessEnv,
  tokenVar = DEFAULT_TOKEN_ENV,
): GitCredentials | undefined {
  const token = env[tokenVar];
  if (!token) return undefined;
  registerSecret(token);
  return { username: env.SHIPMATE_GIT_USERNAME || DEFAULT_TOKEN_USER, password: token };
}

const ASKPASS = `#!/bin/sh
# git asks "Username for '…':" then "Password for '…':"; answer from the environment only.
case "$1" in
  Username*) printf '%s\\n' "$SHIPMATE_ASKPASS_USERNAME" ;;
  *) printf '%s\\n' "$SHIPMATE_ASKPASS_PASSWORD" ;;
esac
`;

export interface AskPass {
  /** Environment to add to git processes. */
  env: Record<string, string>;
  /** `-c` settings for git processes (clears credential helpers so none stores the token). */
  config: string[];
  dispose(): void;
}

/** Installs the askpass script in a private temporary directory. */
export function askPass(credentials: GitCredentials): AskPass {
  const dir = scratchDir("askpass");
  const script = join(dir, "askpass.sh");
  writeFileSync(script, ASKPASS, { mode: 0o700 });
  chmodSync(script, 0o700);
  return {
    env: {
      GIT_ASKPASS: script,
      SHIPMATE_ASKPASS_USERNAME: credentials.username,
      SHIPMATE_ASKPASS_PASSWORD: credentials.password,
    },
    config: ["credential.helper="],
    dispose: () => releaseScratch(dir),
  };
}
