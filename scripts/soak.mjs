#!/usr/bin/env node
// @ts-check
/**
 * `npm run soak -- [minutes]`: the broker under `wrangler dev` while the simulator hands out short-lived
 * tokens and injects random faults, clients poll like real services (cache for expires_in, report 40001),
 * and every token a client is about to use is checked with WeChat's business API. The number that
 * matters is "tokens served that WeChat rejected": the goal is zero. 127.0.0.1 only, bounded in time.
 */
import { startLocalStack } from "./local-stack.mjs";

const MINUTES = Number(process.argv[2] ?? process.env.SOAK_MINUTES ?? 2);
/** Short enough that a two-minute soak sees several refreshes per app; margins scale with it. */
const TOKEN_LIFETIME_S = 40;
const CLIENTS = 8;
/** A client's pause between uses of its token, like a service making WeChat calls. */
const CLIENT_PAUSE_MS = 100;
/** Cloudflare fires the cron once a minute; firing it more often here matches the compressed lifetime. */
const CRON_INTERVAL_MS = 5_000;
const FAULT_INTERVAL_MS = 4_000;
/** Faults WeChat and the network really produce; each lasts one to three calls. */
const FAULTS = [
	{ kind: "errcode", errcode: -1 },
	{ kind: "errcode", errcode: 45011 },
	{ kind: "http", status: 502 },
	{ kind: "malformed" },
	{ kind: "reset" },
	{ kind: "hang" },
];
const KEY = "soak-admin-key-0123456789abcdef";
const apps = [
	{ appid: "wxsoakclassic001", secret: "soak-secret-classic", mode: /** @type {const} */ ("classic") },
	{ appid: "wxsoakstable0001", secret: "soak-secret-stable", mode: /** @type {const} */ ("stable") },
];

const stack = await startLocalStack({
	brokerPort: Number(process.env.BROKER_PORT ?? 8798),
	simPort: Number(process.env.WXSIM_PORT ?? 9868),
	apps,
	keys: [{ name: "soak", key: KEY, apps: ["*"], admin: true }],
	persistTo: ".wrangler/soak-state",
	vars: { ALERT_WEBHOOK_URL: "{sim}/cgi-bin/webhook/send?key=soak", WECHAT_TIMEOUT_MS: "1000" },
	quiet: true,
});
const { url, sim } = stack;
const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };

/** @param {string} path @param {unknown} [body] @param {string} [method] */
async function control(path, body, method = body === undefined ? "GET" : "POST") {
	const res = await fetch(`${sim.url}/__sim${path}`, { method, headers: { "content-type": "application/json" }, ...(body !== undefined && { body: JSON.stringify(body) }) });
	return /** @type {any} */ (await res.json());
}
for (const app of apps) await control("/apps", { appid: app.appid, lifetime_s: TOKEN_LIFETIME_S });

const stats = { requests: 0, failures: 0, uses: 0, rejected: 0, invalidations: 0, faults: 0 };
/** @type {Record<string, number>} */
const failuresByStatus = {};
const endAt = Date.now() + MINUTES * 60_000;

/**
 * A service using the broker. A caching client keeps the token for its expires_in (the documented way);
 * an eager one asks the broker before every use (the edge and object read paths under load).
 * @param {typeof apps[number]} app @param {boolean} caching
 */
async function client(app, caching) {
	let cached = { token: "", until: 0 };
	while (Date.now() < endAt) {
		if (!caching || Date.now() >= cached.until) {
			stats.requests++;
			const res = await fetch(`${url}/token?appid=${app.appid}`, { headers }).catch(() => null);
			const body = res ? /** @type {any} */ (await res.json().catch(() => ({}))) : {};
			if (!res || res.status !== 200) {
				stats.failures++;
				failuresByStatus[res?.status ?? "network"] = (failuresByStatus[res?.status ?? "network"] ?? 0) + 1;
				await new Promise((r) => setTimeout(r, 500));
				continue;
			}
			cached = { token: body.access_token, until: Date.now() + body.expires_in * 1_000 };
		}
		// Use the token as a service would; the business API says whether WeChat still accepts it.
		stats.uses++;
		const check = /** @type {any} */ (await (await fetch(`${sim.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(cached.token)}`)).json());
		if (check.errcode !== undefined) {
			stats.rejected++;
			console.error(`rejected: errcode ${check.errcode} for ${cached.token.slice(0, 8)}… with ${Math.round((cached.until - Date.now()) / 1000)} s of promised life left`);
			stats.invalidations++;
			await fetch(`${url}/token/invalidate`, { method: "POST", headers, body: JSON.stringify({ appid: app.appid, access_token: cached.token }) }).then((r) => r.body?.cancel());
			cached = { token: "", until: 0 };
		}
		await new Promise((r) => setTimeout(r, CLIENT_PAUSE_MS));
	}
}

const cron = setInterval(() => void fetch(`${url}/__scheduled?cron=*+*+*+*+*`).then((r) => r.body?.cancel(), () => {}), CRON_INTERVAL_MS);
/** Faults wait for a refresh to hit them; every few ticks all are cleared (which also releases hung calls). */
const CLEAR_EVERY_TICKS = 5;
let tick = 0;
const chaos = setInterval(async () => {
	if (++tick % CLEAR_EVERY_TICKS === 0) await control("/faults", undefined, "DELETE");
	if (Math.random() < 0.5) return;
	const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)];
	const app = apps[Math.floor(Math.random() * apps.length)];
	stats.faults++;
	await control("/faults", { appid: app?.appid, ...fault, times: 1 + Math.floor(Math.random() * 3) });
}, FAULT_INTERVAL_MS);

console.log(`soak: ${MINUTES} min, ${CLIENTS} clients (half caching, half asking before every use), token lifetime ${TOKEN_LIFETIME_S} s, a random fault every ~${(2 * FAULT_INTERVAL_MS) / 1000} s`);
try {
	await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(/** @type {typeof apps[number]} */ (apps[i % apps.length]), i % 4 < 2)));
} finally {
	clearInterval(cron);
	clearInterval(chaos);
	await control("/faults", undefined, "DELETE");
}

const simStats = await control("/stats");
const alerts = (await control("/webhook?key=soak")).messages ?? [];
const idealPerApp = Math.ceil((MINUTES * 60) / TOKEN_LIFETIME_S);
console.log(JSON.stringify({
	minutes: MINUTES,
	requests: stats.requests,
	failures: stats.failures,
	failures_by_status: failuresByStatus,
	token_uses_checked: stats.uses,
	tokens_served_that_wechat_rejected: stats.rejected,
	invalidation_reports: stats.invalidations,
	faults_injected: stats.faults,
	upstream_calls: Object.fromEntries(apps.map((a) => [a.appid, simStats.apps[a.appid]])),
	ideal_upstream_calls_per_app: idealPerApp,
	alerts: alerts.map((/** @type {any} */ m) => m.content),
}, null, 2));
await stack.stop();
process.exitCode = stats.rejected === 0 ? 0 : 1;
