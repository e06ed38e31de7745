/**
 * A real Gitea (built by scripts/provision/50-gitea.sh) started headless on
 * 127.0.0.1 with a random port, a throwaway sqlite database and an admin
 * account with an access token made on the command line. A suite that cannot
 * find the binary fails: the forge tests never skip.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./net.ts";

const run = promisify(execFile);

export interface GiteaRepo {
  owner: string;
  name: string;
  /** `owner/name` */
  fullName: string;
  /** Clone URL carrying the admin token, for test-side git commands only. */
  authedCloneUrl: string;
  defaultBranch: string;
}

export interface GiteaServer {
  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  url: string;
  /** Access token of the admin user, scope `all`. */
  token: string;
  admin: { username: string; password: string; email: string };
  /** Authenticated JSON call to `/api/v1<path>`; throws on a non-2xx status. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** A new repository owned by the admin, initialised with a README on `main`. */
  createRepo(name: string): Promise<GiteaRepo>;
  /** Another user with its own token (scopes as given), for permission tests. */
  createUser(username: string, scopes: string): Promise<{ username: string; token: string }>;
  /** Merge a pull request as a person would, once Gitea's background mergeability check lets it. */
  mergePull(fullName: string, index: number): Promise<void>;
  /** Gitea's own log, to explain a failure. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export function giteaBinary(): string {
  const cache = process.env.SHIPMATE_CACHE ?? join(process.env.HOME ?? "/root", ".cache", "shipmate");
  const onPath = (process.env.PATH ?? "")
    .split(delimiter)
    .map((d) => join(d, "gitea"))
    .find((p) => existsSync(p));
  const bin = onPath ?? join(cache, "bin", "gitea");
  if (!existsSync(bin))
    throw new Error(
      `gitea binary not found (${bin}): run scripts/provision/50-gitea.sh (scripts/test.sh does)`,
    );
  return bin;
}

function staticRoot(bin: string): string {
  const cache = process.env.SHIPMATE_CACHE ?? join(process.env.HOME ?? "/root", ".cache", "shipmate");
  for (const dir of [join(bin, "..", "..", "share", "gitea"), join(cache, "share", "gitea")])
    if (existsSync(join(dir, "templates"))) return dir;
  throw new Error("gitea templates/options not found: run scripts/provision/50-gitea.sh");
}

export { freePort };

const running = new Set<ChildProcess>();
// A crashed test worker must not leave a Gitea behind.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function startGitea(): Promise<GiteaServer> {
  const bin = giteaBinary();
  const root = staticRoot(bin);
  const dir = await mkdtemp(join(tmpdir(), "shipmate-gitea-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, "app.ini");
  const isRoot = process.getuid?.() === 0;
  await mkdir(join(dir, "log"), { recursive: true });
  await writeFile(
    config,
    `APP_NAME = shipmate-test
RUN_MODE = prod
WORK_PATH = ${dir}
${isRoot ? "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n" : ""}
[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = ${port}
ROOT_URL = ${url}/
DOMAIN = 127.0.0.1
DISABLE_SSH = true
START_SSH_SERVER = false
; A test instance has nothing to drain: stop at once.
GRACEFUL_HAMMER_TIME = 1s
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = ${dir}/data
STATIC_ROOT_PATH = ${root}

[database]
DB_TYPE = sqlite3
PATH = ${dir}/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = ${dir}/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = shipmate-test-secret-key-not-for-production
PASSWORD_HASH_ALGO = pbkdf2_hi
MIN_PASSWORD_LENGTH = 8
PASSWORD_COMPLEXITY = off

[service]
DISABLE_REGISTRATION = true
ENABLE_NOTIFY_MAIL = false
DEFAULT_ALLOW_CREATE_ORGANIZATION = true

[mailer]
ENABLED = false

[actions]
ENABLED = false

[oauth2]
ENABLED = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[queue]
TYPE = channel

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[log]
MODE = file
LEVEL = Warn
ROOT_PATH = ${dir}/log

[other]
SHOW_FOOTER_VERSION = false
`,
  );
  const env = { ...process.env, GITEA_WORK_DIR: dir, HOME: dir, GITEA_CUSTOM: join(dir, "custom") };
  const cli = (...args: string[]) =>
    run(bin, [...args, "--config", config, "--work-path", dir], { env, timeout: 120_000 });

  const admin = { username: "shipmate-admin", password: "shipmate-admin-pw", email: "admin@example.test" };
  try {
    await cli("migrate");
    await cli(
      "admin",
      "user",
      "create",
      "--admin",
      "--username",
      admin.username,
      "--password",
      admin.password,
      "--email",
      admin.email,
      "--must-change-password=false",
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`gitea setup failed: ${(err as { stderr?: string }).stderr ?? String(err)}`);
  }
  // The CLI logs warnings (e.g. running as root) on stdout too; the token is the line that looks like one.
  const tokenOut = (
    await cli(
      "admin",
      "user",
      "generate-access-token",
      "--username",
      admin.username,
      "--token-name",
      "shipmate-tests",
      "--scopes",
      "all",
      "--raw",
    )
  ).stdout;
  const token = tokenOut
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^[0-9a-f]{40}$/.test(l))
    .pop();
  if (!token) throw new Error(`gitea did not print an access token: ${tokenOut}`);

  // A watchdog shell stops Gitea when this test process dies without running its
  // exit hooks (a worker killed by SIGKILL): no Gitea outlives its suite.
  const child = spawn(
    "bash",
    [
      "-c",
      `"$1" web --config "$2" --work-path "$3" & g=$!
stopg() { kill $g 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 $g 2>/dev/null || return 0; sleep 0.5; done; kill -9 $g 2>/dev/null; }
trap 'stopg; exit 0' TERM INT
while kill -0 "$4" 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 1 & wait $!; done
stopg
kill -0 "$4" 2>/dev/null || rm -rf "$3"`,
      "gitea-watchdog",
      bin,
      config,
      dir,
      String(process.pid),
    ],
    { env, stdio: ["ignore", "ignore", "pipe"] },
  );
  running.add(child);
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`gitea exited with ${child.exitCode} before it was ready: ${stderr}`);
    }
    try {
      const res = await fetch(`${url}/api/v1/version`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`gitea did not become ready on ${url} within 60 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const call = async <T>(method: string, path: string, body?: unknown, tok = token): Promise<T> => {
    const res = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `token ${tok}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`gitea ${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };

  return {
    url,
    token,
    admin,
    api: (method, path, body) => call(method, path, body),
    async createRepo(name) {
      const repo = await call<{ default_branch: string }>("POST", "/user/repos", {
        name,
        auto_init: true,
        default_branch: "main",
        readme: "Default",
      });
      return {
        owner: admin.username,
        name,
        fullName: `${admin.username}/${name}`,
        authedCloneUrl: `http://${admin.username}:${token}@127.0.0.1:${port}/${admin.username}/${name}.git`,
        defaultBranch: repo.default_branch,
      };
    },
    async createUser(username, scopes) {
      await call("POST", "/admin/users", {
        username,
        email: `${username}@example.test`,
        password: `${username}-password`,
        must_change_password: false,
      });
      const res = await fetch(`${url}/api/v1/users/${username}/tokens`, {
        method: "POST",
        headers: {
          authorization: `Basic ${Buffer.from(`${username}:${username}-password`).toString("base64")}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ name: "t", scopes: scopes.split(",") }),
      });
      if (!res.ok) throw new Error(`gitea token for ${username}: ${res.status} ${await res.text()}`);
      const tok = (await res.json()) as { sha1: string };
      return { username, token: tok.sha1 };
    },
    async mergePull(fullName, index) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          await call("POST", `/repos/${fullName}/pulls/${index}/merge`, { Do: "merge" });
          return;
        } catch (err) {
          // 405 "Please try again later": the pull request is still being checked.
          if (!/: 405 /.test(String(err)) || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
    async log() {
      return readFile(join(dir, "log", "gitea.log"), "utf8").catch(() => stderr);
    },
    stop,
  };
}
