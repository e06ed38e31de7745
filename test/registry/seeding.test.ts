/** The seeding helpers produce what a registry serves as pushed images, whichever way they write. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.ts";
import { waitFor } from "../helpers/wait.ts";
import { startFake } from "../infra/http-fake.ts";
import { seedFleet, seedImage, startRegistry, type TestRegistry } from "../infra/registry.ts";

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry({ auth: "none" });
});
afterAll(async () => {
  await reg?.stop();
});

describe("seedFleet", () => {
  it.each(["api", "storage"] as const)(
    "via %s: every repository serves every tag, one image behind them",
    async (via) => {
      const created = new Date("2024-07-07T07:07:07Z");
      const names = await seedFleet(reg, { repos: 3, tags: 25, prefix: `fleet-${via}/app`, via, created });
      expect(names).toEqual([`fleet-${via}/app-0`, `fleet-${via}/app-1`, `fleet-${via}/app-2`]);
      const c = new RegistryClient({ cacheDir: false });
      for (const name of names) {
        const { tags } = await c.listTags(`${reg.host}/${name}`);
        expect(tags).toHaveLength(25);
        expect(tags).toContain("1.2.4");
        const a = await c.resolveDigest(`${reg.host}/${name}:1.0.0`);
        const b = await c.resolveDigest(`${reg.host}/${name}:1.2.4`);
        expect(b.digest).toBe(a.digest);
        expect(a.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
        expect((await c.imageCreated(`${reg.host}/${name}@${a.digest}`)).created).toEqual(created);
      }
    },
  );
});

describe("registry notifications pass-through", () => {
  it("a push is delivered to the configured webhook endpoint", async () => {
    const events: { action: string; target: { repository: string; tag?: string } }[] = [];
    const hook = await startFake(async (req, res) => {
      let body = "";
      for await (const chunk of req) body += chunk;
      if (req.url === "/hook") events.push(...(JSON.parse(body) as { events: typeof events }).events);
      res.writeHead(200);
      res.end();
    });
    const notifying = await startRegistry({
      auth: "none",
      notifications: {
        endpoints: [
          { name: "shipmate", url: `${hook.url}/hook`, timeout: "2s", threshold: 3, backoff: "100ms" },
        ],
      },
    });
    try {
      await seedImage(notifying, { repository: "team/notified", tags: ["1.2.3"] });
      const tagged = () => events.find((e) => e.action === "push" && e.target.tag === "1.2.3");
      await waitFor(tagged, { ms: 20_000, what: "the registry's push notification" });
      expect(tagged()?.target.repository).toBe("team/notified");
      expect(hook.requests[0]?.headers["content-type"]).toMatch(
        /application\/vnd\.docker\.distribution\.events\.v1\+json/,
      );
    } finally {
      await notifying.stop();
      await hook.close();
    }
  });
});
