// @ts-check
/**
 * A "world": one WeChat simulator and the clock it keeps, plus the control calls the bench needs.
 *
 * Two worlds run side by side, because two kinds of system are measured:
 * - real time (speedup 1): the broker. workerd's clock cannot be sped up, so its compressed day uses
 *   really short tokens instead (the simulator's lifetime_s); its margins scale with expires_in.
 * - fast (speedup 120): the baselines. WeChat's whole clock runs 120× fast: a 7200 s token lives 60 real
 *   seconds (the broker's day tokens), the 5-minute overlap in which a replaced token still works lasts
 *   2.5 s, a day 12 minutes, and the baselines' own timers (120 min TTL, hourly refresh) are divided by the
 *   same factor. Shrinking
 *   only the token lifetime instead would leave the 5-minute overlap longer than a whole token's life,
 *   and the baselines' defining failure (instances revoking each other's tokens) would never show.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { onCleanup } from "./cleanup.mjs";

const SIM_ENTRY = fileURLToPath(new URL("./sim-process.mjs", import.meta.url));
const START_TIMEOUT_MS = 15_000;

/**
 * @typedef {object} SimApp
 * @property {string} appid
 * @property {string} secret
 * @property {number} [lifetime_s]
 * @property {number} [daily_quota]
 */
/** @typedef {{ token: number, stable_token: number, stable_token_force: number, getcallbackip: number, getticket?: number }} CallCounts */

/**
 * @typedef {object} World
 * @property {string} name
 * @property {string} url          the simulator, e.g. http://127.0.0.1:40123 (WECHAT_API_BASE)
 * @property {number} speedup      WeChat seconds per real second
 * @property {(apps: SimApp[]) => Promise<void>} registerApps
 * @property {(appid: string) => Promise<CallCounts>} calls   upstream calls so far, failed ones included
 * @property {(token: string) => Promise<number>} check        0 when WeChat accepts the token, else its errcode
 * @property {(appid: string, kind: "classic" | "stable") => Promise<void>} revoke  WeChat refuses the app's tokens from now on
 * @property {() => Promise<void>} close
 */

/**
 * @param {{ name: string, speedup?: number }} options
 * @returns {Promise<World>}
 */
export async function startWorld({ name, speedup = 1 }) {
	const child = fork(SIM_ENTRY, [], { env: { ...process.env, BENCH_SIM_SPEEDUP: String(speedup) }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
	const exited = new Promise((resolve) => child.once("exit", resolve));
	const stop = onCleanup(`simulator (${name})`, async () => {
		if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
		await exited;
	});
	/** @type {string} */
	const url = await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`simulator ${name} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
		child.once("message", (message) => {
			clearTimeout(timer);
			resolve(/** @type {{ url: string }} */ (message).url);
		});
		child.once("exit", (code) => {
			clearTimeout(timer);
			reject(new Error(`simulator ${name} exited (${code}) before it was ready`));
		});
	});

	/** @param {string} path @param {unknown} [body] */
	async function control(path, body) {
		const res = await fetch(`${url}/__sim${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
		const json = /** @type {any} */ (await res.json());
		if (!res.ok) throw new Error(`simulator ${name}: ${path}: ${json.error ?? res.status}`);
		return json;
	}

	return {
		name,
		url,
		speedup,
		async registerApps(apps) {
			// Only the fields the simulator knows: a broker app also carries its mode.
			for (const { appid, secret, lifetime_s, daily_quota } of apps) await control("/apps", { appid, secret, lifetime_s, daily_quota });
		},
		async calls(appid) {
			return (await control(`/stats?appid=${encodeURIComponent(appid)}`)).apps[appid];
		},
		async revoke(appid, kind) {
			// The broker replaces a reported token only once WeChat refuses it (its getcallbackip probe).
			await control(`/apps/${encodeURIComponent(appid)}/revoke`, { kind });
		},
		async check(token) {
			const res = await fetch(`${url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`);
			const body = /** @type {{ errcode?: number }} */ (await res.json());
			return body.errcode ?? 0;
		},
		close: stop,
	};
}
