// @ts-check
/**
 * The broker as it ships, in programmatic Miniflare: the bundle `wrangler deploy --dry-run` writes, with
 * wrangler.toml's bindings (a SQLite Durable Object, a local KV namespace) on 127.0.0.1 and a port the OS
 * picks. Shared by the e2e tests (test/e2e/stack.ts) and the bench (bench/broker.mjs), which add their own
 * log handling, and the e2e tests the static files.
 */

/** wrangler.toml's date; the bundled workerd accepts ≤ 2026-04-26. */
export const COMPATIBILITY_DATE = "2026-04-20";

/**
 * @param {{ scriptPath: string, bindings: Record<string, string> }} options
 */
export function bundleOptions({ scriptPath, bindings }) {
	return {
		scriptPath,
		modules: /** @type {const} */ (true),
		compatibilityDate: COMPATIBILITY_DATE,
		// No request.cf download: nothing here leaves 127.0.0.1.
		cf: false,
		host: "127.0.0.1",
		port: 0,
		kvNamespaces: ["TOKEN_CACHE"],
		durableObjects: {
			TOKEN_AUTHORITY: { className: "TokenAuthority", useSQLite: true },
			REGISTRY: { className: "Registry", useSQLite: true },
			SCHEDULE_INDEX: { className: "ScheduleIndex", useSQLite: true },
		},
		bindings,
	};
}
