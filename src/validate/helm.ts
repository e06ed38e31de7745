/**
 * `shipmate validate` for HelmReleases: each HelmRelease whose chart can be
 * reached from here is rendered with the real Helm (`helm template`) and its
 * values, so the objects it would install are schema-checked like a
 * kustomize build. Reachable: a chart at a path of this tree (`chart.spec`
 * from a GitRepository), or a chart in a HelmRepository the tree defines
 * without credentials (HTTP `--repo` or `oci://`). A chart that cannot be
 * reached (credentials, no network, an unknown source, `chartRef`,
 * `valuesFrom` naming what the tree does not hold) is a warning; a chart that
 * does not render is a problem naming the file and the HelmRelease in one
 * line. Post-renderers are not applied here.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, normalize, sep } from "node:path";
import { parse } from "yaml";
import { findHelm } from "../agent/helm/cli.ts";
import { composeValues, releaseNameOf, type Values, type ValuesSource } from "../agent/helm/rules.ts";
import { redact } from "../errors.ts";

type Obj = { apiVersion: string; kind: string; metadata?: { name?: unknown; namespace?: unknown } } & Record<
  string,
  unknown
>;

export interface ReleaseInput {
  object: Obj;
  /** Relative file and line of the HelmRelease. */
  file: string;
  line?: number;
}

export interface RenderOutcome {
  input: ReleaseInput;
  /** `chart@version of HelmRelease/ns/name`, for messages. */
  origin: string;
  yaml?: string;
  problem?: string;
  warning?: string;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v ? v : undefined);

/** Renders each HelmRelease it can reach. `all` holds every object of the tree (HelmRepositories, ConfigMaps). */
export async function renderHelmReleases(
  root: string,
  releases: readonly ReleaseInput[],
  all: readonly Obj[],
  opts: { env?: NodeJS.ProcessEnv; concurrency?: number; timeoutMs?: number } = {},
): Promise<RenderOutcome[]> {
  if (!releases.length) return [];
  let helm: string;
  try {
    helm = findHelm();
  } catch (err) {
    return releases.map((input) => ({
      input,
      origin: "",
      warning: `HelmRelease not rendered: ${(err as Error).message}`,
    }));
  }
  const home = mkdtempSync(join(tmpdir(), "shipmate-validate-helm-"));
  try {
    const out: RenderOutcome[] = new Array(releases.length);
    let next = 0;
    const worker = async () => {
      while (next < releases.length) {
        const i = next++;
        out[i] = await renderOne(root, releases[i]!, all, helm, home, opts.timeoutMs ?? 60_000);
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 2, releases.length) }, worker));
    return out;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

async function renderOne(
  root: string,
  input: ReleaseInput,
  all: readonly Obj[],
  helm: string,
  home: string,
  timeoutMs: number,
): Promise<RenderOutcome> {
  const o = input.object;
  const ns = str(o.metadata?.namespace) ?? "default";
  const name = str(o.metadata?.name) ?? "";
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  const who = `HelmRelease/${name}`;
  const skip = (why: string): RenderOutcome => ({
    input,
    origin: who,
    warning: `${who}: chart not rendered: ${why}`,
  });
  const tpl = (spec.chart as { spec?: Record<string, unknown> } | undefined)?.spec;
  if (!tpl) return skip("its chartRef source is not read by validate");
  const chart = str(tpl.chart);
  const ref = (tpl.sourceRef ?? {}) as { kind?: unknown; name?: unknown; namespace?: unknown };
  if (!chart || !str(ref.name)) return skip("chart.spec has no chart or sourceRef");
  const version = str(tpl.version);
  const args: string[] = [
    "template",
    releaseNameOf({ name, releaseName: str(spec.releaseName), targetNamespace: str(spec.targetNamespace) }),
  ];
  if (ref.kind === "GitRepository") {
    const rel = normalize(chart).replace(/^(\.\/)+/, "");
    if (isAbsolute(chart) || rel === ".." || rel.startsWith(`..${sep}`))
      return skip(`chart path ${chart} leaves the repository`);
    const dir = join(root, rel);
    if (!existsSync(join(dir, "Chart.yaml"))) return skip(`no chart at ${chart} in this tree`);
    args.push(dir);
  } else if (ref.kind === "HelmRepository") {
    const repoNs = str(ref.namespace) ?? ns;
    const repo = all.find(
      (x) =>
        x.kind === "HelmRepository" &&
        x.apiVersion.startsWith("source.toolkit.fluxcd.io/") &&
        x.metadata?.name === ref.name &&
        (str(x.metadata?.namespace) ?? repoNs) === repoNs,
    );
    if (!repo) return skip(`HelmRepository ${repoNs}/${String(ref.name)} is not in this tree`);
    const rs = (repo.spec ?? {}) as Record<string, unknown>;
    if (rs.secretRef || rs.certSecretRef) return skip(`HelmRepository ${String(ref.name)} needs credentials`);
    const url = str(rs.url);
    if (!url) return skip(`HelmRepository ${String(ref.name)} has no url`);
    if (rs.type === "oci") args.push(`${url.replace(/\/+$/, "")}/${chart}`);
    else args.push(chart, "--repo", url);
    if (version) args.push("--version", version);
  } else return skip(`a ${String(ref.kind)} source is not read by validate`);

  // valuesFrom: only ConfigMaps this tree holds (a Secret's values or a cluster's objects are not read here).
  const sources: ValuesSource[] = [];
  for (const v of (spec.valuesFrom ?? []) as {
    kind?: unknown;
    name?: unknown;
    valuesKey?: unknown;
    targetPath?: unknown;
    optional?: unknown;
  }[]) {
    const cm =
      v.kind === "ConfigMap"
        ? all.find(
            (x) =>
              x.kind === "ConfigMap" &&
              x.metadata?.name === v.name &&
              (str(x.metadata?.namespace) ?? ns) === ns,
          )
        : undefined;
    const key = str(v.valuesKey) ?? "values.yaml";
    const text = (cm?.data as Record<string, string> | undefined)?.[key];
    if (text === undefined) {
      if (v.optional === true) continue;
      return skip(`valuesFrom ${String(v.kind)}/${String(v.name)} (key ${key}) is not in this tree`);
    }
    const what = `key '${key}' in ConfigMap '${ns}/${String(v.name)}'`;
    if (str(v.targetPath)) sources.push({ targetPath: v.targetPath as string, text, what });
    else {
      let parsed: unknown;
      try {
        parsed = parse(text);
      } catch {
        return { input, origin: who, problem: `${who}: ${what} is not valid YAML` };
      }
      sources.push({ text, parsed, what });
    }
  }
  let values: Values;
  try {
    values = composeValues(sources, (spec.values ?? undefined) as Values | undefined);
  } catch (err) {
    return { input, origin: who, problem: `${who}: ${(err as Error).message}` };
  }
  const dir = mkdtempSync(join(home, "r-"));
  const valuesFile = join(dir, "values.json");
  writeFileSync(valuesFile, JSON.stringify(values), { mode: 0o600 });
  args.push("-f", valuesFile, "--namespace", str(spec.targetNamespace) ?? ns);
  const origin = `chart ${chart}${version ? `@${version}` : ""} of ${who}`;
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_DATA_HOME: join(home, "data"),
  };
  return await new Promise<RenderOutcome>((resolve) => {
    execFile(helm, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      if (!err) return resolve({ input, origin, yaml: stdout });
      const lines = `${stderr}`
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean);
      const line = redact(
        (lines.find((l) => l.startsWith("Error:")) ?? lines.at(-1) ?? err.message).replace(/^Error:\s*/, ""),
      )
        .split(`${home}/`)
        .join("")
        .split(`${root}/`)
        .join("");
      // Unreachable (DNS, refused, timeout, 401/403/404 on the index): reported, not fatal.
      if (
        /dial tcp|no such host|connection refused|i\/o timeout|Client\.Timeout|looks like .* is not a valid chart repository|401|403|unauthorized/i.test(
          line,
        ) ||
        err.killed
      )
        return resolve({
          input,
          origin,
          warning: `${who}: chart not rendered: ${chart} could not be fetched: ${line}`,
        });
      resolve({ input, origin, problem: `${who}: helm template failed: ${line}` });
    });
  });
}
