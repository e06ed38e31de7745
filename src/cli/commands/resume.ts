import type { Command } from "../main.ts";
import { toggleCommand } from "./suspend.ts";

export const command: Command = toggleCommand("resume");
