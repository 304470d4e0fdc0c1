/** Wiring only: the HTTP app, the cron handler (a watchdog) and the Durable Object classes. */
import { app } from "./routes/app";
import type { AppEnv } from "./env";
import { log } from "./core/log";
import { watchdog } from "./ops/scheduled";

export { TokenAuthority } from "./authority/token-authority";
export { Registry } from "./registry/registry";
export { ScheduleIndex } from "./schedule/schedule-index";

export default {
	fetch: app.fetch,
	scheduled(_controller, env, ctx) {
		ctx.waitUntil(watchdog(env).catch((error: unknown) => {
			log("error", "cron_failed", { name: error instanceof Error ? error.name : "unknown", message: error instanceof Error ? error.message : "" });
		}));
	},
} satisfies ExportedHandler<AppEnv>;
