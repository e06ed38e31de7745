/**
 * A Helm chart repository as real ones are: a static file server on
 * 127.0.0.1 (random port) serving what `helm package` and `helm repo index`
 * wrote, optionally behind basic auth, with every request counted. Charts
 * are written from small templates and packaged by the real helm
 * (scripts/provision/60-helm.sh builds it); a missing helm fails the suite.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, normalize } from "node:path";
import { stringify } from "yaml";
import { findBinary } from "./kube.ts";

export function helmBinary(): string {
  return findBinary("helm");
}

/** Runs the real helm with a private home (no user config read or written). */
export function helm(args: string[], opts: { home: string; cwd?: string }): string {
  return execFileSync(helmBinary(), args, {
    cwd: opts.cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: opts.home,
      HELM_CACHE_HOME: join(opts.home, "cache"),
      HELM_CONFIG_HOME: join(opts.home, "config"),
      HELM_DATA_HOME: join(opts.home, "data"),
    },
  });
}

export interface ChartSource {
  name: string;
  version: string;
  appVersion?: string;
  values?: Record<string, unknown>;
  /** templates/<file> → content. */
  templates: Record<string, string>;
  /** Extra files at the chart root (values-prod.yaml, values.schema.json…). */
  files?: Record<string, string>;
}

/** Writes a chart directory. */
export function writeChart(dir: string, chart: ChartSource): string {
  const root = join(dir, chart.name);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, "templates"), { recursive: true });
  writeFileSync(
    join(root, "Chart.yaml"),
    stringify({
      apiVersion: "v2",
      name: chart.name,
      version: chart.version,
      appVersion: chart.appVersion ?? chart.version,
    }),
  );
  writeFileSync(join(root, "values.yaml"), stringify(chart.values ?? {}));
  for (const [f, text] of Object.entries(chart.templates)) writeFileSync(join(root, "templates", f), text);
  for (const [f, text] of Object.entries(chart.files ?? {})) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileSync(join(root, f), text);
  }
  return root;
}

/** A ConfigMap-only chart: ready as soon as applied (no kubelet runs in the tests). */
export function configMapChart(name: string, version: string, extra: Partial<ChartSource> = {}): ChartSource {
  return {
    name,
    version,
    values: { greeting: "hello", replicas: 1 },
    templates: {
      "configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  namespace: {{ .Release.Namespace }}
  labels:
    chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
data:
  greeting: {{ .Values.greeting | quote }}
  replicas: {{ .Values.replicas | quote }}
  version: {{ .Chart.Version | quote }}
`,
    },
    ...extra,
  };
}

export interface ChartRepository {
  name: string;
  /** http://127.0.0.1:PORT/<name> */
  url: string;
  dir: string;
  /** Packages a chart into the repository and re-indexes it. */
  publish(chart: ChartSource): void;
  /** Replaces a file the repository serves (a broken index.yaml). */
  write(file: string, content: string | Buffer): void;
}

export interface ChartServer {
  url: string;
  /** Requests served, by path. */
  requests: Map<string, number>;
  /** A repository under /<name>/, optionally behind basic auth. */
  repository(name: string, auth?: { username: string; password: string }): ChartRepository;
  stop(): Promise<void>;
}

export async function startChartServer(): Promise<ChartServer> {
  const root = mkdtempSync(join(tmpdir(), "shipmate-charts-"));
  const home = join(root, ".helm-home");
  mkdirSync(home, { recursive: true });
  const auths = new Map<string, string>();
  const requests = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.set(path, (requests.get(path) ?? 0) + 1);
    const repo = path.split("/")[1] ?? "";
    const want = auths.get(repo);
    if (want && req.headers.authorization !== `Basic ${want}`) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="charts"' }).end("unauthorized\n");
      return;
    }
    const file = normalize(join(root, path));
    if (!file.startsWith(root) || file.includes(".helm-home")) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = readFileSync(file);
      res.writeHead(200, { "content-length": body.length }).end(body);
    } catch {
      res.writeHead(404).end("not found\n");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  return {
    url,
    requests,
    repository(name, auth) {
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      if (auth) auths.set(name, Buffer.from(`${auth.username}:${auth.password}`).toString("base64"));
      const repoUrl = `${url}/${name}`;
      const src = join(root, ".helm-home", "src", name);
      return {
        name,
        url: repoUrl,
        dir,
        publish(chart) {
          const chartDir = writeChart(src, chart);
          helm(["package", chartDir, "--destination", dir], { home });
          helm(["repo", "index", dir, "--url", repoUrl], { home });
        },
        write(file, content) {
          mkdirSync(dirname(join(dir, file)), { recursive: true });
          writeFileSync(join(dir, file), content);
        },
      };
    },
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
