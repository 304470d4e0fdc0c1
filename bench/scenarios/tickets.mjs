// @ts-check
/**
 * JS-SDK tickets on the main broker:
 * - cold stampede: N pages ask GET /ticket?type=jsapi of an app whose token and ticket nobody has fetched,
 *   all at once. The ideal is one getticket (and the one token it needs) for all N: getticket's daily quota
 *   is "very limited", and every extra call is a ticket some page will be signed with.
 * - hot: GET /ticket (isolate memory / KV edge copy) and the gateway's GET /cgi-bin/ticket/getticket beside
 *   GET /healthz in the same run (the ceiling, as in broker-paths.mjs). Neither may call WeChat during load,
 *   which the simulator's counters check.
 */
import { AUTH_HEADERS } from "../broker.mjs";
import { burst } from "../burst.mjs";
import { median, round } from "../stats.mjs";
import { totalTokenCalls } from "./broker-paths.mjs";
import { measureThroughput } from "./throughput.mjs";

/**
 * @param {{ broker: import("../broker.mjs").Broker, world: import("../world.mjs").World,
 *   apps: import("../apps.mjs").BenchApps["tickets"], settings: import("../settings.mjs").Settings }} options
 */
export async function measureTickets({ broker, world, apps, settings }) {
	const ticketUrl = (/** @type {string} */ appid) => `${broker.url}/ticket?appid=${appid}&type=jsapi`;

	/** @type {{ n: number, getticket_calls: number, token_calls: number, distinct_tickets: number, failed: number, p50_ms: number, p99_ms: number }[]} */
	const runs = [];
	for (const s of apps.stampedes) {
		const result = await burst({ urls: [ticketUrl(s.app.appid)], n: s.n, headers: AUTH_HEADERS, valueKey: "ticket" });
		const calls = await world.calls(s.app.appid);
		runs.push({
			n: s.n,
			getticket_calls: calls.getticket ?? 0,
			token_calls: totalTokenCalls(calls),
			distinct_tickets: new Set(result.tokens).size,
			failed: s.n - result.ok,
			p50_ms: round(result.p50Ms, 1),
			p99_ms: round(result.p99Ms, 1),
		});
		console.error(`  ticket stampede N=${s.n}: ${calls.getticket ?? 0} getticket, ${totalTokenCalls(calls)} token, ${new Set(result.tokens).size} tickets, p99 ${round(result.p99Ms, 1)} ms`);
	}
	const stampedes = [...new Set(runs.map((r) => r.n))].map((n) => {
		const of = runs.filter((r) => r.n === n);
		const med = (/** @type {(r: typeof runs[number]) => number} */ pick) => median(of.map(pick));
		return {
			n, getticket_calls: med((r) => r.getticket_calls), token_calls: med((r) => r.token_calls), distinct_tickets: med((r) => r.distinct_tickets),
			failed: med((r) => r.failed), p50_ms: round(med((r) => r.p50_ms), 1), p99_ms: round(med((r) => r.p99_ms), 1), runs: of,
		};
	});

	const hot = apps.hot.appid;
	const warm = await fetch(ticketUrl(hot), { headers: AUTH_HEADERS });
	if (warm.status !== 200) throw new Error(`GET /ticket: HTTP ${warm.status} ${await warm.text()}`);
	const tokenRes = /** @type {any} */ (await (await fetch(`${broker.url}/token?appid=${hot}`, { headers: AUTH_HEADERS })).json());
	const getticketPath = `/cgi-bin/ticket/getticket?access_token=${encodeURIComponent(tokenRes.access_token)}&type=jsapi`;
	const sdk = /** @type {any} */ (await (await fetch(`${broker.url}${getticketPath}`)).json());
	if (sdk.errcode !== 0) throw new Error(`gateway getticket: ${JSON.stringify(sdk)}`);
	const before = await world.calls(hot);
	const points = await measureThroughput({
		tag: "tickets",
		...settings,
		targets: [
			{ id: "healthz", label: "GET /healthz (runtime ceiling)", spec: () => ({ url: `${broker.url}/healthz` }) },
			{ id: "ticket-hot", label: "GET /ticket, kept ticket", spec: () => ({ url: ticketUrl(hot), headers: AUTH_HEADERS }) },
			{ id: "getticket-gateway", label: "GET /cgi-bin/ticket/getticket (gateway)", spec: () => ({ url: `${broker.url}${getticketPath}` }) },
		],
	});
	const after = await world.calls(hot);
	return {
		stampedes,
		points,
		getticket_calls_during_load: (after.getticket ?? 0) - (before.getticket ?? 0),
		token_calls_during_load: totalTokenCalls(after) - totalTokenCalls(before),
	};
}
