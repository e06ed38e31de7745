/**
 * The chart version as a `shipmate update` target: charts pushed by the
 * real `helm push` to a real registry (CNCF Distribution on 127.0.0.1), a
 * Flux ImageRepository/ImagePolicy pair following the chart's OCI
 * repository as it would follow an image, and the `{"$imagepolicy":
 * "ns:name:tag"}` marker on a HelmRelease's `chart.spec.version` and an
 * OCIRepository's `ref.tag`, and `:digest` on an OCIRepository's
 * `ref.digest` for a policy that reflects digests, rewritten in place.
 */
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { configMapChart, helm, helmBinary, writeChart } from "../infra/charts.ts";
import { git, seedCheckout, tempDir, writeFiles } from "../infra/git.ts";
import { startRegistry, type TestRegistry } from "../infra/registry.ts";

const run = promisify(execFile);
let reg: TestRegistry;
const home = tempDir();

async function push(name: string, version: string): Promise<void> {
  const src = join(home, "src", `${name}-${version}`);
  mkdirSync(src, { recursive: true });
  const out = join(home, "out");
  helm(["package", writeChart(src, configMapChart(name, version)), "--destination", out], { home });
  await run(
    helmBinary(),
    ["push", join(out, `${name}-${version}.tgz`), `oci://${reg.host}/charts`, "--plain-http"],
    { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home } },
  );
}

beforeAll(async () => {
  reg = await startRegistry({ auth: "none" });
  for (const v of ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "1.3.0-rc.1"]) await push("greeter", v);
});
afterAll(async () => {
  await reg?.stop();
  rmSync(home, { recursive: true, force: true });
});

const policies = (host: string) => `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: greeter-chart, namespace: flux-system}
spec: {image: ${host}/charts/greeter, interval: 5m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: greeter-chart, namespace: flux-system}
spec:
  imageRepositoryRef: {name: greeter-chart}
  policy: {semver: {range: "1.x"}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: greeter-pinned, namespace: flux-system}
spec:
  imageRepositoryRef: {name: greeter-chart}
  digestReflectionPolicy: Always
  interval: 10m
  policy: {semver: {range: "1.x"}}
`;

describe("shipmate update: the chart version follows a policy on the chart's OCI repository", () => {
  it("writes chart.spec.version of a HelmRelease, ref.tag and ref.digest of OCIRepositories, and nothing else", async () => {
    const release = `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: greeter
  namespace: apps
spec:
  interval: 10m
  chart:
    spec:
      chart: greeter
      version: 1.0.0 # {"$imagepolicy": "flux-system:greeter-chart:tag"}
      sourceRef:
        kind: HelmRepository
        name: charts
  values:
    greeting: hello
`;
    const ociRepo = `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: greeter-chart
  namespace: apps
spec:
  interval: 10m
  url: oci://${reg.host}/charts/greeter
  ref:
    tag: "1.0.0" # {"$imagepolicy": "flux-system:greeter-chart:tag"}
`;
    const pinned = `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: greeter-pinned
  namespace: apps
spec:
  interval: 10m
  url: oci://${reg.host}/charts/greeter
  ref:
    digest: sha256:${"0".repeat(64)} # {"$imagepolicy": "flux-system:greeter-pinned:digest"}
`;
    const { work } = seedCheckout({
      "clusters/staging/greeter.yaml": release,
      "clusters/staging/greeter-oci.yaml": ociRepo,
      "clusters/staging/greeter-pinned.yaml": pinned,
    });
    const policyDir = tempDir();
    writeFiles(policyDir, { "policies.yaml": policies(reg.host) });
    const r = await runCli(["update", "--repo", work, "--policies", policyDir, "--commit", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out.files).sort()).toEqual([
      "clusters/staging/greeter-oci.yaml",
      "clusters/staging/greeter-pinned.yaml",
      "clusters/staging/greeter.yaml",
    ]);
    // The digest a chart's tag points to, as a policy reflecting digests follows it.
    const head = await fetch(`${reg.url}/v2/charts/greeter/manifests/1.2.0`, {
      method: "HEAD",
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const digest = head.headers.get("docker-content-digest") ?? "";
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(readFileSync(join(work, "clusters/staging/greeter-pinned.yaml"), "utf8")).toBe(
      pinned.replace(`sha256:${"0".repeat(64)}`, digest),
    );
    // The newest 1.x; the prerelease and 2.0.0 are outside the range.
    expect(readFileSync(join(work, "clusters/staging/greeter.yaml"), "utf8")).toBe(
      release.replace("version: 1.0.0 #", "version: 1.2.0 #"),
    );
    expect(readFileSync(join(work, "clusters/staging/greeter-oci.yaml"), "utf8")).toBe(
      ociRepo.replace('tag: "1.0.0" #', 'tag: "1.2.0" #'),
    );
    expect(git(work, ["log", "-1", "--format=%s"]).trim()).not.toBe("");

    // A second run finds nothing to change.
    const again = await runCli(["update", "--repo", work, "--policies", policyDir, "--json"]);
    expect(again.code, again.stderr).toBe(0);
    expect(Object.keys(JSON.parse(again.stdout).files)).toEqual([]);
  });
});
