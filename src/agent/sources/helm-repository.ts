/**
 * HelmRepository (source.toolkit.fluxcd.io/v1). `type: default`: the
 * repository's `index.yaml` over HTTP(S), with basic auth from a Secret,
 * bounded in time and size, checked to be a Helm index, stored in the
 * source's directory. The revision and digest are the sha256 of the index,
 * so an unchanged repository yields the same artifact and no status write.
 * HelmCharts read the stored index to pick and download a version.
 * `type: oci`: a data container, as source-controller treats it — no index,
 * no artifact, an empty status; the HelmCharts that name it list its tags
 * and pull through the registry client (./helm-chart.ts), with the
 * credentials this module reads from its Secret.
 */
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { describeError } from "../../errors.ts";
import { Duration, SOURCE_API_VERSION } from "../../kube/schema.ts";
import type { Credential, CredentialProvider } from "../../registry/credentials.ts";
import { parseReference } from "../../registry/reference.ts";
import type { FieldTable } from "../fields/support.ts";
import type { Artifact } from "../git-source.ts";
import { type BasicAuth, basicAuthFrom, getBounded, HttpFetchError } from "../helm/http.ts";
import { IndexError, parseIndex } from "../helm/repo.ts";
import { parseDuration } from "../kustomization.ts";
import {
  type FetchContext,
  parseWith,
  SourceError,
  type SourceFetcher,
  type SourceHandler,
} from "./handler.ts";
import { secretCredentials } from "./oci.ts";

/** source-controller's default `--helm-index-max-size`. */
export const MAX_INDEX_BYTES = 50 * 1024 * 1024;
/** source-controller's default timeout for repository operations. */
const DEFAULT_TIMEOUT = "60s";
export const INDEX_FILE = "index.yaml";

/** source.toolkit.fluxcd.io/v1 HelmRepository spec fields (source-controller v1.9.6 CRD), honoured or refused. */
export const HELM_REPOSITORY_FIELDS: FieldTable = {
  url: "honoured",
  interval: "honoured",
  timeout: "honoured",
  suspend: "honoured",
  secretRef: "honoured",
  "secretRef.name": "honoured",
  passCredentials: "honoured",
  type: "honoured",
  provider: { refused: "only generic (Secret) authentication is implemented", accepts: ["generic"] },
  certSecretRef: { refused: "client certificates and custom CAs for chart repositories are not implemented" },
  // Plain HTTP to an OCI registry; Flux ignores it for HTTP repositories, whose URL says the scheme.
  insecure: "honoured",
  // Flux documents accessFrom as provisional and does not enforce it either.
  accessFrom: "honoured",
};

/** source.toolkit.fluxcd.io/v1 HelmRepositorySpec, the fields the agent reads. */
export const HelmRepositorySpec = z
  .looseObject({
    url: z.string().min(1),
    // Flux documents it as ineffectual for OCI repositories, and optional.
    interval: Duration.optional(),
    timeout: Duration.optional(),
    secretRef: z.looseObject({ name: z.string().min(1) }).optional(),
    passCredentials: z.boolean().optional(),
    suspend: z.boolean().optional(),
    insecure: z.boolean().optional(),
    type: z.enum(["default", "oci"]).optional(),
  })
  .refine((s) => (s.type === "oci" ? /^oci:\/\/.+/.test(s.url) : /^https?:\/\//.test(s.url)), {
    message: 'an http:// or https:// URL (type default), or an oci:// URL with type "oci"',
    path: ["url"],
  });
export type HelmRepositorySpec = z.infer<typeof HelmRepositorySpec>;

/** The repository's credentials, when it names a Secret. */
export async function repositoryAuth(
  spec: Pick<HelmRepositorySpec, "secretRef">,
  ctx: Pick<FetchContext, "secret">,
): Promise<BasicAuth | undefined> {
  if (!spec.secretRef) return undefined;
  try {
    return basicAuthFrom(await ctx.secret(spec.secretRef.name), spec.secretRef.name);
  } catch (err) {
    throw new SourceError("AuthenticationFailed", (err as Error).message, { cause: err });
  }
}

/**
 * Registry credentials of an OCI HelmRepository, as Flux reads its Secret:
 * a `kubernetes.io/dockerconfigjson` Secret, or `username` and `password`
 * for the repository's own registry. Never a credential helper.
 */
export async function ociRepositoryCredentials(
  spec: Pick<HelmRepositorySpec, "secretRef" | "url">,
  ctx: Pick<FetchContext, "secret" | "namespace">,
): Promise<{ credentials: CredentialProvider; key: string } | undefined> {
  if (!spec.secretRef) return undefined;
  const name = spec.secretRef.name;
  const where = `secret ${ctx.namespace}/${name}`;
  try {
    const data = await ctx.secret(name);
    const key = JSON.stringify(data);
    if (data[".dockerconfigjson"] !== undefined) {
      return { credentials: secretCredentials(data, where), key };
    }
    const basic = basicAuthFrom(data, `${ctx.namespace}/${name}`);
    const registry = parseReference(spec.url.replace(/^oci:\/\//, "")).registry;
    const credential: Credential = { ...basic, source: where };
    return {
      credentials: { get: async (host) => (host === registry ? credential : undefined) },
      key,
    };
  } catch (err) {
    throw new SourceError("AuthenticationFailed", describeError(err), { cause: err });
  }
}

class HelmIndexFetcher implements SourceFetcher<HelmRepositorySpec> {
  private readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  async fetch(spec: HelmRepositorySpec, ctx: FetchContext): Promise<Artifact> {
    if (spec.type === "oci") {
      try {
        parseReference(spec.url.replace(/^oci:\/\//, ""));
      } catch (err) {
        throw new SourceError(
          "URLInvalid",
          `URL validation failed for '${spec.url}': ${describeError(err)}`,
          {
            stalled: true,
          },
        );
      }
      return { revision: "", dir: this.dir, static: true };
    }
    const auth = await repositoryAuth(spec, ctx);
    const base = spec.url.endsWith("/") ? spec.url : `${spec.url}/`;
    let body: Buffer;
    try {
      body = await getBounded(new URL(INDEX_FILE, base), {
        auth,
        timeoutMs: parseDuration(spec.timeout ?? DEFAULT_TIMEOUT),
        maxBytes: MAX_INDEX_BYTES,
        what: "fetch index",
      });
    } catch (err) {
      const reason =
        err instanceof HttpFetchError && (err.status === 401 || err.status === 403)
          ? "AuthenticationFailed"
          : "IndexationFailed";
      throw new SourceError(reason, (err as Error).message, { cause: err });
    }
    try {
      parseIndex(body.toString("utf8"));
    } catch (err) {
      if (err instanceof IndexError)
        throw new SourceError("IndexationFailed", err.message, { stalled: false });
      throw err;
    }
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    mkdirSync(this.dir, { recursive: true });
    // Written then renamed: a chart reading the index never sees half of one.
    const tmp = join(this.dir, `.${INDEX_FILE}.tmp`);
    writeFileSync(tmp, body);
    renameSync(tmp, join(this.dir, INDEX_FILE));
    return { revision: digest, digest, dir: this.dir };
  }

  async clean(): Promise<void> {}
}

export const helmRepositoryHandler: SourceHandler<HelmRepositorySpec> = {
  kind: "HelmRepository",
  apiVersion: SOURCE_API_VERSION,
  plural: "helmrepositories",
  failureReason: "IndexationFailed",
  writesStatus: true,
  holds: "chart-index",
  fields: HELM_REPOSITORY_FIELDS,
  parse: (spec) => parseWith(HelmRepositorySpec, spec),
  // An OCI repository has nothing to fetch: read on every pass that needs it (no I/O).
  interval: (spec) => (spec.type === "oci" ? undefined : (spec.interval ?? "1m")),
  suspended: (spec) => spec.suspend === true,
  signature: (spec) => ({
    url: spec.url,
    secret: spec.secretRef?.name ?? null,
    type: spec.type ?? "default",
  }),
  open: (dir) => new HelmIndexFetcher(dir),
};
