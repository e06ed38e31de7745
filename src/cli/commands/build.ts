import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { buildArtifact } from "../../registry/artifact.ts";
import { parseFlags, readableDir } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";
import { artifactFlags, artifactMeta, asUsage } from "./artifact-flags.ts";

const usage = `shipmate build artifact --path DIR --output FILE.tgz [--json]

  --path DIR       the directory to archive (files and folders; symlinks are refused)
  --output FILE    where to write the gzip'd tarball: the exact layer \`push artifact\` would send
  --json           print {"output", "digest", "files", "bytes"} instead of a line

Reproducible: the same tree gives the same bytes (entries in byte order, zero mtimes,
uid/gid 0, modes 0644/0755, gzip without a timestamp), so the same layer digest.

exit: 0 written, 1 the tree cannot be archived (a symlink, an unreadable file), 2 usage error`;

export const command: Command = {
  summary: "Archive a directory as a Flux artifact layer (a reproducible .tgz).",
  usage,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("build", argv, {
      path: artifactFlags.path,
      output: { type: "string", short: "o" },
      json: { type: "boolean" },
    });
    const [what, ...rest] = positionals;
    if (what !== "artifact")
      throw new UsageError(
        what
          ? `unknown kind '${what}' (shipmate build artifact …)`
          : "what to build? (shipmate build artifact …)",
      );
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
    if (!values.path) throw new UsageError("--path is required: the directory to archive");
    if (!values.output) throw new UsageError("--output is required: the .tgz file to write");
    const dir = readableDir(resolve(io.cwd, values.path), "--path");
    const output = resolve(io.cwd, values.output);
    const built = await buildArtifact(dir, artifactMeta({}, io)).catch(asUsage);
    await writeFile(output, built.layer.data);
    if (values.json)
      writeLine(
        io.stdout,
        JSON.stringify({
          output,
          digest: built.layer.digest,
          files: built.layer.files,
          bytes: built.layer.data.length,
        }),
      );
    else
      writeLine(
        io.stdout,
        `wrote ${values.output}: ${built.layer.files} files, ${built.layer.data.length} bytes, ${built.layer.digest}`,
      );
    return 0;
  },
};
