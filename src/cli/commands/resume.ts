import type { Command } from "../command.ts";
import { toggleCommand } from "./suspend.ts";

export const command: Command = toggleCommand("resume");
