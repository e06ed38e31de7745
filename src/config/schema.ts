/**
 * Schemas of the documents a policies directory may hold. Types are inferred
 * from them so validation and types never drift, and the editor JSON Schema
 * (policies/schema/shipmate-policy.schema.json) is generated from the native ones.
 *
 * Flux documents are validated like their CRDs (image-reflector-controller and
 * image-automation-controller api/v1 types, kubebuilder markers); fields shipmate
 * does not use are accepted and ignored. Native documents are strict: an unknown
 * field is an error, so a typo never silently changes a policy.
 */
import { z } from "zod";
import { FLUX_INTERVAL } from "./duration.ts";

export const FLUX_IMAGE_GROUP = "image.toolkit.fluxcd.io";
export const FLUX_IMAGE_VERSIONS = ["v1", "v1beta2", "v1beta1"] as const;
export const NATIVE_API_VERSION = "shipmate.dev/v1alpha1";
export const DEFAULT_NAMESPACE = "flux-system";

/** Kubernetes object names (RFC 1123 subdomain), as Flux objects and marker ids use them. */
const objectName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a lowercase RFC 1123 name (letters, digits, '-', '.')");
const namespaceName = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a lowercase RFC 1123 label (letters, digits, '-')");
const labels = z.record(z.string(), z.string());
const fluxInterval = z.string().regex(FLUX_INTERVAL, "must be a duration such as 30s, 5m or 1h");

/** A repository reference without tag, digest or scheme (Flux ImageRepository `spec.image`). */
export const imageName = z
  .string()
  .min(1)
  .superRefine((image, ctx) => {
    const scheme = image.match(/^([a-z]+):\/\//i);
    const last = image.slice(image.lastIndexOf("/") + 1);
    if (scheme)
      ctx.addIssue({ code: "custom", message: `must not start with a URL scheme; remove '${scheme[0]}'` });
    else if (image.includes("@")) ctx.addIssue({ code: "custom", message: "must not contain a digest" });
    else if (last.includes(":"))
      ctx.addIssue({ code: "custom", message: `must not contain a tag; remove ':${last.split(":").pop()}'` });
    else if (!/^[A-Za-z0-9._\-/:]+$/.test(image))
      ctx.addIssue({ code: "custom", message: "is not an image repository name" });
  });

const order = z.enum(["asc", "desc"]);
const reflectionPolicy = z.enum(["Always", "IfNotPresent", "Never"]);

// --- Flux image.toolkit.fluxcd.io ---------------------------------------------------------------

const fluxMetadata = z.looseObject({
  name: objectName,
  namespace: namespaceName.optional(),
  labels: labels.optional(),
});

/** image-reflector-controller api/v1 ImageRepositorySpec. */
export const fluxImageRepository = z.looseObject({
  apiVersion: z.string(),
  kind: z.literal("ImageRepository"),
  metadata: fluxMetadata,
  spec: z.looseObject({
    image: imageName,
    interval: fluxInterval.optional(),
    timeout: z
      .string()
      .regex(/^([0-9]+(\.[0-9]+)?(ms|s|m))+$/, "must be a duration such as 30s or 1m")
      .optional(),
    secretRef: z.looseObject({ name: z.string().min(1) }).optional(),
    certSecretRef: z.looseObject({ name: z.string().min(1) }).optional(),
    proxySecretRef: z.looseObject({ name: z.string().min(1) }).optional(),
    serviceAccountName: z.string().max(253).optional(),
    suspend: z.boolean().optional(),
    accessFrom: z.unknown().optional(),
    exclusionList: z.array(z.string()).max(25, "holds at most 25 patterns").optional(),
    provider: z.enum(["generic", "aws", "azure", "gcp"]).optional(),
    insecure: z.boolean().optional(),
  }),
});

/** image-reflector-controller api/v1 ImagePolicySpec, with its CEL rules on interval. */
export const fluxImagePolicy = z.looseObject({
  apiVersion: z.string(),
  kind: z.literal("ImagePolicy"),
  metadata: fluxMetadata,
  spec: z
    .looseObject({
      imageRepositoryRef: z.looseObject({ name: objectName, namespace: namespaceName.optional() }),
      policy: z.looseObject({
        semver: z.looseObject({ range: z.string() }).optional(),
        alphabetical: z.looseObject({ order: order.optional() }).optional(),
        numerical: z.looseObject({ order: order.optional() }).optional(),
      }),
      filterTags: z
        .looseObject({ pattern: z.string().optional(), extract: z.string().optional() })
        .optional(),
      digestReflectionPolicy: reflectionPolicy.optional(),
      interval: fluxInterval.optional(),
      suspend: z.boolean().optional(),
    })
    .superRefine((spec, ctx) => {
      const p = spec.policy;
      if (!p.semver && !p.alphabetical && !p.numerical)
        ctx.addIssue({
          code: "custom",
          path: ["policy"],
          message: "needs one of semver, alphabetical or numerical",
        });
      if (spec.interval !== undefined && spec.digestReflectionPolicy !== "Always")
        ctx.addIssue({
          code: "custom",
          path: ["interval"],
          message: "spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'",
        });
      if (spec.interval === undefined && spec.digestReflectionPolicy === "Always")
        ctx.addIssue({
          code: "custom",
          path: ["digestReflectionPolicy"],
          message: "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
        });
    }),
});

const labelSelector = z.looseObject({
  matchLabels: labels.optional(),
  matchExpressions: z
    .array(
      z.looseObject({
        key: z.string(),
        operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

/** image-automation-controller api/v1 ImageUpdateAutomationSpec (git.go, reference.go). */
export const fluxImageUpdateAutomation = z.looseObject({
  apiVersion: z.string(),
  kind: z.literal("ImageUpdateAutomation"),
  metadata: fluxMetadata,
  spec: z.looseObject({
    sourceRef: z.looseObject({
      apiVersion: z.string().optional(),
      kind: z.literal("GitRepository").default("GitRepository"),
      name: objectName,
      namespace: namespaceName.optional(),
    }),
    git: z
      .looseObject({
        checkout: z
          .looseObject({
            ref: z.looseObject({
              branch: z.string().optional(),
              tag: z.string().optional(),
              semver: z.string().optional(),
              name: z.string().optional(),
              commit: z.string().optional(),
            }),
          })
          .optional(),
        commit: z.looseObject({
          author: z.looseObject({ name: z.string().optional(), email: z.string().min(1) }),
          signingKey: z
            .looseObject({
              secretRef: z.looseObject({ name: z.string().min(1) }),
              type: z.enum(["gpg", "ssh"]).optional(),
            })
            .optional(),
          messageTemplate: z.string().optional(),
          messageTemplateValues: z.record(z.string(), z.string()).optional(),
        }),
        push: z
          .looseObject({
            branch: z.string().optional(),
            refspec: z
              .string()
              .regex(/^$|^[^+:]/, "must not delete or force-update references")
              .optional(),
            options: z.record(z.string(), z.string()).optional(),
          })
          .optional(),
      })
      .describe("required here: without it Flux has no commit author either"),
    interval: fluxInterval,
    policySelector: labelSelector.optional(),
    update: z
      .looseObject({ strategy: z.literal("Setters").default("Setters"), path: z.string().optional() })
      .optional(),
    suspend: z.boolean().optional(),
  }),
});

// --- native shipmate.dev/v1alpha1 ---------------------------------------------------------------

/** A non-negative Go duration; the pattern is what time.ParseDuration accepts without a sign. */
const goDuration = z
  .string()
  .regex(
    /^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$/,
    "must be a Go duration such as 72h, 90m or 1h30m",
  );

/** Fields every native policy has, whatever its strategy. */
const nativeFields = {
  image: imageName.describe("Image repository without tag or digest, e.g. ghcr.io/stefanprodan/podinfo"),
  filterTags: z
    .strictObject({
      pattern: z.string().describe("RE2 regular expression; only tags it matches are candidates"),
      extract: z
        .string()
        .optional()
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Go expand template, not a JS one
        .describe("Go Regexp.Expand template ($name, ${name}, $1): the value the strategy compares"),
    })
    .optional(),
  exclusionList: z
    .array(z.string())
    .max(25)
    .optional()
    .describe("RE2 patterns of tags never considered; default ['^.*\\.sig$'] (cosign signatures)"),
  minAge: goDuration.optional().describe("Ignore images built more recently than this (needs build times)"),
  platform: z
    .string()
    .regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, "must be os/arch or os/arch/variant, e.g. linux/arm64")
    .optional()
    .describe("Platform picked inside multi-platform images (default linux/amd64)"),
  digest: z
    .union([z.boolean(), reflectionPolicy])
    .optional()
    .describe(
      "Resolve the selected tag's digest: true (Always), false (Never), or a Flux digestReflectionPolicy",
    ),
  insecure: z.boolean().optional().describe("Allow plain HTTP to this registry"),
  secretRef: z
    .string()
    .min(1)
    .optional()
    .describe("Name of a kubernetes.io/dockerconfigjson Secret with credentials"),
  paths: z
    .array(z.string().min(1))
    .optional()
    .describe("Files or globs (relative to the repository) this policy may rewrite without setter markers"),
  mode: z.enum(["push", "pull-request"]).optional().describe("How updates are delivered"),
};

const STRATEGIES = ["semver", "alphabetical", "numerical", "newestBuild", "digest"] as const;

/** The strategy-specific fields, one strict object per strategy, plus `extra` fields. */
function nativeSpec<E extends z.ZodRawShape>(extra: E) {
  const unknownStrategy = (value: unknown) =>
    `strategy must be one of ${STRATEGIES.join(", ")}${value === undefined ? "" : `, not ${JSON.stringify(value)}`}`;
  return z.discriminatedUnion(
    "strategy",
    [
      z.strictObject({
        ...extra,
        ...nativeFields,
        strategy: z.literal("semver"),
        range: z.string().describe("Masterminds/Flux semver range, e.g. ^1.2, 1.0.x, >=1.0.0 <2.0.0, ^1.x-0"),
      }),
      z.strictObject({
        ...extra,
        ...nativeFields,
        strategy: z.literal("alphabetical"),
        order: order.default("asc"),
      }),
      z.strictObject({
        ...extra,
        ...nativeFields,
        strategy: z.literal("numerical"),
        order: order.default("asc"),
      }),
      z.strictObject({ ...extra, ...nativeFields, strategy: z.literal("newestBuild") }),
      z.strictObject({
        ...extra,
        ...nativeFields,
        strategy: z.literal("digest"),
        tag: z.string().min(1).default("latest").describe("The mutable tag whose digest is followed"),
      }),
    ],
    { error: (issue) => unknownStrategy((issue.input as { strategy?: unknown } | undefined)?.strategy) },
  );
}

const nativeMetadata = z.strictObject({
  name: objectName,
  namespace: namespaceName.optional(),
  labels: labels.optional(),
});

/** `kind: ImagePolicy`: one policy per document. */
export const nativeImagePolicy = z.strictObject({
  apiVersion: z.literal(NATIVE_API_VERSION),
  kind: z.literal("ImagePolicy"),
  metadata: nativeMetadata,
  spec: nativeSpec({}),
});

/** `kind: ImagePolicyList`: several policies sharing a namespace, one item each. */
export const nativeImagePolicyList = z.strictObject({
  apiVersion: z.literal(NATIVE_API_VERSION),
  kind: z.literal("ImagePolicyList"),
  metadata: z
    .strictObject({ namespace: namespaceName.optional(), labels: labels.optional() })
    .optional()
    .describe("namespace and labels shared by every item"),
  items: z.array(nativeSpec({ name: objectName, labels: labels.optional() })).min(1, "lists no policy"),
});

/** What editors validate against: either native document kind. */
export const nativePolicyDocument = z.union([nativeImagePolicy, nativeImagePolicyList]);

export type FluxImageRepository = z.infer<typeof fluxImageRepository>;
export type FluxImagePolicy = z.infer<typeof fluxImagePolicy>;
export type FluxImageUpdateAutomation = z.infer<typeof fluxImageUpdateAutomation>;
export type NativeImagePolicy = z.infer<typeof nativeImagePolicy>;
export type NativeImagePolicyList = z.infer<typeof nativeImagePolicyList>;
export type NativePolicySpec = NativeImagePolicy["spec"];
