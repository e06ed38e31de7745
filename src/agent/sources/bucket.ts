/**
 * Bucket (source.toolkit.fluxcd.io/v1) with `provider: generic`: any
 * S3-compatible store, read with the AWS SDK's S3 client. The revision is
 * source-controller's: the sha256 of `<key> <etag>\n` over the listed
 * objects in key order, so an unchanged bucket costs one listing (one
 * request per 1,000 objects) and nothing else, and the revision is the one
 * Flux reports for the same bucket. The listing is bounded (a bucket of
 * 100,000 objects fails with one line, not an hour of downloads); keys that
 * would land outside the artifact are refused; the tree is swapped in only
 * once every object is down.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ListObjectsV2CommandOutput, S3Client } from "@aws-sdk/client-s3";
import { z } from "zod";
import { describeError, registerSecret } from "../../errors.ts";
import { Duration, SOURCE_API_VERSION } from "../../kube/schema.ts";
import { safeEntryPath } from "../../registry/tar.ts";
import { isExcluded, readPatterns } from "../../validate/sourceignore.ts";
import type { FieldTable } from "../fields/support.ts";
import type { Artifact } from "../git-source.ts";
import { parseDuration } from "../kustomization.ts";
import {
  type FetchContext,
  parseWith,
  SourceError,
  type SourceFetcher,
  type SourceHandler,
} from "./handler.ts";
import { pruneTree, treePaths } from "./tree.ts";

/** source.toolkit.fluxcd.io/v1 Bucket spec fields (source-controller v1.9.6 CRD), honoured or refused. */
export const BUCKET_FIELDS: FieldTable = {
  bucketName: "honoured",
  endpoint: "honoured",
  prefix: "honoured",
  region: "honoured",
  insecure: "honoured",
  interval: "honoured",
  timeout: "honoured",
  suspend: "honoured",
  secretRef: "honoured",
  "secretRef.name": "honoured",
  provider: {
    refused: "only generic (S3-compatible, access key) buckets are implemented",
    accepts: ["generic"],
  },
  certSecretRef: { refused: "client TLS certificates and custom CAs are not implemented" },
  proxySecretRef: { refused: "reaching the bucket through a proxy is not implemented" },
  serviceAccountName: { refused: "workload-identity authentication is not implemented" },
  sts: { refused: "security token service authentication is not implemented" },
  ignore: "honoured",
};

/** source.toolkit.fluxcd.io/v1 BucketSpec, the fields the agent reads. */
export const BucketSpec = z.looseObject({
  bucketName: z.string().min(1),
  endpoint: z
    .string()
    .min(1)
    .refine(
      (e) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(e),
      "endpoint is host[:port], without a scheme (insecure: true for http)",
    ),
  prefix: z.string().optional(),
  region: z.string().optional(),
  insecure: z.boolean().optional(),
  interval: Duration,
  timeout: Duration.optional(),
  suspend: z.boolean().optional(),
  secretRef: z.looseObject({ name: z.string().min(1) }).optional(),
  ignore: z.string().optional(),
});
export type BucketSpec = z.infer<typeof BucketSpec>;

export interface BucketLimits {
  /** Objects in one listing. Default 10,000. */
  objects: number;
  /** Bytes of all objects together. Default 1 GiB. */
  bytes: number;
}

export const DEFAULT_BUCKET_LIMITS: BucketLimits = { objects: 10_000, bytes: 1024 * 1024 * 1024 };

/** The object source-controller reads a bucket's ignore rules from (at the bucket's root only). */
const SOURCEIGNORE = ".sourceignore";
const MAX_SOURCEIGNORE_BYTES = 1024 * 1024;

/**
 * source-controller's Bucket revision: `sha256:` over `<key> <etag>\n` of
 * every object, keys sorted (Go's sort.Strings: byte order), ETags without
 * their quotes (as the minio client reports them).
 */
export function bucketRevision(objects: ReadonlyMap<string, string>): string {
  const h = createHash("sha256");
  const keys = [...objects.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const k of keys) h.update(`${k} ${objects.get(k)}\n`);
  return `sha256:${h.digest("hex")}`;
}

/** An S3 ETag as listed (`"abc"`, `W/"abc"`) without its quotes. */
export function bareEtag(etag: string | undefined): string {
  return (etag ?? "").replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** `accesskey`/`secretkey` of a Flux Bucket Secret; other Secret kinds are refused, naming their keys. */
export function bucketCredentials(
  data: Record<string, string>,
  where: string,
): { accessKeyId: string; secretAccessKey: string } {
  const decode = (k: string) =>
    data[k] === undefined ? undefined : Buffer.from(data[k], "base64").toString();
  const accessKeyId = decode("accesskey");
  const secretAccessKey = decode("secretkey");
  if (!accessKeyId || !secretAccessKey) {
    const has = Object.keys(data).sort().join(", ") || "no keys";
    throw new Error(`${where} has ${has}; the shipmate agent reads "accesskey" and "secretkey"`);
  }
  registerSecret(secretAccessKey);
  return { accessKeyId, secretAccessKey };
}

/** One line from an S3 SDK failure: its error code and HTTP status, never a signature or key. */
function s3Reason(err: unknown): string {
  const e = err as {
    name?: string;
    Code?: string;
    $metadata?: { httpStatusCode?: number };
    message?: string;
  };
  const status = e.$metadata?.httpStatusCode;
  const code = e.Code ?? e.name ?? "Error";
  const message = (e.message ?? "").split("\n")[0] ?? "";
  return `${code}${status ? ` (HTTP ${status})` : ""}${message && message !== code ? `: ${message}` : ""}`;
}

type S3Module = typeof import("@aws-sdk/client-s3");
let s3Module: Promise<S3Module> | undefined;
/**
 * The AWS SDK, loaded when a Bucket is first fetched. The specifier is not a
 * literal on purpose: bundlers (the GitHub Action's esbuild build, which
 * reaches this file through the agent's status helpers but never fetches a
 * bucket) leave it out instead of carrying a megabyte of SDK.
 */
function s3(): Promise<S3Module> {
  const specifier = "@aws-sdk/client-s3";
  s3Module ??= import(specifier) as Promise<S3Module>;
  return s3Module;
}

class BucketFetcher implements SourceFetcher<BucketSpec> {
  private readonly dir: string;
  private readonly limits: BucketLimits;
  private client: S3Client | undefined;
  private clientKey = "";
  private current: Artifact | undefined;
  private extracted = new Set<string>();

  constructor(dir: string, limits: BucketLimits) {
    this.dir = dir;
    this.limits = limits;
  }

  private async clientFor(spec: BucketSpec, ctx: FetchContext): Promise<S3Client> {
    let credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
    if (spec.secretRef) {
      try {
        credentials = bucketCredentials(
          await ctx.secret(spec.secretRef.name),
          `secret ${ctx.namespace}/${spec.secretRef.name}`,
        );
      } catch (err) {
        throw new SourceError("AuthenticationFailed", describeError(err), { cause: err });
      }
    }
    const timeoutMs = parseDuration(spec.timeout ?? "60s");
    const key = JSON.stringify([
      credentials,
      spec.endpoint,
      spec.insecure === true,
      spec.region ?? "",
      timeoutMs,
    ]);
    if (this.client && key === this.clientKey) return this.client;
    this.client?.destroy();
    const { S3Client } = await s3();
    this.client = new S3Client({
      endpoint: `${spec.insecure ? "http" : "https"}://${spec.endpoint}`,
      // S3-compatible stores ignore the region or want their own; the SDK needs one to sign.
      region: spec.region || "us-east-1",
      // Generic stores serve buckets under the path (`/bucket/key`), not as virtual hosts.
      forcePathStyle: true,
      maxAttempts: 3,
      requestHandler: { requestTimeout: timeoutMs, connectionTimeout: timeoutMs },
      ...(credentials
        ? { credentials }
        : // No Secret: anonymous requests, unsigned, as Flux's minio client sends them.
          {
            credentials: async () => ({ accessKeyId: "", secretAccessKey: "" }),
            signer: { sign: async (request) => request },
          }),
    });
    this.clientKey = key;
    return this.client;
  }

  async fetch(spec: BucketSpec, ctx: FetchContext): Promise<Artifact> {
    const client = await this.clientFor(spec, ctx);
    const listed = await this.list(client, spec);
    const objects = await this.withoutIgnored(client, spec, listed);
    const revision = bucketRevision(objects);
    if (this.current?.revision === revision && existsSync(this.current.dir)) return this.current;
    this.current = await this.download(client, spec, objects, revision);
    return this.current;
  }

  /** ListObjectsV2, paginated, stopped as soon as the bound is passed. */
  private async list(client: S3Client, spec: BucketSpec): Promise<Map<string, string>> {
    const { ListObjectsV2Command } = await s3();
    const objects = new Map<string, string>();
    let token: string | undefined;
    const where = `bucket '${spec.bucketName}' at ${spec.endpoint}`;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await client.send(
          new ListObjectsV2Command({
            Bucket: spec.bucketName,
            ...(spec.prefix ? { Prefix: spec.prefix } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (err) {
        throw new SourceError(
          "BucketOperationFailed",
          `listing objects from ${where} failed: ${s3Reason(err)}`,
          {
            cause: err,
          },
        );
      }
      for (const o of page.Contents ?? []) {
        if (!o.Key || o.Key.endsWith("/")) continue;
        objects.set(o.Key, bareEtag(o.ETag));
        if (objects.size > this.limits.objects)
          throw new SourceError(
            "BucketOperationFailed",
            `${where}${spec.prefix ? ` (prefix '${spec.prefix}')` : ""} lists more than ${this.limits.objects} objects, the most the agent fetches`,
          );
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }

  /**
   * As source-controller: the bucket's root `.sourceignore` and `spec.ignore`
   * (gitignore syntax, no default exclusions for buckets) decide which keys
   * are left out of the artifact and of its revision; the file itself never
   * is in it.
   */
  private async withoutIgnored(
    client: S3Client,
    spec: BucketSpec,
    listed: Map<string, string>,
  ): Promise<Map<string, string>> {
    let rules = "";
    const ignoreEtag = listed.get(SOURCEIGNORE);
    if (ignoreEtag !== undefined) {
      const { GetObjectCommand } = await s3();
      try {
        const got = await client.send(
          new GetObjectCommand({ Bucket: spec.bucketName, Key: SOURCEIGNORE, IfMatch: `"${ignoreEtag}"` }),
        );
        const body = (await got.Body?.transformToByteArray()) ?? new Uint8Array();
        if (body.byteLength > MAX_SOURCEIGNORE_BYTES)
          throw new Error(`larger than ${MAX_SOURCEIGNORE_BYTES} bytes`);
        rules = Buffer.from(body).toString("utf8");
      } catch (err) {
        throw new SourceError(
          "BucketOperationFailed",
          `reading '${SOURCEIGNORE}' from bucket '${spec.bucketName}' failed: ${err instanceof Error && !("$metadata" in err) ? err.message : s3Reason(err)}`,
          { cause: err },
        );
      }
    }
    const patterns = [...readPatterns(rules), ...readPatterns(spec.ignore ?? "")];
    const kept = new Map<string, string>();
    for (const [key, etag] of listed) {
      if (key === SOURCEIGNORE) continue;
      if (patterns.length && isExcluded(patterns, key.split("/"), false)) continue;
      kept.set(key, etag);
    }
    return kept;
  }

  private async download(
    client: S3Client,
    spec: BucketSpec,
    objects: Map<string, string>,
    revision: string,
  ): Promise<Artifact> {
    for (const key of objects.keys()) {
      const safe = safeEntryPath(key);
      if ("refused" in safe || !safe.path)
        throw new SourceError(
          "BucketOperationFailed",
          `object key "${key}" ${"refused" in safe ? safe.refused : "names no file"}`,
          { stalled: true },
        );
    }
    await mkdir(this.dir, { recursive: true });
    const staging = join(this.dir, "staging");
    const tree = join(this.dir, "tree");
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging);
    const { GetObjectCommand } = await s3();
    let bytes = 0;
    try {
      for (const [key, etag] of objects) {
        let body: Uint8Array;
        try {
          // IfMatch: an object replaced between listing and download fails the fetch instead of mixing revisions.
          const got = await client.send(
            new GetObjectCommand({ Bucket: spec.bucketName, Key: key, IfMatch: `"${etag}"` }),
          );
          body = (await got.Body?.transformToByteArray()) ?? new Uint8Array();
        } catch (err) {
          throw new SourceError(
            "BucketOperationFailed",
            `fetching object '${key}' from bucket '${spec.bucketName}' failed: ${s3Reason(err)}`,
            {
              cause: err,
            },
          );
        }
        bytes += body.byteLength;
        if (bytes > this.limits.bytes)
          throw new SourceError(
            "BucketOperationFailed",
            `bucket '${spec.bucketName}' holds more than ${this.limits.bytes} bytes, the most the agent fetches`,
          );
        const path = (safeEntryPath(key) as { path: string }).path;
        const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
        if (parent) await mkdir(join(staging, parent), { recursive: true });
        try {
          await writeFile(join(staging, path), body, { flag: "wx" });
        } catch (err) {
          throw new SourceError(
            "BucketOperationFailed",
            `object key "${key}" cannot be written (${(err as NodeJS.ErrnoException).code}: a key that is also a folder?)`,
            { stalled: true, cause: err },
          );
        }
      }
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      if (err instanceof SourceError) throw err;
      throw new SourceError("BucketOperationFailed", describeError(err), { cause: err });
    }
    await rm(tree, { recursive: true, force: true });
    await rename(staging, tree);
    this.extracted = treePaths([...objects.keys()].map((k) => (safeEntryPath(k) as { path: string }).path));
    return { revision, digest: revision, dir: tree };
  }

  /** Removes whatever a render wrote into the tree (files the source did not hold). */
  async clean(): Promise<void> {
    pruneTree(this.current?.dir, this.extracted);
  }
}

export function bucketHandler(limits: BucketLimits = DEFAULT_BUCKET_LIMITS): SourceHandler<BucketSpec> {
  return {
    kind: "Bucket",
    apiVersion: SOURCE_API_VERSION,
    plural: "buckets",
    failureReason: "BucketOperationFailed",
    writesStatus: true,
    holds: "manifests",
    fields: BUCKET_FIELDS,
    parse: (spec) => parseWith(BucketSpec, spec),
    interval: (spec) => spec.interval,
    suspended: (spec) => spec.suspend === true,
    signature: (spec) => ({
      bucket: spec.bucketName,
      endpoint: spec.endpoint,
      prefix: spec.prefix ?? "",
      region: spec.region ?? "",
      insecure: spec.insecure === true,
      secret: spec.secretRef?.name ?? null,
    }),
    open: (dir) => new BucketFetcher(dir, limits),
  };
}
