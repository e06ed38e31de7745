/**
 * Adds Flagger's kinds (Canary, MetricTemplate, AlertProvider) to
 * src/validate/schemas.json, from the CRDs Flagger publishes in its Go module
 * (artifacts/flagger/crd.yaml, the same file as its chart's crds/): run by
 * hand when moving to another Flagger (`node scripts/gen-flagger-schemas.ts`),
 * and by scripts/gen-schemas.ts after it rewrites the bundle. Idempotent:
 * the previous flagger.app entries and source line are replaced.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { crdSchema, OBJECT_META, type Obj } from "../src/validate/compact.ts";

/** Keep in step with scripts/provision/flagger/go.mod and FLAGGER_VERSION in src/scaffold/model.ts. */
const FLAGGER = "v1.36.1";
const GROUP = "flagger.app";

const cache = process.env.SHIPMATE_CACHE ?? join(process.env.HOME ?? "/root", ".cache/shipmate");
const out = execFileSync("go", ["mod", "download", "-json", `github.com/fluxcd/flagger@${FLAGGER}`], {
  env: { ...process.env, GOMODCACHE: join(cache, "gomod"), GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" },
  encoding: "utf8",
});
const dir = (JSON.parse(out) as { Dir: string }).Dir;

const target = new URL("../src/validate/schemas.json", import.meta.url);
const bundle = JSON.parse(readFileSync(target, "utf8")) as {
  generatedBy: string;
  sources: string[];
  kinds: Record<string, string>;
  definitions: Record<string, unknown>;
};
const kinds = Object.fromEntries(Object.entries(bundle.kinds).filter(([k]) => !k.startsWith(`${GROUP}/`)));
const definitions = Object.fromEntries(
  Object.entries(bundle.definitions).filter(([k]) => !k.startsWith(`${GROUP}.`)),
);
const sources = bundle.sources.filter((s) => !s.startsWith("github.com/fluxcd/flagger@"));
sources.push(`github.com/fluxcd/flagger@${FLAGGER} artifacts/flagger/crd.yaml`);
let added = 0;
for (const d of parseAllDocuments(readFileSync(join(dir, "artifacts/flagger/crd.yaml"), "utf8"))) {
  const crd = d.toJSON() as {
    kind?: string;
    spec: {
      group: string;
      names: { kind: string };
      versions: { name: string; served: boolean; schema: { openAPIV3Schema: Obj } }[];
    };
  } | null;
  if (crd?.kind !== "CustomResourceDefinition" || crd.spec.group !== GROUP) continue;
  for (const v of crd.spec.versions) {
    if (!v.served) continue;
    const name = `${GROUP}.${v.name}.${crd.spec.names.kind}`;
    definitions[name] = crdSchema(v.schema.openAPIV3Schema, `#/definitions/${OBJECT_META}`);
    kinds[`${GROUP}/${v.name}/${crd.spec.names.kind}`] = name;
    added++;
  }
}
const sorted = <T>(o: Record<string, T>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
writeFileSync(
  target,
  `${JSON.stringify({ ...bundle, sources, kinds: sorted(kinds), definitions: sorted(definitions) })}\n`,
);
execFileSync(
  new URL("../node_modules/.bin/biome", import.meta.url).pathname,
  ["format", "--write", target.pathname],
  {
    stdio: "inherit",
  },
);
console.log(`${target.pathname}: ${added} Flagger kinds from github.com/fluxcd/flagger@${FLAGGER}`);
