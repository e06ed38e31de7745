import { resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { buildArtifact, parseOciUrl, pushArtifact } from "../../registry/artifact.ts";
import { RegistryClient } from "../../registry/client.ts";
import { parseFlags, readableDir } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";
import { artifactFlags, artifactMeta, asUsage } from "./artifact-flags.ts";

const usage = `shipmate push artifact oci://HOST/REPO:TAG --path DIR [--source URL] [--revision REV]
       [--created RFC3339] [--insecure-registry HOST:PORT]... [--pull-secret FILE]... [--json]

  --path DIR                the directory to publish (its files and folders; symlinks are refused)
  --source URL              where the content comes from (org.opencontainers.image.source)
  --revision REV            its revision there, e.g. main@sha1:<commit> (org.opencontainers.image.revision)
  --created RFC3339         build time (org.opencontainers.image.created); default $SOURCE_DATE_EPOCH,
                            else 1970-01-01T00:00:00Z so the same tree always gives the same digest
  --insecure-registry H:P   reach this registry over plain HTTP (loopback registries always are)
  --pull-secret FILE        a kubernetes.io/dockerconfigjson Secret with credentials (also: Docker config,
                            SHIPMATE_REGISTRY_<HOST>_USERNAME/_PASSWORD)
  --json                    print {"reference", "digest"} instead of a line

The artifact is Flux's format: \`flux pull artifact\` and an OCIRepository (Flux's or the
shipmate agent's) read it. Blobs the repository already holds are not sent again.

exit: 0 pushed, 1 the registry refused or failed, 2 usage error`;

export const command: Command = {
  summary: "Publish a directory as a Flux OCI artifact (gitless GitOps).",
  usage,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("push", argv, {
      ...artifactFlags,
      "insecure-registry": { type: "string", multiple: true },
      "pull-secret": { type: "string", multiple: true },
      json: { type: "boolean" },
    });
    const [what, url, ...rest] = positionals;
    if (what !== "artifact")
      throw new UsageError(
        what
          ? `unknown kind '${what}' (shipmate push artifact …)`
          : "what to push? (shipmate push artifact …)",
      );
    if (!url) throw new UsageError("push artifact needs the destination, oci://HOST/REPO:TAG");
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
    let ref: ReturnType<typeof parseOciUrl>;
    try {
      ref = parseOciUrl(url);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (!ref.tag || ref.digest) throw new UsageError(`${url}: push to a tag, oci://HOST/REPO:TAG`);
    if (!values.path) throw new UsageError("--path is required: the directory to publish");
    const dir = readableDir(resolve(io.cwd, values.path), "--path");
    const { defaultCredentials } = await import("../../registry/credentials.ts");
    const client = new RegistryClient({
      credentials: await defaultCredentials({
        env: io.env,
        secretFiles: (values["pull-secret"] ?? []).map((f) => resolve(io.cwd, f)),
      }),
      cacheDir: false,
      insecureRegistries: values["insecure-registry"] ?? [],
      env: io.env,
    });
    const artifact = await buildArtifact(dir, artifactMeta(values, io)).catch(asUsage);
    const pushed = await pushArtifact(client, ref, artifact);
    if (values.json)
      writeLine(io.stdout, JSON.stringify({ reference: pushed.reference, digest: pushed.digest }));
    else
      writeLine(
        io.stdout,
        `pushed ${pushed.reference} (${artifact.layer.files} files, ${artifact.layer.data.length} bytes; ${pushed.uploadedBlobs} blobs uploaded, ${pushed.skippedBlobs} already there)`,
      );
    return 0;
  },
};
