/**
 * Regenerates src/validate/schemas.json, the object schemas `shipmate
 * validate` checks manifests against. Run by hand when moving to a newer
 * Kubernetes or Flux (`node scripts/gen-schemas.ts`); the output is committed
 * so `validate` works wherever shipmate is installed, with no download.
 *
 * Sources, all fetched as Go modules through the Go module proxy:
 * - Kubernetes built-in kinds: the OpenAPI v3 documents in k8s.io/kubernetes
 *   (api/openapi-spec/v3), GA and beta groups.
 * - Flux kinds: the CRDs of source-controller and kustomize-controller
 *   (config/crd/bases in their modules); helm-controller and the image
 *   controllers publish only their api modules, so their CRDs are generated
 *   from those Go types with controller-gen, exactly as Flux's own Makefiles do.
 * - Flagger kinds: scripts/gen-flagger-schemas.ts, run at the end.
 *
 * Compaction: descriptions, defaults and merge metadata are dropped. Strictness
 * is added the way kubeconform's `-strict` does it: an object schema that lists
 * its properties and does not preserve unknown fields rejects unknown fields
 * (the API server does the same with kubectl's default field validation).
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { compact, crdSchema, isObj, OBJECT_META, type Obj } from "../src/validate/compact.ts";

const KUBERNETES = "v1.34.3";
const FLUX = {
  source: "v1.10.1",
  kustomize: "v1.10.1",
  helmApi: "v1.7.1",
  imageReflectorApi: "v1.3.0",
  imageAutomationApi: "v1.3.0",
};
const CONTROLLER_GEN = "v0.19.0";
// The Flux api modules declare go 1.27; the proxy serves that toolchain as a module.
const GO_TOOLCHAIN = "go1.27.3";

const cache = process.env.SHIPMATE_CACHE ?? join(process.env.HOME ?? "/root", ".cache/shipmate");
const goEnv = {
  ...process.env,
  GOMODCACHE: join(cache, "gomod"),
  GOFLAGS: "-modcacherw",
  GOTOOLCHAIN: GO_TOOLCHAIN,
};

function goModDir(module: string, version: string): string {
  const out = execFileSync("go", ["mod", "download", "-json", `${module}@${version}`], {
    env: goEnv,
    encoding: "utf8",
  });
  return (JSON.parse(out) as { Dir: string }).Dir;
}

const definitions: Obj = {};
const kinds: Record<string, string> = {};
const sources: string[] = [];

// Kubernetes built-in kinds.
{
  const dir = join(goModDir("k8s.io/kubernetes", KUBERNETES), "api/openapi-spec/v3");
  sources.push(`k8s.io/kubernetes@${KUBERNETES} api/openapi-spec/v3 (GA and beta groups)`);
  for (const file of readdirSync(dir).sort()) {
    if (!/^api__v1_openapi\.json$|__v\d+(beta\d+)?_openapi\.json$/.test(file)) continue;
    const doc = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
      components: { schemas: Record<string, Obj> };
    };
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      definitions[name] = compact(schema);
      const gvks = schema["x-kubernetes-group-version-kind"];
      const props = schema.properties;
      if (!Array.isArray(gvks) || !isObj(props) || !props.metadata || name.endsWith("List")) continue;
      for (const gvk of gvks) {
        if (!isObj(gvk)) continue;
        const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : String(gvk.version);
        kinds[`${apiVersion}/${gvk.kind}`] = name;
      }
    }
  }
  // Quantities are written as numbers as often as strings (`cpu: 1`).
  definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {
    anyOf: [{ type: "string" }, { type: "number" }],
  };
}

// Flux kinds, from CRDs.
function addCrds(dir: string, label: string): void {
  sources.push(label);
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith(".yaml")) continue;
    for (const d of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      const crd = d.toJSON() as {
        spec: {
          group: string;
          names: { kind: string };
          versions: { name: string; served: boolean; schema: { openAPIV3Schema: Obj } }[];
        };
      };
      for (const v of crd.spec.versions) {
        if (!v.served) continue;
        const name = `${crd.spec.group}.${v.name}.${crd.spec.names.kind}`;
        // CRDs leave metadata as a bare object; the built-in ObjectMeta checks names and labels.
        definitions[name] = crdSchema(v.schema.openAPIV3Schema, `#/definitions/${OBJECT_META}`);
        kinds[`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`] = name;
      }
    }
  }
}

addCrds(
  join(goModDir("github.com/fluxcd/source-controller", FLUX.source), "config/crd/bases"),
  `github.com/fluxcd/source-controller@${FLUX.source} config/crd/bases`,
);
addCrds(
  join(goModDir("github.com/fluxcd/kustomize-controller", FLUX.kustomize), "config/crd/bases"),
  `github.com/fluxcd/kustomize-controller@${FLUX.kustomize} config/crd/bases`,
);

const work = mkdtempSync(join(tmpdir(), "shipmate-crdgen-"));
try {
  const gobin = join(work, "bin");
  execFileSync("go", ["install", `sigs.k8s.io/controller-tools/cmd/controller-gen@${CONTROLLER_GEN}`], {
    env: { ...goEnv, GOBIN: gobin },
    stdio: "inherit",
  });
  for (const [module, version] of [
    ["github.com/fluxcd/helm-controller/api", FLUX.helmApi],
    ["github.com/fluxcd/image-reflector-controller/api", FLUX.imageReflectorApi],
    ["github.com/fluxcd/image-automation-controller/api", FLUX.imageAutomationApi],
  ] as const) {
    const src = join(work, module.replaceAll("/", "_"));
    cpSync(goModDir(module, version), src, { recursive: true });
    execFileSync("chmod", ["-R", "u+w", src]);
    const out = join(src, "crds");
    execFileSync(
      join(gobin, "controller-gen"),
      ["crd", "paths=./...", `output:crd:artifacts:config=${out}`],
      { cwd: src, env: goEnv, stdio: "inherit" },
    );
    addCrds(out, `${module}@${version} (CRDs by controller-gen ${CONTROLLER_GEN})`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const sortedKinds = Object.fromEntries(Object.entries(kinds).sort(([a], [b]) => a.localeCompare(b)));
const sortedDefs = Object.fromEntries(Object.entries(definitions).sort(([a], [b]) => a.localeCompare(b)));
const target = new URL("../src/validate/schemas.json", import.meta.url);
writeFileSync(
  target,
  `${JSON.stringify({ generatedBy: "scripts/gen-schemas.ts", sources, kinds: sortedKinds, definitions: sortedDefs })}\n`,
);
// Formatted as the repository's formatter wants it, so `biome check .` stays clean.
execFileSync(
  new URL("../node_modules/.bin/biome", import.meta.url).pathname,
  ["format", "--write", target.pathname],
  {
    stdio: "inherit",
  },
);
console.log(
  `wrote ${target.pathname}: ${Object.keys(sortedKinds).length} kinds, ${Object.keys(sortedDefs).length} definitions`,
);
// Flagger's kinds (its published CRDs) are merged in by their own script.
execFileSync(process.execPath, [new URL("./gen-flagger-schemas.ts", import.meta.url).pathname], {
  stdio: "inherit",
});
