// @ts-check
/**
 * Every app the bench registers, in one place. Each measurement gets apps of its own, so no measurement
 * inherits a token, a Redis key or a rate limit from another, and "upstream calls" can be read per app
 * from the simulator's counters.
 */

/** @typedef {"stable" | "classic"} Mode */
/** @typedef {{ appid: string, secret: string }} App */
/** @typedef {App & { mode: Mode }} BrokerApp */

/** Healed calls timed per mode: enough for a median, each a real token refresh at the simulator. */
const GATEWAY_HEALS_PER_MODE = 5;

/** @param {string} appid @returns {App} */
function app(appid) {
	return { appid, secret: `bench-secret-${appid}` };
}

/** @param {string} appid @param {Mode} mode @returns {BrokerApp} */
function brokerApp(appid, mode) {
	return { ...app(appid), mode };
}

/** @param {number[]} sizes @param {number} repeats */
function bursts(sizes, repeats) {
	return sizes.flatMap((n) => Array.from({ length: repeats }, (_, r) => ({ n, round: r + 1 })));
}

/**
 * @param {{ stampedeSizes: number[], repeats: number }} settings
 */
export function benchApps({ stampedeSizes, repeats }) {
	/** @type {Mode[]} */
	const modes = ["classic", "stable"];
	const strategies = /** @type {const} */ (["lazy-lock", "probe-every-read", "hourly-timer"]);
	/** @param {typeof strategies[number]} strategy */
	const baselineApps = (strategy) => ({
		/** Throughput, in the real-time world. */
		hot: app(`wxbase-${strategy}-hot`),
		/** Stampedes and the compressed day, in the fast world. */
		stampedes: bursts(stampedeSizes, repeats).map(({ n, round }) => ({ n, round, app: app(`wxbase-${strategy}-stampede-${n}-${round}`) })),
		day: app(`wxbase-${strategy}-day`),
	});
	return {
		broker: {
			/** GET /token with the KV edge copy present. */
			hot: brokerApp("wxbench-hot", "stable"),
			/** GET /token with the KV edge copy deleted: every read goes to the Durable Object. */
			objectPath: brokerApp("wxbench-object", "stable"),
			/** POST /token/invalidate with a token that was current before one invalidation. */
			stale: brokerApp("wxbench-stale", "classic"),
			stampedes: modes.flatMap((mode) => bursts(stampedeSizes, repeats).map(({ n, round }) => ({ mode, n, round, app: brokerApp(`wxbench-stampede-${mode}-${n}-${round}`, mode) }))),
			storms: modes.flatMap((mode) => bursts(stampedeSizes, repeats).map(({ n, round }) => ({ mode, n, round, app: brokerApp(`wxbench-storm-${mode}-${n}-${round}`, mode) }))),
		},
		/** The gateway: one app for the load run, and apps healed once each (one forced refresh per app per 30 s). */
		gateway: {
			hot: brokerApp("wxbench-gateway-hot", "stable"),
			heals: modes.flatMap((mode) => Array.from({ length: GATEWAY_HEALS_PER_MODE }, (_, i) => brokerApp(`wxbench-gateway-heal-${mode}-${i}`, mode))),
		},
		/** JS-SDK tickets: one app for the hot run, a fresh one per cold stampede (token and ticket never fetched). */
		tickets: {
			hot: brokerApp("wxbench-ticket-hot", "stable"),
			stampedes: bursts(stampedeSizes, repeats).map(({ n, round }) => ({ n, round, app: brokerApp(`wxbench-ticket-stampede-${n}-${round}`, "stable") })),
		},
		/** The compressed day's broker (a Miniflare of its own, so its cron touches only these). */
		brokerDay: modes.map((mode) => brokerApp(`wxbench-day-${mode}`, mode)),
		baselines: {
			"lazy-lock": baselineApps("lazy-lock"),
			"probe-every-read": baselineApps("probe-every-read"),
			"hourly-timer": baselineApps("hourly-timer"),
		},
		strategies,
	};
}

/** @typedef {ReturnType<typeof benchApps>} BenchApps */
