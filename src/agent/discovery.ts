/**
 * Kind → REST resource mapping from the API server's discovery documents,
 * fetched once per group/version and refreshed when a kind is missing (a CRD
 * applied in this reconcile has just become established).
 */
import { ApiError, type KubeClient } from "./client.ts";
import { APIResourceList } from "./schema.ts";

export interface ResourceInfo {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

/** The kind is not served by the API server (yet): its CRD is missing or not established. */
export class UnknownKindError extends Error {
  override name = "UnknownKindError";
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

  async resolve(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const info = await this.find(apiVersion, kind);
    if (!info)
      throw new UnknownKindError(`no kind ${kind} is served by ${apiVersion} (is its CRD installed?)`);
    return info;
  }
}

/** The REST path of a collection (namespace given) or of one object (name given). */
export function resourcePath(info: ResourceInfo, namespace: string | undefined, name?: string): string {
  const prefix = info.apiVersion.includes("/") ? `/apis/${info.apiVersion}` : `/api/${info.apiVersion}`;
  const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${prefix}${ns}/${info.plural}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;
}
