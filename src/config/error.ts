/** The one error a configuration problem raises; app.ts turns it into a 500 (the message only for admins). */
import type { ApiKeyConfig } from "./types";

/** Thrown for a configuration an operator must fix. The message never contains a secret. */
export class ConfigError extends Error {
	override readonly name = "ConfigError";
	/**
	 * The admin keys, when API_KEYS itself could be read: only a caller holding one is shown the message.
	 * Anyone else gets a generic answer, since the message may name apps and keys.
	 */
	adminKeys: readonly ApiKeyConfig[] = [];
}
