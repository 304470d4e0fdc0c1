// @ts-check
/**
 * The hot path with a registry (issue 16): N apps and N keys registered through the admin API, then hot
 * GET /token beside /healthz of the same Worker in the same run:
 * - an app of WECHAT_APPS read with a key of API_KEYS (the path before the registry, for comparison);
 * - a registry app read with its own registry key (found by digest in KV, then isolate memory);
 * - 64 registry apps round-robin with one registry key scoped "*" (app lookups for many ids).
 * Also timed: registering the N apps (each PUT fetches the app's first token) and the N keys.
 */
import { AUTH_HEADERS } from "../broker.mjs";
import { round } from "../stats.mjs";
import { measureThroughput } from "./throughput.mjs";

/** Admin calls in flight while registering: enough to keep both cores busy. */
const REGISTER_CONCURRENCY = 32;
/** Registry apps the round-robin target spreads over. */
const SPREAD_APPS = 64;

/**
 * @param {{ broker: import("../broker.mjs").Broker, world: import("../world.mjs").World, secretApp: import("../broker.mjs").BrokerApp,
 *   n: number, settings: import("../settings.mjs").Settings }} options
 */
export async function measureRegistry({ broker, world, secretApp, n, settings }) {
	const apps = Array.from({ length: n }, (_, i) => ({ appid: `wxbenchreg${String(i).padStart(6, "0")}`, secret: `bench-registry-secret-${i}`, mode: /** @type {const} */ ("stable") }));
	await world.registerApps(apps);
	/** @param {string} path @param {string} method @param {unknown} body */
	async function admin(path, method, body) {
		const res = await fetch(`${broker.url}${path}`, { method, headers: { ...AUTH_HEADERS, "content-type": "application/json" }, body: JSON.stringify(body) });
		const json = /** @type {any} */ (await res.json());
		if (res.status !== 201) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
		return json;
	}
	/** @template T @param {T[]} items @param {(item: T) => Promise<unknown>} each */
	async function inBatches(items, each) {
		const started = performance.now();
		for (let i = 0; i < items.length; i += REGISTER_CONCURRENCY) await Promise.all(items.slice(i, i + REGISTER_CONCURRENCY).map(each));
		return (performance.now() - started) / 1000;
	}
	const appsS = await inBatches(apps, async (app) => {
		const put = await admin(`/admin/apps/${app.appid}`, "PUT", { secret: app.secret, mode: app.mode });
		if (!put.token.ok) throw new Error(`PUT ${app.appid}: first fetch failed: ${JSON.stringify(put.token)}`);
	});
	/** @type {string[]} */
	const keys = new Array(n);
	const keysS = await inBatches(apps.map((app, i) => ({ app, i })), async ({ app, i }) => {
		keys[i] = (await admin("/admin/keys", "POST", { name: `bench-svc-${i}`, apps: [app.appid] })).key;
	});
	const wide = (await admin("/admin/keys", "POST", { name: "bench-wide", apps: ["*"] })).key;
	const hot = /** @type {typeof apps[0]} */ (apps[Math.floor(n / 2)]);
	const hotKey = keys[Math.floor(n / 2)];
	const tokenUrl = (/** @type {string} */ appid) => `${broker.url}/token?appid=${appid}`;
	const before = await world.calls(hot.appid);

	const points = await measureThroughput({
		tag: "registry",
		...settings,
		targets: [
			{ id: "healthz", label: "GET /healthz (runtime ceiling)", spec: () => ({ url: `${broker.url}/healthz` }) },
			{ id: "token-secret", label: "GET /token, WECHAT_APPS app, API_KEYS key", spec: () => ({ url: tokenUrl(secretApp.appid), headers: AUTH_HEADERS }) },
			{ id: "token-registry", label: `GET /token, registry app and key (of ${n} each)`, spec: () => ({ url: tokenUrl(hot.appid), headers: { authorization: `Bearer ${hotKey}` } }) },
			{
				id: "token-registry-spread", label: `GET /token, ${SPREAD_APPS} registry apps round-robin, one registry key`,
				spec: () => ({ url: apps.slice(0, SPREAD_APPS).map((app) => tokenUrl(app.appid)), headers: { authorization: `Bearer ${wide}` } }),
			},
		],
	});
	const after = await world.calls(hot.appid);
	/** @param {string} id @param {number} c */
	const rps = (id, c) => points.find((p) => p.target === id && p.concurrency === c)?.rps ?? 0;
	const ratios = Object.fromEntries(["token-secret", "token-registry", "token-registry-spread"].map((id) => [id,
		Object.fromEntries(settings.concurrencies.map((c) => [c, round(rps(id, c) / rps("healthz", c), 2)]))]));
	return {
		apps: n,
		keys: n + 1,
		register_apps_s: round(appsS, 1),
		register_keys_s: round(keysS, 1),
		points,
		ratio_to_healthz: ratios,
		upstream_calls_during_load: after.stable_token - before.stable_token,
	};
}
