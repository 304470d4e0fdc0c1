// @ts-check
/**
 * Invalidation storm: WeChat refused the current token (revoked behind the broker's back) and N clients
 * report it at once (POST /token/invalidate). Compare-and-refresh must replace it once: one getcallbackip
 * probe and one /cgi-bin/token call in classic mode; in stable mode one normal stable_token call, which
 * already returns WeChat's new token, and no force. Every client must get the same, new token back.
 */
import { AUTH_HEADERS } from "../broker.mjs";
import { burst } from "../burst.mjs";
import { median, round } from "../stats.mjs";
import { totalTokenCalls } from "./broker-paths.mjs";

/**
 * @param {{ world: import("../world.mjs").World, broker: import("../broker.mjs").Broker, appid: string, mode: "classic" | "stable", n: number }} options
 */
export async function storm({ world, broker, appid, mode, n }) {
	const first = await fetch(`${broker.url}/token?appid=${appid}`, { headers: AUTH_HEADERS });
	const { access_token: reported } = /** @type {{ access_token: string }} */ (await first.json());
	// The broker acts on a report only once WeChat refuses the token (its getcallbackip probe).
	await world.revoke(appid, mode);
	const before = await world.calls(appid);
	const result = await burst({
		urls: [`${broker.url}/token/invalidate`],
		n,
		method: "POST",
		headers: { ...AUTH_HEADERS, "content-type": "application/json" },
		body: JSON.stringify({ appid, access_token: reported }),
	});
	const after = await world.calls(appid);
	const distinct = [...new Set(result.tokens)];
	return {
		n,
		upstream_calls: totalTokenCalls(after) - totalTokenCalls(before),
		forced_calls: after.stable_token_force - before.stable_token_force,
		distinct_tokens: distinct.length,
		still_old_token: result.tokens.filter((t) => t === reported).length,
		failed: n - result.ok,
		failures: result.failures,
		p50_ms: round(result.p50Ms, 1),
		p99_ms: round(result.p99Ms, 1),
		max_ms: round(result.maxMs, 1),
	};
}

/**
 * Medians of repeated storms of one size (each on a fresh app: forced refreshes are rate-limited per app).
 * @param {Awaited<ReturnType<typeof storm>>[]} runs
 */
export function summarizeStorms(runs) {
	/** @param {(run: Awaited<ReturnType<typeof storm>>) => number} pick */
	const med = (pick) => median(runs.map(pick));
	return {
		n: runs[0]?.n ?? 0,
		upstream_calls: med((r) => r.upstream_calls),
		forced_calls: med((r) => r.forced_calls),
		distinct_tokens: med((r) => r.distinct_tokens),
		still_old_token: med((r) => r.still_old_token),
		failed: med((r) => r.failed),
		p50_ms: round(med((r) => r.p50_ms), 1),
		p99_ms: round(med((r) => r.p99_ms), 1),
		runs,
	};
}
