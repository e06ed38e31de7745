/**
 * Request bodies are bounded while they stream: a chunked body (no declared
 * length) far over the limit is answered 413 as soon as it crosses it, and
 * the refusal is logged, on the real HTTP server `serve` runs.
 */
import { request } from "node:http";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MAX_BODY_BYTES } from "../../src/webhooks/receiver.ts";
import { startWebhookService, type WebhookService } from "../../src/webhooks/service.ts";

const lines: { msg: string; status?: number }[] = [];
let service: WebhookService;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  service = await startWebhookService({
    listen: "127.0.0.1:0",
    auth: { allowUnauthenticated: true },
    log: pino({ level: "info" }, sink),
    job: { repo: "/nonexistent/fleet", policies: { kind: "repo" }, dryRun: true, env: {} },
  });
});
afterAll(async () => {
  await service?.close();
});

/** POSTs `total` bytes in 64 KiB chunks without a Content-Length; the status, or the error that ended it. */
function postChunked(url: string, total: number): Promise<{ status?: number; error?: string; sent: number }> {
  return new Promise((resolve) => {
    let sent = 0;
    let status: number | undefined;
    const req = request(url, { method: "POST", headers: { "transfer-encoding": "chunked" } }, (res) => {
      status = res.statusCode;
      res.resume();
      res.on("end", () => resolve({ status, sent }));
    });
    req.on("error", (err) => resolve({ ...(status ? { status } : {}), error: err.message, sent }));
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

describe("webhook bodies: a streaming limit", () => {
  it("a chunked 20 MB body gets 413 (not a reset), early, and one log line", async () => {
    const from = lines.length;
    const r = await postChunked(`${service.url}/hooks/registry`, 20 * 1024 * 1024);
    expect(r.status).toBe(413);
    const refused = lines.slice(from).filter((l) => /body over the size limit/.test(l.msg));
    expect(refused).toHaveLength(1);
    expect(refused[0]?.status).toBe(413);
  });

  it("a chunked body just under the limit is read", async () => {
    const r = await postChunked(`${service.url}/hooks/registry`, DEFAULT_MAX_BODY_BYTES - 64 * 1024);
    expect(r.status).not.toBe(413);
  });
});
