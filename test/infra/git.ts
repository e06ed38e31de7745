/**
 * Real git remotes for tests: bare repositories served over smart HTTP by
 * `git http-backend` (CGI) behind a small Node server on 127.0.0.1 with basic
 * auth, and plain `file://` remotes. Helpers build and inspect repositories
 * with the git binary itself.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const TEST_IDENTITY = ["-c", "user.name=Test Seeder", "-c", "user.email=seeder@example.test"];

/** Runs git in `cwd` and returns stdout; throws with stderr on failure. */
export function git(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync("git", [...TEST_IDENTITY, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, GIT_TERMINAL_PROMPT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    // A synchronous git against this process's own HTTP server would wait forever; fail instead.
    timeout: 120_000,
  });
}

/**
 * git without blocking the event loop: required whenever the remote is the
 * in-process HTTP server, which a synchronous child would deadlock.
 */
export function gitAsync(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      [...TEST_IDENTITY, ...args],
      { cwd, encoding: "utf8", env: { ...process.env, GIT_TERMINAL_PROMPT: "0", ...env } },
      (err, stdout, stderr) => (err ? reject(new Error(`git ${args[0]}: ${stderr}`)) : resolve(stdout)),
    );
  });
}

export function tempDir(prefix = "shipmate-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `files` (path → content) under `dir`. */
export function writeFiles(dir: string, files: Record<string, string | Buffer>): void {
  for (const [p, content] of Object.entries(files)) {
    const full = join(dir, p);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
}

/** A bare repository at `path` whose `branch` holds one commit with `files`. */
export function seedBare(path: string, files: Record<string, string | Buffer>, branch = "main"): void {
  mkdirSync(path, { recursive: true });
  git(path, ["init", "--quiet", "--bare", `--initial-branch=${branch}`]);
  const work = tempDir();
  try {
    git(work, ["init", "--quiet", `--initial-branch=${branch}`]);
    writeFiles(work, files);
    git(work, ["add", "--all"]);
    git(work, ["commit", "--quiet", "-m", "seed"]);
    git(work, ["push", "--quiet", path, `HEAD:refs/heads/${branch}`]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A local (non-bare) checkout of a new bare remote: returns both paths. */
export function seedCheckout(
  files: Record<string, string | Buffer>,
  branch = "main",
): { bare: string; work: string } {
  const root = tempDir();
  const bare = join(root, "remote.git");
  seedBare(bare, files, branch);
  const work = join(root, "work");
  git(root, ["clone", "--quiet", bare, work]);
  return { bare, work };
}

/** The content of `path` at `rev` in a (bare or not) repository. */
export function show(repo: string, rev: string, path: string): string {
  return git(repo, ["show", `${rev}:${path}`]);
}

export interface GitHttpServer {
  /** `http://127.0.0.1:<port>`; repositories are at `${url}/<name>.git`. */
  url: string;
  root: string;
  user: string;
  password: string;
  /** Authorization header values seen, in order (to prove what the client sent). */
  requests: { method: string; path: string; authorized: boolean }[];
  /** Creates `<root>/<name>.git` seeded with `files`; returns its HTTP URL (no credentials). */
  createRepo(name: string, files: Record<string, string | Buffer>, branch?: string): string;
  close(): Promise<void>;
}

function cgi(root: string, req: IncomingMessage, res: ServerResponse, user: string): void {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: "1",
    REQUEST_METHOD: req.method ?? "GET",
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers["content-type"] ?? "",
    REMOTE_USER: user,
    REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
    GATEWAY_INTERFACE: "CGI/1.1",
    SERVER_PROTOCOL: "HTTP/1.1",
  };
  if (req.headers["content-length"]) env.CONTENT_LENGTH = String(req.headers["content-length"]);
  if (req.headers["content-encoding"]) env.HTTP_CONTENT_ENCODING = String(req.headers["content-encoding"]);
  if (req.headers["git-protocol"]) env.GIT_PROTOCOL = String(req.headers["git-protocol"]);
  const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on("data", (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const sep = head.indexOf("\r\n\r\n");
    if (sep === -1) return;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, sep).toString("latin1").split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon === -1) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    res.write(head.subarray(sep + 4));
  });
  child.stdout.on("end", () => res.end());
  child.on("error", () => {
    res.writeHead(500);
    res.end();
  });
}

/** Starts the smart-HTTP server on a random port of 127.0.0.1 with one basic-auth user. */
export async function startGitHttpServer(
  opts: { user?: string; password?: string } = {},
): Promise<GitHttpServer> {
  const root = tempDir("shipmate-git-http-");
  const user = opts.user ?? "bot";
  const password = opts.password ?? "s3cret-token-for-tests";
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  const requests: GitHttpServer["requests"] = [];
  const server: Server = createServer((req, res) => {
    const authorized = req.headers.authorization === expected;
    requests.push({ method: req.method ?? "", path: req.url ?? "", authorized });
    if (!authorized) {
      req.resume();
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="shipmate-test"' });
      res.end("authentication required\n");
      return;
    }
    cgi(root, req, res, user);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    root,
    user,
    password,
    requests,
    createRepo(name, files, branch = "main") {
      seedBare(join(root, `${name}.git`), files, branch);
      git(join(root, `${name}.git`), ["config", "http.receivepack", "true"]);
      return `${url}/${name}.git`;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
