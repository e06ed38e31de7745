/**
 * Fail fast where retrying cannot help: a certificate the client does not
 * trust and a name that does not resolve are not retried; a registry that
 * accepts the connection and never answers is abandoned within the timeout,
 * not once per attempt; and no timer is left holding the process open.
 * Real TLS and TCP servers on 127.0.0.1.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isRetryable, Transport } from "../../src/registry/http.ts";
import { tempDir } from "../infra/git.ts";

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    (s as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise((r) => s.close(r));
  }
});

function selfSignedCert(): { key: Buffer; cert: Buffer } {
  const dir = tempDir();
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "key.pem",
      "-out",
      "cert.pem",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
    ],
    { cwd: dir, stdio: "ignore" },
  );
  return { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) };
}

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

function request(port: number, scheme: "https" | "http") {
  return {
    registry: `127.0.0.1:${port}`,
    url: new URL(`${scheme}://127.0.0.1:${port}/v2/app/tags/list`),
    kind: "tags" as const,
    what: "tag list of app",
  };
}

describe("fail fast where retrying cannot help", () => {
  it("an untrusted certificate: one handshake, one line, no timer left behind", async () => {
    let handshakes = 0;
    const server = createHttpsServer(selfSignedCert(), (_req, res) => res.end("{}"));
    server.on("connection", () => handshakes++);
    const port = await listen(server);
    const transport = new Transport({ timeoutMs: 60_000, retry: { baseDelayMs: 50 } });
    const before = timeouts();
    const t0 = performance.now();
    const err = await transport.request(request(port, "https"), async () => "x").catch((e: Error) => e);
    expect(String(err)).toMatch(
      /cannot reach https:\/\/127\.0\.0\.1:\d+ \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)/,
    );
    expect(handshakes).toBe(1);
    expect(transport.stats().retries).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5_000);
    // The 60 s deadline of the failed attempt is gone: nothing keeps the process alive.
    expect(timeouts()).toBeLessThanOrEqual(before);
  });

  it("a registry that accepts and never answers is abandoned within the timeout, once", async () => {
    let connections = 0;
    const held: Socket[] = [];
    const port = await listen(
      createTcpServer((s) => {
        connections++;
        held.push(s);
      }),
    );
    const transport = new Transport({ timeoutMs: 600, retry: { baseDelayMs: 50 } });
    const t0 = performance.now();
    const err = await transport.request(request(port, "http"), async () => "x").catch((e: Error) => e);
    const took = performance.now() - t0;
    for (const s of held) s.destroy();
    expect(String(err)).toMatch(/no answer within 600ms/);
    expect(connections).toBe(1);
    expect(took).toBeLessThan(600 * 1.9);
  });

  it.each<[string, unknown, boolean]>([
    ["a refused connection is retried", netError("ECONNREFUSED"), true],
    ["a reset connection is retried", netError("ECONNRESET"), true],
    ["a name that does not resolve is not", netError("ENOTFOUND"), false],
    ["a resolver that has no answer for the name is not", netError("EAI_NONAME"), false],
    ["a self-signed certificate is not", netError("DEPTH_ZERO_SELF_SIGNED_CERT"), false],
    ["an expired certificate is not", netError("CERT_HAS_EXPIRED"), false],
    ["a certificate for another name is not", netError("ERR_TLS_CERT_ALTNAME_INVALID"), false],
    ["TLS spoken to a plain-HTTP port is not", netError("ERR_SSL_WRONG_VERSION_NUMBER"), false],
    [
      "no answer within the timeout is not",
      Object.assign(new Error("no answer within 30s"), { name: "TimeoutError" }),
      false,
    ],
    ["a thrown string is not", "boom", false],
  ])("retry: %s", (_rule, err, want) => {
    expect(isRetryable(err)).toBe(want);
  });
});

/** What fetch throws for a network failure: a TypeError whose cause carries the code. */
function netError(code: string): Error {
  return new TypeError("fetch failed", { cause: Object.assign(new Error(code), { code }) });
}
