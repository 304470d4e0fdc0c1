// @ts-check
/**
 * One instance of a baseline token server, as it is deployed: its own process and in-process lock, the
 * shared Redis, WeChat (the simulator). Forked by fleet.mjs with its configuration in BENCH_BASELINE;
 * reports its port over IPC and exits when the parent goes away.
 *
 *   GET /token?appid=  → 200 {"access_token", "expires_in"} (real seconds it claims the token is good for)
 *   GET /healthz       → 200 {"ok": true}: this Node process's own ceiling
 */
import { createServer } from "node:http";
import { Redis } from "ioredis";
import { createHourlyTimer } from "./hourly-timer.mjs";
import { createLazyLock } from "./lazy-lock.mjs";
import { createProbeEveryRead } from "./probe-every-read.mjs";

/** @typedef {"lazy-lock" | "probe-every-read" | "hourly-timer"} StrategyName */

/**
 * @typedef {object} InstanceConfig
 * @property {StrategyName} strategy
 * @property {string} redisUrl
 * @property {string} apiBase
 * @property {{ appid: string, secret: string }[]} apps
 * @property {import("./strategy.mjs").Timing} timing
 * @property {string} keyPrefix
 */

/** @type {Record<StrategyName, (ctx: import("./strategy.mjs").StrategyContext) => import("./strategy.mjs").Strategy>} */
const STRATEGIES = {
	"lazy-lock": createLazyLock,
	"probe-every-read": createProbeEveryRead,
	"hourly-timer": createHourlyTimer,
};

const config = /** @type {InstanceConfig} */ (JSON.parse(process.env.BENCH_BASELINE ?? "{}"));
const redis = new Redis(config.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
const strategy = STRATEGIES[config.strategy]({
	redis,
	apiBase: config.apiBase,
	apps: new Map(config.apps.map((app) => [app.appid, app])),
	timing: config.timing,
	keyPrefix: config.keyPrefix,
});

/**
 * @param {import("node:http").ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 */
function reply(res, status, body) {
	const text = JSON.stringify(body);
	res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
	res.end(text);
}

const server = createServer((req, res) => {
	const url = new URL(req.url ?? "/", "http://baseline.invalid");
	if (url.pathname === "/healthz") return reply(res, 200, { ok: true });
	if (url.pathname !== "/token") return reply(res, 404, { error: "not_found" });
	const appid = url.searchParams.get("appid") ?? "";
	strategy.getToken(appid).then(
		(served) => reply(res, 200, { access_token: served.accessToken, expires_in: served.expiresInS }),
		(error) => reply(res, 502, { error: "upstream", message: error instanceof Error ? error.message : String(error) }),
	);
});
// Node's default 5 s keep-alive would drop autocannon's idle connections between points.
server.keepAliveTimeout = 60_000;

let stopping = false;
function stop() {
	if (stopping) return;
	stopping = true;
	strategy.close();
	server.closeAllConnections();
	server.close();
	redis.disconnect();
	process.exit(0);
}
process.on("disconnect", stop);
process.on("SIGTERM", stop);

server.listen(0, "127.0.0.1", () => {
	const address = server.address();
	process.send?.({ port: address !== null && typeof address === "object" ? address.port : 0 });
});
