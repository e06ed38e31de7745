/**
 * Every document a registry, a token server or a credential store hands us is
 * parsed through one of these schemas; the types are inferred from them so
 * validation and types never drift. Unknown fields pass through untouched.
 */
import { z } from "zod";

export const MediaType = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
} as const;

/** The Accept list for manifest requests: indexes first so a multi-arch tag answers with its index digest. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerList,
  MediaType.dockerManifest,
].join(", ");

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerList;
}

const digestString = z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/);
const annotations = z.record(z.string(), z.string()).optional();

/** OCI distribution spec, "Listing Tags" (end-8a): `{"name": "<name>", "tags": ["<tag>", ...]}`; the envelope without its tags. */
export const TagListEnvelope = z.looseObject({ name: z.string().optional() });
/** OCI distribution spec, "Listing Tags": each entry of `tags` is a string. */
export const TagListEntry = z.string();

/** OCI image spec, image-index.md "platform" (also Docker manifest list v2 `platform`). */
export const Platform = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  "os.version": z.string().optional(),
});
export type Platform = z.infer<typeof Platform>;

/** OCI image spec, descriptor.md: mediaType, digest, size (+ platform inside an index). */
export const Descriptor = z.looseObject({
  mediaType: z.string().optional(),
  digest: digestString,
  size: z.number().int().nonnegative(),
  platform: Platform.optional(),
  annotations,
});
export type Descriptor = z.infer<typeof Descriptor>;

/** OCI image spec, image-index.md (and Docker "Manifest List" v2 schema 2). */
export const ImageIndex = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(Descriptor),
  annotations,
});
export type ImageIndex = z.infer<typeof ImageIndex>;

/** OCI image spec, manifest.md (and Docker "Image Manifest" v2 schema 2). */
export const ImageManifest = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: Descriptor,
  layers: z.array(Descriptor),
  annotations,
});
export type ImageManifest = z.infer<typeof ImageManifest>;

/** OCI image spec, config.md: `created` is an RFC 3339 date-time, optional. */
export const ImageConfig = z.looseObject({
  created: z.string().optional(),
  architecture: z.string().optional(),
  os: z.string().optional(),
});

/** Distribution token spec (docs/spec/auth/token.md, "Token Response Fields"): `token` or `access_token`, expires_in seconds, issued_at RFC 3339. */
export const TokenReply = z
  .looseObject({
    token: z.string().min(1).optional(),
    access_token: z.string().min(1).optional(),
    expires_in: z.number().positive().optional(),
    issued_at: z.string().optional(),
    refresh_token: z.string().optional(),
  })
  .refine((r) => r.token !== undefined || r.access_token !== undefined, {
    message: "neither token nor access_token",
  });

/** OCI distribution spec, "Error Codes": `{"errors": [{"code", "message", "detail"}]}`. */
export const ErrorBody = z.looseObject({
  errors: z.array(z.looseObject({ code: z.string().optional(), message: z.string().optional() })),
});

/** Docker CLI config file (cli/config/configfile): auths, credHelpers, credsStore. */
export const AuthEntry = z.looseObject({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
  registrytoken: z.string().optional(),
});
/** Docker CLI config file (`~/.docker/config.json`); also the payload of a dockerconfigjson Secret. */
export const DockerConfig = z.looseObject({
  auths: z.record(z.string(), AuthEntry).optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
  credsStore: z.string().optional(),
});
export type DockerConfig = z.infer<typeof DockerConfig>;
/** The legacy `.dockercfg` payload: the auths map itself. */
export const LegacyDockerCfg = z.record(z.string(), AuthEntry);

/** docker-credential-helpers protocol, `get` reply: `{"ServerURL", "Username", "Secret"}`. */
export const CredentialHelperReply = z.looseObject({
  ServerURL: z.string().optional(),
  Username: z.string(),
  Secret: z.string(),
});

/** Kubernetes core/v1 Secret of type kubernetes.io/dockerconfigjson (or the legacy dockercfg). */
export const KubernetesSecret = z.looseObject({
  kind: z.literal("Secret"),
  type: z.string().optional(),
  metadata: z.looseObject({ name: z.string().optional(), namespace: z.string().optional() }).optional(),
  data: z.record(z.string(), z.string()).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
});
