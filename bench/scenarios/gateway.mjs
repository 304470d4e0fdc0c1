// @ts-check
/**
 * The gateway's cost, on the main broker:
 * - a business call (GET /cgi-bin/getcallbackip) straight to the simulator beside the same call through
 *   the gateway (ownership lookup, current token, forward, answer streamed back), same token, same load;
 * - a healed call: WeChat refuses the token the broker holds (revoked behind its back), so the one call
 *   becomes refusal → compare-and-refresh (one upstream token call) → retry. Each heal app is healed
 *   once, because the broker allows one forced refresh per app per 30 s; its latency is set beside a
 *   plain call through the gateway made just before on the same app.
 * getcallbackip answers HTTP 200 even when it refuses a token, so every answer is checked: the load runs
 * are followed by a check that the token still works and that no token refresh happened during them.
 */
import { median, round } from "../stats.mjs";
import { AUTH_HEADERS } from "../broker.mjs";
import { totalTokenCalls } from "./broker-paths.mjs";
import { measureThroughput } from "./throughput.mjs";

/**
 * @param {{ broker: import("../broker.mjs").Broker, world: import("../world.mjs").World,
 *   apps: import("../apps.mjs").BenchApps["gateway"], settings: import("../settings.mjs").Settings }} options
 */
export async function measureGateway({ broker, world, apps, settings }) {
	const token = await brokerToken(broker, apps.hot.appid);
	const path = `/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`;
	await expectIpList(`${broker.url}${path}`);
	const before = await world.calls(apps.hot.appid);
	const points = await measureThroughput({
		tag: "gateway",
		...settings,
		targets: [
			{ id: "sim-direct", label: "GET /cgi-bin/getcallbackip straight to the simulator", spec: () => ({ url: `${world.url}${path}` }) },
			{ id: "gateway", label: "GET /cgi-bin/getcallbackip through the gateway", spec: () => ({ url: `${broker.url}${path}` }) },
		],
	});
	const after = await world.calls(apps.hot.appid);
	if (await world.check(token)) throw new Error("the gateway's token stopped working during the load run");
	await expectIpList(`${broker.url}${path}`);

	/** @type {{ mode: string, plain_ms: number, healed_ms: number, refreshes: number }[]} */
	const heals = [];
	for (const app of apps.heals) {
		const current = await brokerToken(broker, app.appid);
		const url = `${broker.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(current)}`;
		await expectIpList(url); // the first call warms the isolate's ownership memory
		const plainMs = await time(() => expectIpList(url));
		await revoke(world, app);
		if ((await world.check(current)) === 0) throw new Error(`the simulator still accepts ${app.appid}'s revoked token`);
		const beforeHeal = await world.calls(app.appid);
		const healedMs = await time(() => expectIpList(url));
		const afterHeal = await world.calls(app.appid);
		heals.push({ mode: app.mode, plain_ms: round(plainMs, 2), healed_ms: round(healedMs, 2), refreshes: totalTokenCalls(afterHeal) - totalTokenCalls(beforeHeal) });
	}
	const byMode = (/** @type {string} */ mode) => heals.filter((h) => h.mode === mode);
	return {
		points,
		token_calls_during_load: totalTokenCalls(after) - totalTokenCalls(before),
		heals: ["classic", "stable"].map((mode) => ({
			mode,
			n: byMode(mode).length,
			plain_p50_ms: round(median(byMode(mode).map((h) => h.plain_ms)), 2),
			healed_p50_ms: round(median(byMode(mode).map((h) => h.healed_ms)), 2),
			refreshes_per_heal: round(median(byMode(mode).map((h) => h.refreshes)), 2),
			runs: byMode(mode),
		})),
	};
}

/** @param {import("../broker.mjs").Broker} broker @param {string} appid */
async function brokerToken(broker, appid) {
	const res = await fetch(`${broker.url}/token?appid=${appid}`, { headers: AUTH_HEADERS });
	const body = /** @type {any} */ (await res.json());
	if (res.status !== 200) throw new Error(`GET /token for ${appid}: ${res.status} ${JSON.stringify(body)}`);
	return /** @type {string} */ (body.access_token);
}

/** @param {string} url */
async function expectIpList(url) {
	const body = /** @type {any} */ (await (await fetch(url)).json());
	if (!Array.isArray(body.ip_list)) throw new Error(`getcallbackip through the gateway answered ${JSON.stringify(body)}`);
}

/** @param {() => Promise<unknown>} fn */
async function time(fn) {
	const t0 = performance.now();
	await fn();
	return performance.now() - t0;
}

/**
 * What another server holding the AppSecret does: a stable force_refresh (the old token dies at once), or
 * for classic, WeChat revoking the token outright (a classic fetch elsewhere would leave it 300 s).
 * @param {import("../world.mjs").World} world @param {{ appid: string, mode: string }} app
 */
async function revoke(world, app) {
	const action = app.mode === "stable" ? "rotate" : "revoke";
	const res = await fetch(`${world.url}/__sim/apps/${encodeURIComponent(app.appid)}/${action}`, {
		method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: app.mode }),
	});
	if (!res.ok) throw new Error(`simulator ${action} ${app.appid}: ${res.status}`);
	await res.arrayBuffer();
}
