/** The Action's entry point, bundled into dist/index.js (scripts/build-action.ts). */
import { run } from "./main.ts";

await run();
