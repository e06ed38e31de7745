import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { refusedFields } from "../../src/agent/fields/support.ts";
import { movedRelease, planRelease, type Remediation } from "../../src/agent/helm/plan.ts";
import {
  chartDownloadUrl,
  parseIndex,
  selectChartVersion,
  sendCredentials,
} from "../../src/agent/helm/repo.ts";
import {
  chartObjectName,
  chartRevision,
  composeValues,
  configDigest,
  goJson,
  mergeValues,
  parseTargetPath,
  releaseNameOf,
  setAtPath,
  typedValue,
} from "../../src/agent/helm/rules.ts";
import { HELM_RELEASE_FIELDS } from "../../src/agent/helm/spec.ts";
import { chartRoot, readChartArchive, readTar, safeEntryPath } from "../../src/agent/helm/tar.ts";
import { prepareChart } from "../../src/agent/sources/helm-chart.ts";
import { HELM_REPOSITORY_FIELDS } from "../../src/agent/sources/helm-repository.ts";

/** A tar entry as Go's archive/tar writes one (ustar header, 512-byte blocks). */
function tarEntry(name: string, body: string, type = "0", linkname = ""): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${Buffer.byteLength(body).toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write(type, 156);
  header.write(linkname, 157);
  header.write("ustar\0", 257);
  header.write("00", 263);
  header.fill(" ", 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const data = Buffer.alloc(Math.ceil(Buffer.byteLength(body) / 512) * 512);
  data.write(body);
  return Buffer.concat([header, data]);
}
function paxPath(path: string): Buffer {
  const rec = (len: number) => `${len} path=${path}\n`;
  let len = rec(0).length;
  while (rec(len).length !== len) len = rec(len).length;
  return tarEntry("PaxHeaders/x", rec(len), "x");
}
const tar = (...entries: Buffer[]) => Buffer.concat([...entries, Buffer.alloc(1024)]);

describe("chart archives: only regular files inside the chart directory", () => {
  it.each([
    ["a plain relative path", "podinfo/Chart.yaml", "podinfo/Chart.yaml"],
    ["a leading ./ is dropped", "./podinfo/values.yaml", "podinfo/values.yaml"],
    ["inner . components are normalised", "podinfo/./templates/a.yaml", "podinfo/templates/a.yaml"],
  ])("safeEntryPath: %s", (_rule, name, expected) => {
    expect(safeEntryPath(name)).toBe(expected);
  });

  it.each([
    ["a ../ component leaves the chart", "podinfo/../../etc/passwd", /leaves the chart directory/],
    ["a leading ../", "../x", /leaves the chart directory/],
    ["an absolute path", "/etc/passwd", /absolute path/],
    ["a backslash ../ (Windows-made archives)", "podinfo\\..\\..\\x", /leaves the chart directory/],
  ])("safeEntryPath refuses %s", (_rule, name, error) => {
    expect(() => safeEntryPath(name)).toThrow(error);
  });

  it("reads regular files, directories and PAX long names", () => {
    const long = `podinfo/templates/${"x".repeat(120)}.yaml`;
    const entries = readTar(
      tar(
        tarEntry("podinfo/", "", "5"),
        tarEntry("podinfo/Chart.yaml", "name: podinfo\n"),
        paxPath(long),
        tarEntry("ignored", "kind: A\n"),
      ),
    );
    expect(entries.map((e) => e.path)).toEqual(["podinfo/Chart.yaml", long]);
    expect(entries[1]?.data.toString()).toBe("kind: A\n");
  });

  it.each([
    ["a symbolic link", tarEntry("podinfo/link", "", "2", "/etc/passwd"), /symbolic link/],
    ["a hard link", tarEntry("podinfo/link", "", "1", "podinfo/Chart.yaml"), /hard link/],
    ["a device", tarEntry("podinfo/dev", "", "3"), /not a regular file/],
    ["a ../ path", tarEntry("podinfo/../../evil", "x"), /leaves the chart directory/],
    [
      "a ../ path hidden in a PAX header",
      Buffer.concat([paxPath("../evil"), tarEntry("ok", "x")]),
      /leaves the chart directory/,
    ],
  ])("refuses %s", (_rule, entry, error) => {
    expect(() => readTar(tar(tarEntry("podinfo/Chart.yaml", "name: a\n"), entry))).toThrow(error);
  });

  it("bounds what an archive may expand to", () => {
    const big = tar(tarEntry("podinfo/Chart.yaml", "a".repeat(2000)));
    expect(() => readChartArchive(gzipSync(big), { maxBytes: 1000, maxEntries: 10 })).toThrow(
      /beyond 1000 bytes/,
    );
    expect(() =>
      readTar(tar(tarEntry("a/1", "x"), tarEntry("a/2", "x")), { maxBytes: 100, maxEntries: 1 }),
    ).toThrow(/more than 1 entries/);
  });

  it("refuses what is not gzip, and a truncated archive", () => {
    expect(() => readChartArchive(Buffer.from("<html>not found</html>"))).toThrow(/not a gzip archive/);
    expect(() => readTar(tarEntry("a/Chart.yaml", "x".repeat(600)).subarray(0, 700))).toThrow(/truncated/);
  });

  it("a chart is one top directory holding Chart.yaml", () => {
    const files = (paths: string[]) => paths.map((path) => ({ path, data: Buffer.from("") }));
    expect(chartRoot(files(["podinfo/Chart.yaml", "podinfo/values.yaml"]))).toBe("podinfo");
    expect(() => chartRoot(files(["podinfo/values.yaml"]))).toThrow(/no <chart>\/Chart.yaml/);
    expect(() => chartRoot(files(["podinfo/Chart.yaml", "other/x"]))).toThrow(/2 top-level entries/);
  });
});

describe("values: valuesFrom in order, targetPath, then inline values", () => {
  it.each([
    ["maps merge key by key", { a: { b: 1, c: 2 } }, { a: { c: 3, d: 4 } }, { a: { b: 1, c: 3, d: 4 } }],
    ["lists are replaced, not merged", { a: [1, 2] }, { a: [3] }, { a: [3] }],
    ["a scalar replaces a map", { a: { b: 1 } }, { a: "x" }, { a: "x" }],
    ["null is a value that replaces", { a: 1 }, { a: null }, { a: null }],
  ])("mergeValues: %s", (_rule, base, over, expected) => {
    expect(mergeValues(base, over)).toEqual(expected);
  });

  it.each([
    ["dotted keys", "a.b.c", ["a", "b", "c"]],
    [
      "an escaped dot stays in the key",
      "ingress.annotations.kubernetes\\.io/ingress\\.class",
      ["ingress", "annotations", "kubernetes.io/ingress.class"],
    ],
    ["list indices", "a.b[1].c", ["a", "b", 1, "c"]],
    ["a top-level index", "a[0]", ["a", 0]],
  ])("parseTargetPath: %s", (_rule, path, expected) => {
    expect(parseTargetPath(path)).toEqual(expected);
  });

  it.each([["a..b"], ["a[x]"], [""], [".a"]])("parseTargetPath refuses %j", (path) => {
    expect(() => parseTargetPath(path)).toThrow(/targetPath/);
  });

  it.each([
    ["true is a bool", "true", false, true],
    ["an integer is a number", "42", false, 42],
    ["a float stays a string (Helm --set types only integers)", "1.5", false, "1.5"],
    ["null is null", "null", false, null],
    ["text stays text", "nginx", false, "nginx"],
    ["literal keeps everything a string", "true", true, "true"],
  ])("typedValue: %s", (_rule, text, literal, expected) => {
    expect(typedValue(text, literal)).toEqual(expected);
  });

  it("setAtPath creates maps and lists on the way and leaves the input untouched", () => {
    const base = { a: { keep: 1 } };
    expect(setAtPath(base, ["a", "list", 1, "x"], "v")).toEqual({ a: { keep: 1, list: [null, { x: "v" }] } });
    expect(base).toEqual({ a: { keep: 1 } });
  });

  it("composeValues: later valuesFrom override earlier, targetPath sets one value, inline values win", () => {
    const values = composeValues(
      [
        { text: "", parsed: { replicas: 1, image: { tag: "a", repo: "r" } }, what: "ConfigMap a" },
        { text: "", parsed: { image: { tag: "b" } }, what: "ConfigMap b" },
        { targetPath: "auth.password", text: "s3cret\n", what: "Secret c" },
        { targetPath: "replicas", text: "3", what: "ConfigMap d" },
      ],
      { image: { tag: "inline" } },
    );
    expect(values).toEqual({
      replicas: 3,
      image: { tag: "inline", repo: "r" },
      auth: { password: "s3cret" },
    });
  });

  it("composeValues: a document that is not a map is refused with its source", () => {
    expect(() =>
      composeValues([{ text: "", parsed: ["a"], what: "key 'values.yaml' in ConfigMap 'x'" }], undefined),
    ).toThrow("key 'values.yaml' in ConfigMap 'x': values must be a YAML map");
  });

  it.each([
    ["keys are sorted", { b: 1, a: 2 }, '{"a":2,"b":1}'],
    ["HTML characters are escaped as Go does", { a: "<b>&" }, '{"a":"\\u003cb\\u003e\\u0026"}'],
    ["nested values and lists", { x: [{ z: 1, y: null }] }, '{"x":[{"y":null,"z":1}]}'],
  ])("goJson: %s", (_rule, value, expected) => {
    expect(goJson(value)).toBe(expected);
  });

  it("configDigest: equal values in any key order have one digest; a change moves it", () => {
    expect(configDigest({ a: 1, b: { c: 2 } })).toBe(configDigest({ b: { c: 2 }, a: 1 }));
    expect(configDigest({ a: 1 })).not.toBe(configDigest({ a: 2 }));
    expect(configDigest({})).toBe("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  });
});

describe("names and revisions as helm-controller and source-controller make them", () => {
  it.each([
    ["the HelmRelease's name", { name: "podinfo" }, "podinfo"],
    ["targetNamespace prefixes it", { name: "podinfo", targetNamespace: "apps" }, "apps-podinfo"],
    ["releaseName wins", { name: "podinfo", targetNamespace: "apps", releaseName: "web" }, "web"],
  ])("release name: %s", (_rule, hr, expected) => {
    expect(releaseNameOf(hr)).toBe(expected);
  });

  it("release name: beyond 53 characters it is cut and suffixed with a hash", () => {
    const a = releaseNameOf({ name: "a".repeat(60) });
    const b = releaseNameOf({ name: `${"a".repeat(59)}b` });
    expect(a).toHaveLength(53);
    expect(a).toMatch(/^a{40}-[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
  });

  it("HelmChart name: <namespace>-<name> of the HelmRelease", () => {
    expect(chartObjectName({ namespace: "flux-system", name: "podinfo" })).toBe("flux-system-podinfo");
  });

  it.each([
    ["ChartVersion: the chart's version", "6.0.0", {}, "6.0.0"],
    [
      "Revision on git: version + 12 hex of the commit",
      "6.0.0",
      { strategy: "Revision", commit: "0123456789abcdef0123" },
      "6.0.0+0123456789ab",
    ],
    ["Revision without a commit (a HelmRepository): the version", "6.0.0", { strategy: "Revision" }, "6.0.0"],
    ["valuesFiles: the generation as metadata", "6.0.0", { valuesFilesGeneration: 3 }, "6.0.0+3"],
    [
      "both, commit first",
      "1.0.0",
      { strategy: "Revision", commit: "abcdefabcdefabcdef", valuesFilesGeneration: 2 },
      "1.0.0+abcdefabcdef.2",
    ],
    ["existing build metadata is extended", "1.0.0+build", { valuesFilesGeneration: 2 }, "1.0.0+build.2"],
  ])("chart revision: %s", (_rule, version, opts, expected) => {
    expect(chartRevision(version, opts)).toBe(expected);
  });

  it("valuesFiles replace values.yaml, merged in order, and Chart.yaml carries the published version", () => {
    const f = (path: string, text: string) => ({ path, data: Buffer.from(text) });
    const out = prepareChart(
      [
        f("Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n"),
        f("values.yaml", "a: 1\nb: 1\n"),
        f("prod.yaml", "b: 2\nc: 3\n"),
      ],
      { version: "1.0.0+4", valuesFiles: ["values.yaml", "prod.yaml"] },
    );
    expect(out.find((x) => x.path === "values.yaml")?.data.toString()).toBe("a: 1\nb: 2\nc: 3\n");
    expect(out.find((x) => x.path === "Chart.yaml")?.data.toString()).toContain("version: 1.0.0+4");
    expect(() =>
      prepareChart([f("Chart.yaml", "name: a\nversion: 1.0.0\n")], {
        version: "1.0.0",
        valuesFiles: ["missing.yaml"],
      }),
    ).toThrow('values file "missing.yaml" not found in the chart');
    expect(
      prepareChart([f("Chart.yaml", "name: a\nversion: 1.0.0\n")], {
        version: "1.0.0",
        valuesFiles: ["missing.yaml"],
        ignoreMissing: true,
      }).map((x) => x.path),
    ).toEqual(["Chart.yaml", "values.yaml"]);
  });
});

describe("chart repository index: the newest version in the range", () => {
  const index = parseIndex(`apiVersion: v1
entries:
  podinfo:
    - {name: podinfo, version: 6.1.0, urls: [podinfo-6.1.0.tgz]}
    - {name: podinfo, version: 6.0.1, urls: [https://cdn.example.com/podinfo-6.0.1.tgz]}
    - {name: podinfo, version: 7.0.0-rc.1, urls: [podinfo-7.0.0-rc.1.tgz]}
    - {name: podinfo, version: 5.2.0, urls: [podinfo-5.2.0.tgz]}
`);
  it.each([
    ["no version: the newest stable", "", "6.1.0"],
    ["* is the same", "*", "6.1.0"],
    ["a caret range", "^5.0.0", "5.2.0"],
    ["an x range as Flux users write", "6.0.x", "6.0.1"],
    ["prereleases only when the range names one", ">=7.0.0-0", "7.0.0-rc.1"],
  ])("%s", (_rule, range, expected) => {
    expect(selectChartVersion(index, "podinfo", range).version).toBe(expected);
  });

  it.each([
    ["a chart the index does not have", "nginx", "*", 'chart "nginx" not found in the repository index'],
    ["a range nothing matches", "podinfo", "~9.0", 'no version of chart "podinfo" matches "~9.0"'],
    ["a range that is not semver", "podinfo", "latest!", /version "latest!" is not a semver range/],
  ])("refuses %s", (_rule, chart, range, error) => {
    expect(() => selectChartVersion(index, chart, range)).toThrow(error);
  });

  it.each([
    ["not YAML", "entries: [", /index.yaml is not valid YAML/],
    ["YAML but no apiVersion", "entries: {}\n", /not a Helm repository index: apiVersion/],
    ["an HTML error page", "<html><body>502</body></html>", /not a Helm repository index/],
  ])("parseIndex refuses %s", (_rule, text, error) => {
    expect(() => parseIndex(text)).toThrow(error);
  });

  it("relative chart URLs resolve against the repository URL; credentials go only to its host unless passCredentials", () => {
    const local = chartDownloadUrl("http://127.0.0.1:8080/charts", {
      name: "podinfo",
      version: "6.1.0",
      urls: ["podinfo-6.1.0.tgz"],
    });
    expect(local.toString()).toBe("http://127.0.0.1:8080/charts/podinfo-6.1.0.tgz");
    const cdn = new URL("https://cdn.example.com/podinfo-6.0.1.tgz");
    expect(sendCredentials("http://127.0.0.1:8080/charts", local, false)).toBe(true);
    expect(sendCredentials("http://127.0.0.1:8080/charts", cdn, false)).toBe(false);
    expect(sendCredentials("http://127.0.0.1:8080/charts", cdn, true)).toBe(true);
  });
});

describe("release plan: no Helm action unless something changed", () => {
  const none: Remediation = { retries: 0, remediateLastFailure: false };
  const desired = { chartName: "app", chartVersion: "1.0.0", configDigest: "sha256:v" };
  const deployed = { version: 2, status: "deployed", ...desired };
  const base = {
    managed: true,
    everDeployed: true,
    desired,
    installFailures: 0,
    upgradeFailures: 0,
    install: none,
    upgrade: none,
  };
  it.each([
    ["in sync and managed: nothing", { latest: deployed }, "none"],
    ["no release: install", { latest: undefined, everDeployed: false }, "install"],
    [
      "a release installed by hand (not in history): one upgrade to adopt it",
      { latest: deployed, managed: false },
      "upgrade",
    ],
    ["a new chart version: upgrade", { latest: { ...deployed, chartVersion: "0.9.0" } }, "upgrade"],
    ["changed values: upgrade", { latest: { ...deployed, configDigest: "sha256:old" } }, "upgrade"],
    [
      "a failed latest release: upgrade again while retries remain",
      {
        latest: { ...deployed, status: "failed" },
        upgradeFailures: 1,
        upgrade: { retries: 2, remediateLastFailure: true },
      },
      "upgrade",
    ],
    [
      "retries spent: no more attempts",
      { latest: { ...deployed, status: "deployed", chartVersion: "0.9.0" }, upgradeFailures: 1 },
      "exhausted",
    ],
    [
      "unlimited retries (negative) never run out",
      {
        latest: { ...deployed, chartVersion: "0.9.0" },
        upgradeFailures: 9,
        upgrade: { retries: -1, remediateLastFailure: false },
      },
      "upgrade",
    ],
    [
      "a failed first install: install again (after uninstall) while retries remain",
      {
        latest: { ...deployed, version: 1, status: "failed" },
        everDeployed: false,
        installFailures: 1,
        install: { retries: 1, remediateLastFailure: true },
      },
      "install",
    ],
    [
      "a failed first install with no retries: no more attempts",
      { latest: { ...deployed, version: 1, status: "failed" }, everDeployed: false, installFailures: 1 },
      "exhausted",
    ],
  ])("%s", (_rule, over, action) => {
    expect(planRelease({ ...base, ...over } as Parameters<typeof planRelease>[0]).action).toBe(action);
  });
});

describe("fail closed: HelmRelease and HelmRepository fields", () => {
  const hr = {
    interval: "5m",
    chart: { spec: { chart: "app", sourceRef: { kind: "HelmRepository", name: "r" } } },
  };
  it.each([
    ["a plain release", {}, []],
    [
      "values, valuesFrom and remediation are honoured",
      {
        values: { a: { b: 1 } },
        valuesFrom: [{ kind: "Secret", name: "s", targetPath: "a", optional: true }],
        upgrade: { remediation: { retries: 2, strategy: "rollback" } },
      },
      [],
    ],
    [
      "postRenderers and commonMetadata are honoured; postRenderStrategy is refused",
      {
        postRenderers: [{ kustomize: { patches: [{ patch: "x" }], images: [{ name: "a", newTag: "1" }] } }],
        commonMetadata: { labels: { a: "b" } },
        postRenderStrategy: "kustomize",
      },
      ["spec.postRenderStrategy"],
    ],
    ["serviceAccountName is honoured (impersonated)", { serviceAccountName: "tenant" }, []],
    ["kubeConfig.secretRef is honoured", { kubeConfig: { secretRef: { name: "k", key: "value" } } }, []],
    [
      "kubeConfig.configMapRef (workload identity) is refused",
      { kubeConfig: { configMapRef: { name: "k" } } },
      ["spec.kubeConfig.configMapRef"],
    ],
    [
      "storageNamespace apart from targetNamespace is honoured",
      { targetNamespace: "apps", storageNamespace: "flux-system" },
      [],
    ],
    [
      "drift detection enabled with ignore rules is honoured",
      {
        driftDetection: {
          mode: "enabled",
          ignore: [{ paths: ["/spec/replicas"], target: { kind: "Deployment" } }],
        },
      },
      [],
    ],
    ["driftDetection disabled is what the agent does", { driftDetection: { mode: "disabled" } }, []],
    [
      "tests are honoured",
      {
        test: { enable: true, timeout: "1m", ignoreFailures: true, filters: [{ name: "t", exclude: true }] },
      },
      [],
    ],
    [
      "uninstall remediation, CRD policies and forced replacement are honoured",
      {
        install: { crds: "CreateReplace" },
        upgrade: { remediation: { strategy: "uninstall" }, crds: "Create", force: true },
        rollback: { force: true },
      },
      [],
    ],
    [
      "retry strategies, preserveValues and rollback.recreate are refused",
      {
        upgrade: { strategy: { name: "RetryOnFailure" }, preserveValues: true },
        rollback: { recreate: true },
      },
      ["spec.upgrade.strategy", "spec.upgrade.preserveValues", "spec.rollback.recreate"],
    ],
    ["a field no table knows is refused", { shinyNew: 1 }, ["spec.shinyNew"]],
  ])("HelmRelease: %s", (_rule, extra, expected) => {
    expect(refusedFields({ ...hr, ...extra }, HELM_RELEASE_FIELDS)).toEqual(expected);
  });

  it.each([
    ["type default passes", { type: "default" }, []],
    ["type oci passes (charts pulled through the registry client)", { type: "oci", insecure: true }, []],
    ["provider aws is refused", { type: "oci", provider: "aws" }, ["spec.provider"]],
    ["certSecretRef is refused", { certSecretRef: { name: "tls" } }, ["spec.certSecretRef"]],
  ])("HelmRepository: %s", (_rule, extra, expected) => {
    expect(refusedFields({ url: "https://x", interval: "1m", ...extra }, HELM_REPOSITORY_FIELDS)).toEqual(
      expected,
    );
  });
});

describe("a moved release (helm-controller's releaseTargetChanged)", () => {
  const snap = { name: "apps-web", namespace: "apps", version: 3 } as never;
  const now = { release: "apps-web", targetNs: "apps", storageNs: "flux-system" };
  it.each([
    ["never installed: nothing to move", undefined, undefined],
    ["no history: nothing to move", { storageNamespace: "flux-system" }, undefined],
    ["same place: not moved", { storageNamespace: "flux-system", history: [snap] }, undefined],
    [
      "storageNamespace changed: moved, from where it was stored",
      { storageNamespace: "apps", history: [snap] },
      { name: "apps-web", namespace: "apps", storage: "apps" },
    ],
    [
      "targetNamespace changed (so the release name too): moved",
      {
        storageNamespace: "flux-system",
        history: [{ ...(snap as object), namespace: "old", name: "old-web" }],
      },
      { name: "old-web", namespace: "old", storage: "flux-system" },
    ],
    [
      "releaseName changed: moved",
      { storageNamespace: "flux-system", history: [{ ...(snap as object), name: "web" }] },
      { name: "web", namespace: "apps", storage: "flux-system" },
    ],
  ])("%s", (_rule, status, expected) => {
    expect(movedRelease(status as never, now)).toEqual(expected);
  });
});
