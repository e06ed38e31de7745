import { resolve } from "node:path";
import { formatRefusal } from "../../config/limits.ts";
import { UsageError } from "../../errors.ts";
import { runScan } from "../../run/scan.ts";
import type { PolicyResult } from "../../scan/index.ts";
import { formatTable } from "../../table.ts";
import { parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import type { CliIO } from "../io.ts";
import { writeLine } from "../io.ts";
import { REGISTRY_FLAGS, registryScanOptions } from "../registry-flags.ts";

const usage = `shipmate scan [--policies DIR] [--json] [--digest] [--cache-dir DIR | --no-cache]
       [--insecure-registry HOST:PORT]... [--pull-secret FILE]... [--platform OS/ARCH] [--policy NS:NAME]...

  --policies DIR            directory of policy documents (Flux ImageRepository/ImagePolicy or
                            shipmate.dev/v1alpha1 ImagePolicy), read recursively (default: .)
  --json                    print a JSON array of {policy, image, tag, digest?} (failures carry reason, error)
  --digest                  resolve the digest of every selected tag
  --cache-dir DIR           persistent registry cache (default: $XDG_CACHE_HOME/shipmate/registry)
  --no-cache                no persistent cache
  --insecure-registry H:P   reach this registry over plain HTTP (loopback registries always are)
  --pull-secret FILE        a kubernetes.io/dockerconfigjson Secret (YAML or JSON) with registry credentials
  --platform OS/ARCH        platform chosen inside multi-arch images (default linux/amd64)
  --policy NS:NAME          scan only this policy (repeatable)

exit: 0 every policy resolved, 1 any failed, 2 usage or configuration error`;

/** The JSON form of one result: the selection, or why there is none. */
function toJson(r: PolicyResult) {
  if (r.ok)
    return { policy: r.policy.id, image: r.image, tag: r.tag, ...(r.digest ? { digest: r.digest } : {}) };
  return { policy: r.policy.id, image: r.policy.image, reason: r.reason, error: r.message };
}

export const command: Command = {
  summary: "Find, for each image policy, the newest tag its rules allow.",
  usage,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("scan", argv, {
      policies: { type: "string" },
      json: { type: "boolean" },
      digest: { type: "boolean" },
      ...REGISTRY_FLAGS,
      policy: { type: "string", multiple: true },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);

    const registry = await registryScanOptions(values, io);
    const { report } = await runScan({
      root: io.cwd,
      policies: { kind: "dir", dir: resolve(io.cwd, values.policies ?? ".") },
      ...(values.policy ? { only: values.policy } : {}),
      scan: {
        ...registry,
        digests: values.digest ?? false,
        ...(values.platform ? { platform: values.platform } : {}),
      },
      env: io.env,
      // A file refused by a bound is one line; the policies beside it are scanned.
      onRefused: (r) => writeLine(io.stderr, `warning: ${formatRefusal(r)}`),
    });
    const failed = report.results.filter((r) => !r.ok).length;

    if (values.json) {
      writeLine(io.stdout, JSON.stringify(report.results.map(toJson), null, 2));
    } else {
      const rows = report.results.map((r) =>
        r.ok
          ? [r.policy.id, `${r.image}:${r.tag}`, r.digest ?? ""]
          : [r.policy.id, `${r.policy.image}`, `no selection: ${r.message}`],
      );
      writeLine(io.stdout, formatTable(["POLICY", "SELECTED", "DIGEST"], rows));
      const per = Object.entries(report.requests.byRegistry)
        .map(([host, n]) => `${host} ${n}`)
        .join(", ");
      writeLine(
        io.stdout,
        `\n${report.results.length - failed} of ${report.results.length} policies selected; ${report.requests.total} registry requests${per ? ` (${per})` : ""}`,
      );
    }
    return failed > 0 ? 1 : 0;
  },
};
