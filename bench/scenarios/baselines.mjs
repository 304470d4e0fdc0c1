// @ts-check
/**
 * The baselines (PRIOR-ART.md), each deployed as four instances behind one Redis, measured two ways:
 * - throughput in the real-time world, with the designs' own constants (a 120-minute TTL, an hourly
 *   timer): tokens live 7200 s there, so a few seconds of load measure only the read path;
 * - stampedes in the fast world (world.mjs), with every constant divided by its speedup, so that the
 *   5-minute overlap after which a superseded token stops working has passed by the time answers are
 *   checked (6 world minutes later: 3 s at the fast world's 120×).
 */
import { startFleet } from "../baselines/fleet.mjs";
import { totalTokenCalls } from "./broker-paths.mjs";
import { stampede, summarizeRuns } from "./stampede.mjs";
import { measureThroughput } from "./throughput.mjs";

/** WeChat's own constants, in WeChat seconds. */
const TOKEN_LIFETIME_S = 7200;
const DESIGN_TTL_S = 120 * 60;
const DESIGN_REFRESH_EVERY_S = 60 * 60;
/** A replaced classic token works 5 more minutes; checks wait one world minute past that. */
const OVERLAP_S = 300;
const CHECK_MARGIN_S = 60;

export const LABELS = /** @type {const} */ ({
	"lazy-lock": "(a) Redis lazy cache + per-process lock",
	"probe-every-read": "(b) getcallbackip probe on every read",
	"hourly-timer": "(c) hourly force-refresh timer per instance",
});

/** @param {number} speedup @returns {import("../baselines/strategy.mjs").Timing} */
export function timingFor(speedup) {
	return { cacheTtlS: DESIGN_TTL_S / speedup, refreshEveryS: DESIGN_REFRESH_EVERY_S / speedup, speedup };
}

/** Real seconds a fast-world token lives. */
export function fastLifetimeS(/** @type {number} */ speedup) {
	return TOKEN_LIFETIME_S / speedup;
}

/**
 * @param {{ redisUrl: string, world: import("../world.mjs").World, apps: import("../apps.mjs").BenchApps,
 *   settings: import("../settings.mjs").Settings }} options
 */
export async function measureBaselineThroughput({ redisUrl, world, apps, settings }) {
	const fleets = await Promise.all(apps.strategies.map((strategy) => startFleet({
		name: `hot-${strategy}`, strategy, redisUrl, apiBase: world.url, apps: [apps.baselines[strategy].hot], timing: timingFor(world.speedup),
	})));
	try {
		// Warm every instance: the first read of each fetches or finds the token.
		for (const [i, strategy] of apps.strategies.entries()) {
			for (const url of fleets[i]?.urls ?? []) await (await fetch(`${url}/token?appid=${apps.baselines[strategy].hot.appid}`)).json();
		}
		const before = await Promise.all(apps.strategies.map((s) => world.calls(apps.baselines[s].hot.appid)));
		const points = await measureThroughput({
			tag: "baselines",
			...settings,
			targets: [
				{ id: "node-healthz", label: "GET /healthz, 4 Node instances (their ceiling)", spec: () => ({ url: (fleets[0]?.urls ?? []).map((u) => `${u}/healthz`) }) },
				...apps.strategies.map((strategy, i) => ({
					id: strategy,
					label: LABELS[strategy],
					spec: () => ({ url: (fleets[i]?.urls ?? []).map((u) => `${u}/token?appid=${apps.baselines[strategy].hot.appid}`) }),
				})),
			],
		});
		const after = await Promise.all(apps.strategies.map((s) => world.calls(apps.baselines[s].hot.appid)));
		const upstream = Object.fromEntries(apps.strategies.map((strategy, i) => {
			const b = /** @type {import("../world.mjs").CallCounts} */ (before[i]);
			const a = /** @type {import("../world.mjs").CallCounts} */ (after[i]);
			return [strategy, { token_calls: totalTokenCalls(a) - totalTokenCalls(b), probe_calls: a.getcallbackip - b.getcallbackip }];
		}));
		return { points, upstream_calls_during_load: upstream };
	} finally {
		await Promise.all(fleets.map((fleet) => fleet.stop()));
	}
}

/**
 * Fleets in the fast world, for the stampedes and the compressed day (each fleet serves both kinds of app).
 * @param {{ redisUrl: string, world: import("../world.mjs").World, apps: import("../apps.mjs").BenchApps }} options
 */
export async function startFastFleets({ redisUrl, world, apps }) {
	const fleets = await Promise.all(apps.strategies.map((strategy) => {
		const mine = apps.baselines[strategy];
		return startFleet({
			name: `fast-${strategy}`, strategy, redisUrl, apiBase: world.url,
			apps: [...mine.stampedes.map((s) => s.app), mine.day], timing: timingFor(world.speedup),
		});
	}));
	return new Map(apps.strategies.map((strategy, i) => [strategy, /** @type {import("../baselines/fleet.mjs").Fleet} */ (fleets[i])]));
}

/**
 * @param {{ world: import("../world.mjs").World, apps: import("../apps.mjs").BenchApps,
 *   fleets: Map<string, import("../baselines/fleet.mjs").Fleet> }} options
 */
export async function baselineStampedes({ world, apps, fleets }) {
	const checkAfterMs = Math.ceil(((OVERLAP_S + CHECK_MARGIN_S) / world.speedup) * 1000);
	const rows = [];
	for (const strategy of apps.strategies) {
		const fleet = /** @type {import("../baselines/fleet.mjs").Fleet} */ (fleets.get(strategy));
		/** @type {Map<number, import("./stampede.mjs").StampedeRun[]>} */
		const bySize = new Map();
		for (const { n, app } of apps.baselines[strategy].stampedes) {
			const run = await stampede({ world, appid: app.appid, urls: fleet.urls, n, checkAfterMs });
			console.error(`  stampede ${strategy} N=${n}: ${run.upstream_calls} upstream calls, ${run.distinct_tokens} tokens, ${run.rejected} answers rejected after the overlap`);
			bySize.set(n, [...(bySize.get(n) ?? []), run]);
		}
		for (const runs of bySize.values()) rows.push({ strategy, label: LABELS[strategy], check_after_ms: checkAfterMs, ...summarizeRuns(runs) });
	}
	return rows;
}
