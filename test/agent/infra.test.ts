import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KubeCluster, startKube } from "../infra/kube.ts";

describe("test control plane", () => {
  let kube: KubeCluster;
  beforeAll(async () => {
    kube = await startKube({ name: "infra" });
  });
  afterAll(async () => {
    await kube?.stop();
  });

  it("serves the API with the admin token and refuses the unprivileged user", async () => {
    const admin = await fetchApi(kube, kube.adminToken, "/api/v1/namespaces");
    expect(admin.status).toBe(200);
    const dev = await fetchApi(kube, kube.userToken, "/api/v1/namespaces");
    expect(dev.status).toBe(403);
  });

  it("comes back on the same port and data after an API server restart", async () => {
    const created = await fetchApi(kube, kube.adminToken, "/api/v1/namespaces", {
      method: "POST",
      body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "survives-restart" } }),
    });
    expect(created.status).toBe(201);
    await kube.stopApiServer();
    await kube.startApiServer();
    const got = await fetchApi(kube, kube.adminToken, "/api/v1/namespaces/survives-restart");
    expect(got.status).toBe(200);
  });
});

async function fetchApi(
  kube: KubeCluster,
  token: string,
  path: string,
  init: { method?: string; body?: string } = {},
) {
  const { request } = await import("node:https");
  return await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      `${kube.server}${path}`,
      {
        method: init.method ?? "GET",
        ca: kube.caPem,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      },
      (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}
