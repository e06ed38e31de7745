/**
 * A real S3-compatible server for tests: versitygw (built from Go modules
 * by scripts/provision/80-s3.sh) on 127.0.0.1 with a random port, its posix
 * backend over a temp directory (metadata in a sidecar directory, so any
 * file system works), one root access key. Objects are written through the
 * S3 API itself, with the AWS SDK.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { findBinary, freePort } from "./kube.ts";

export interface TestS3 {
  /** `127.0.0.1:<port>`: a Bucket's `spec.endpoint` (with `insecure: true`). */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  client: S3Client;
  createBucket(name: string): Promise<void>;
  put(bucket: string, key: string, body: string): Promise<void>;
  remove(bucket: string, key: string): Promise<void>;
  log(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGTERM");
});

export async function startS3(): Promise<TestS3> {
  const bin = findBinary("versitygw");
  const dir = mkdtempSync(join(tmpdir(), "shipmate-s3-"));
  mkdirSync(join(dir, "data"));
  mkdirSync(join(dir, "meta"));
  const accessKey = `shipmate${randomBytes(4).toString("hex")}`;
  const secretKey = randomBytes(16).toString("hex");
  const port = await freePort();
  const endpoint = `127.0.0.1:${port}`;
  const child = spawn(
    bin,
    [
      "--access",
      accessKey,
      "--secret",
      secretKey,
      "--port",
      endpoint,
      "posix",
      "--sidecar",
      join(dir, "meta"),
      join(dir, "data"),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  running.add(child);
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d.toString("utf8")).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let gone = false;
  const exited = new Promise<void>((r) =>
    child.once("exit", () => {
      gone = true;
      running.delete(child);
      r();
    }),
  );
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (gone) throw new Error(`versitygw exited:\n${output}`);
    try {
      const res = await fetch(`http://${endpoint}/`);
      await res.body?.cancel();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGTERM");
        throw new Error(`versitygw did not answer on ${endpoint}:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const client = new S3Client({
    endpoint: `http://${endpoint}`,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  });
  return {
    endpoint,
    accessKey,
    secretKey,
    client,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async put(bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async remove(bucket, key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    log: () => output,
    async stop() {
      client.destroy();
      if (!gone) {
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
