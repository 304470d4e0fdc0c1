// @ts-check
/**
 * The broker's request paths under load, beside GET /healthz of the same Worker in the same run (no auth,
 * no I/O: what workerd and Hono cost on their own, the ceiling every other path is a share of):
 * - GET /token served from the KV edge copy (the path every read takes at the edge while a token is fresh);
 * - GET /token served by the Durable Object (the edge copy deleted; the read path never writes KV, so it
 *   stays absent for the whole run, which is checked afterwards);
 * - POST /token/invalidate of a stale token (one that was current before an invalidation): compare-and-
 *   refresh answers with the current token, and WeChat must not be called at all.
 * The simulator's counters are read before and after: none of these paths may call WeChat.
 */
import { AUTH_HEADERS } from "../broker.mjs";
import { measureThroughput } from "./throughput.mjs";

/**
 * @param {{ broker: import("../broker.mjs").Broker, world: import("../world.mjs").World,
 *   apps: import("../apps.mjs").BenchApps["broker"], settings: import("../settings.mjs").Settings }} options
 */
export async function measureBrokerPaths({ broker, world, apps, settings }) {
	const tokenUrl = (/** @type {string} */ appid) => `${broker.url}/token?appid=${appid}`;
	/** @param {string} url @param {RequestInit} [init] */
	async function call(url, init = {}) {
		const res = await fetch(url, { ...init, headers: { ...AUTH_HEADERS, "content-type": "application/json", ...init.headers } });
		const body = /** @type {any} */ (await res.json());
		if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${JSON.stringify(body)}`);
		return body;
	}

	await call(tokenUrl(apps.hot.appid));
	if (!(await broker.hasEdgeCopy(apps.hot.appid))) throw new Error("the first GET /token wrote no KV edge copy");
	await call(tokenUrl(apps.objectPath.appid));
	await broker.deleteEdgeCopy(apps.objectPath.appid);
	const { access_token: staleToken } = await call(tokenUrl(apps.stale.appid));
	await world.revoke(apps.stale.appid, "classic"); // a report is acted on only once WeChat refuses the token
	const { access_token: current } = await call(`${broker.url}/token/invalidate`, { method: "POST", body: JSON.stringify({ appid: apps.stale.appid, access_token: staleToken }) });
	if (current === staleToken) throw new Error("invalidating the current token did not replace it");

	const appids = [apps.hot.appid, apps.objectPath.appid, apps.stale.appid];
	const before = await Promise.all(appids.map((appid) => world.calls(appid)));

	const json = { ...AUTH_HEADERS, "content-type": "application/json" };
	const points = await measureThroughput({
		tag: "broker",
		...settings,
		targets: [
			{ id: "healthz", label: "GET /healthz (runtime ceiling)", spec: () => ({ url: `${broker.url}/healthz` }) },
			{ id: "token-kv", label: "GET /token, KV edge copy", spec: () => ({ url: tokenUrl(apps.hot.appid), headers: AUTH_HEADERS }) },
			{ id: "token-object", label: "GET /token, Durable Object", spec: () => ({ url: tokenUrl(apps.objectPath.appid), headers: AUTH_HEADERS }) },
			{
				id: "invalidate-stale",
				label: "POST /token/invalidate, stale token",
				spec: () => ({ url: `${broker.url}/token/invalidate`, method: "POST", headers: json, body: JSON.stringify({ appid: apps.stale.appid, access_token: staleToken }) }),
			},
		],
	});

	const after = await Promise.all(appids.map((appid) => world.calls(appid)));
	const targetIds = ["token-kv", "token-object", "invalidate-stale"];
	const upstreamDuring = Object.fromEntries(targetIds.map((id, i) => [id, totalTokenCalls(/** @type {any} */ (after[i])) - totalTokenCalls(/** @type {any} */ (before[i]))]));
	return {
		points,
		upstream_calls_during_load: upstreamDuring,
		object_path_edge_copy_stayed_absent: !(await broker.hasEdgeCopy(apps.objectPath.appid)),
	};
}

/** @param {import("../world.mjs").CallCounts} calls */
export function totalTokenCalls(calls) {
	// A forced stable call counts in both stable_token and stable_token_force: count it once.
	return calls.token + calls.stable_token;
}
