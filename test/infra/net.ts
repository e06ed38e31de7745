/** Loopback ports for test servers: the one freePort every fixture uses. */
import { createServer } from "node:net";

/** A port of 127.0.0.1 that was free a moment ago (the OS picked it; the probe is closed again). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
