/**
 * Kind → REST resource mapping from the API server's discovery documents,
 * fetched once per group/version and refreshed when a kind is missing (a CRD
 * applied in this reconcile has just become established).
 */
import { ApiError, type KubeClient } from "./client.ts";
import { APIGroup, APIResourceList } from "./schema.ts";

export interface ResourceInfo {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

/** The kind is not served by the API server (yet): its CRD is missing or not established. */
export class UnknownKindError extends Error {
  override name = "UnknownKindError";
  /** Other versions of the same group that do serve the kind. */
  readonly served: readonly string[];
  constructor(message: string, served: readonly string[] = []) {
    super(message);
    this.served = served;
  }
}

export class Discovery {
  private readonly client: KubeClient;
  private readonly cache = new Map<string, Promise<Map<string, ResourceInfo>>>();

  constructor(client: KubeClient) {
    this.client = client;
  }

  private load(apiVersion: string): Promise<Map<string, ResourceInfo>> {
    let p = this.cache.get(apiVersion);
    if (!p) {
      const path = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      p = this.client
        .call({ method: "GET", path }, APIResourceList, `discovery ${apiVersion}`)
        .then((list) => {
          const byKind = new Map<string, ResourceInfo>();
          for (const r of list.resources) {
            if (r.name.includes("/")) continue; // subresources such as deployments/status
            byKind.set(r.kind, { apiVersion, kind: r.kind, plural: r.name, namespaced: r.namespaced });
          }
          return byKind;
        })
        .catch((err: unknown) => {
          this.cache.delete(apiVersion);
          if (err instanceof ApiError && err.code === 404) return new Map<string, ResourceInfo>();
          throw err;
        });
      this.cache.set(apiVersion, p);
    }
    return p;
  }

  /** Forgets a group/version so the next lookup asks the server again. */
  invalidate(apiVersion?: string): void {
    if (apiVersion) this.cache.delete(apiVersion);
    else this.cache.clear();
  }

  async find(apiVersion: string, kind: string): Promise<ResourceInfo | undefined> {
    let info = (await this.load(apiVersion)).get(kind);
    if (!info) {
      this.invalidate(apiVersion);
      info = (await this.load(apiVersion)).get(kind);
    }
    return info;
  }

  /**
   * The versions of `apiVersion`'s group that serve `kind`, in the server's
   * preference order: empty when no version does (the CRD is missing).
   */
  async servedVersions(apiVersion: string, kind: string): Promise<string[]> {
    const slash = apiVersion.indexOf("/");
    const group = slash < 0 ? "" : apiVersion.slice(0, slash);
    let versions: string[];
    if (!group) versions = ["v1"];
    else {
      const res = await this.client.raw({ method: "GET", path: `/apis/${encodeURIComponent(group)}` });
      if (res.code === 404) return [];
      const parsed = APIGroup.safeParse(res.body);
      if (res.code !== 200 || !parsed.success) return [];
      versions = parsed.data.versions.map((v) => v.version);
    }
    const out: string[] = [];
    for (const v of versions) {
      const gv = group ? `${group}/${v}` : v;
      if (gv !== apiVersion && (await this.load(gv)).has(kind)) out.push(v);
    }
    return out;
  }

  async resolve(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const info = await this.find(apiVersion, kind);
    if (info) return info;
    const served = await this.servedVersions(apiVersion, kind);
    throw new UnknownKindError(
      served.length
        ? `${kind} is not served as ${apiVersion} (served: ${served.join(", ")})`
        : `no kind ${kind} is served by ${apiVersion} (is its CRD installed?)`,
      served,
    );
  }
}

/** The REST path of a collection (namespace given) or of one object (name given). */
export function resourcePath(info: ResourceInfo, namespace: string | undefined, name?: string): string {
  const prefix = info.apiVersion.includes("/") ? `/apis/${info.apiVersion}` : `/api/${info.apiVersion}`;
  const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${prefix}${ns}/${info.plural}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;
}
