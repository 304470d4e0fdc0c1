#!/usr/bin/env node
// @ts-check
/**
 * `npm run soak -- [minutes]`: the broker under `wrangler dev` while the simulator hands out short-lived
 * tokens and injects random faults, clients use tokens like real services (cache for expires_in, report
 * 40001), and every token a client is about to use is checked with WeChat's business API.
 *
 * It passes only when nothing went wrong: exit 1 on any failed request to the broker (a status other
 * than 200, or no answer), on any served token WeChat rejected, and on fewer checked token uses than it
 * planned (a client that cannot get a token checks nothing, which must not read as a clean run).
 * 127.0.0.1 only, bounded in time.
 */
import { startLocalStack } from "./local-stack.mjs";

const MINUTES = Number(process.argv[2] ?? process.env.SOAK_MINUTES ?? 2);
/**
 * Short enough that a two-minute soak sees a refresh per app or two, and at least the broker's 60 s
 * minimum expires_in (shorter means a broken relay: the broker refuses it and every read gets 503).
 * SOAK_TOKEN_LIFETIME_S overrides it, e.g. 40 to watch the soak fail against a broker that serves nothing.
 */
const TOKEN_LIFETIME_S = Number(process.env.SOAK_TOKEN_LIFETIME_S ?? 90);
const CLIENTS = 8;
/** Each client uses its token this often, like a service making WeChat calls: the plan is fixed up front. */
const CLIENT_PERIOD_MS = 250;
/** After a failed request a client waits this long before asking again. */
const FAILURE_PAUSE_MS = 500;
/** Uses still behind schedule at the end get this much longer to finish before they count as missing. */
const FINISH_GRACE_MS = 10_000;
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
const startAt = Date.now();
const endAt = startAt + MINUTES * 60_000;
const USES_PER_CLIENT = Math.floor((MINUTES * 60_000) / CLIENT_PERIOD_MS);
const plannedUses = CLIENTS * USES_PER_CLIENT;

/** @param {number} ms */
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {Response | null} res @param {string} what */
function countFailure(res, what) {
	stats.failures++;
	const label = `${what} ${res?.status ?? "no answer"}`;
	failuresByStatus[label] = (failuresByStatus[label] ?? 0) + 1;
}

/**
 * A service using the broker. A caching client keeps the token for its expires_in (the documented way);
 * an eager one asks the broker before every use (the edge and object read paths under load). Its k-th use
 * is due at start + k × CLIENT_PERIOD_MS; one that falls behind catches up, and what is not done by the
 * end (plus a grace) is missing.
 * @param {typeof apps[number]} app @param {boolean} caching
 */
async function client(app, caching) {
	let cached = { token: "", until: 0 };
	for (let k = 0; k < USES_PER_CLIENT; k++) {
		await pause(startAt + k * CLIENT_PERIOD_MS - Date.now());
		while (!caching || Date.now() >= cached.until) {
			if (Date.now() > endAt + FINISH_GRACE_MS) return;
			stats.requests++;
			const res = await fetch(`${url}/token?appid=${app.appid}`, { headers }).catch(() => null);
			const body = res ? /** @type {any} */ (await res.json().catch(() => ({}))) : {};
			if (res?.status === 200 && typeof body.access_token === "string" && Number.isInteger(body.expires_in) && body.expires_in > 0) {
				cached = { token: body.access_token, until: Date.now() + body.expires_in * 1_000 };
				break;
			}
			countFailure(res, "GET /token");
			await pause(FAILURE_PAUSE_MS);
		}
		// Use the token as a service would; the business API says whether WeChat still accepts it.
		stats.uses++;
		const check = /** @type {any} */ (await (await fetch(`${sim.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(cached.token)}`)).json());
		if (check.errcode !== undefined) {
			stats.rejected++;
			console.error(`rejected: errcode ${check.errcode} for ${cached.token.slice(0, 8)}… with ${Math.round((cached.until - Date.now()) / 1000)} s of promised life left`);
			stats.invalidations++;
			stats.requests++;
			const res = await fetch(`${url}/token/invalidate`, { method: "POST", headers, body: JSON.stringify({ appid: app.appid, access_token: cached.token }) }).catch(() => null);
			await res?.body?.cancel();
			if (res?.status !== 200) countFailure(res, "POST /token/invalidate");
			cached = { token: "", until: 0 };
		}
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

console.log(`soak: ${MINUTES} min, ${CLIENTS} clients (half caching, half asking before every use), ${plannedUses} token uses planned, token lifetime ${TOKEN_LIFETIME_S} s, a random fault every ~${(2 * FAULT_INTERVAL_MS) / 1000} s`);
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
	token_lifetime_s: TOKEN_LIFETIME_S,
	requests: stats.requests,
	failures: stats.failures,
	failures_by_request: failuresByStatus,
	token_uses_planned: plannedUses,
	token_uses_checked: stats.uses,
	tokens_served_that_wechat_rejected: stats.rejected,
	invalidation_reports: stats.invalidations,
	faults_injected: stats.faults,
	upstream_calls: Object.fromEntries(apps.map((a) => [a.appid, simStats.apps[a.appid]])),
	ideal_upstream_calls_per_app: idealPerApp,
	alerts: alerts.map((/** @type {any} */ m) => m.content),
}, null, 2));
await stack.stop();

const problems = [
	stats.failures > 0 && `${stats.failures} failed request(s) to the broker`,
	stats.rejected > 0 && `${stats.rejected} served token(s) that WeChat rejected`,
	stats.uses < plannedUses && `${stats.uses} of ${plannedUses} planned token uses checked`,
].filter(Boolean);
for (const problem of problems) console.error(`FAIL ${problem}`);
if (problems.length === 0) console.log(`ok  ${stats.uses} token uses checked, ${stats.requests} requests, 0 failed, 0 rejected`);
process.exitCode = problems.length === 0 ? 0 : 1;
