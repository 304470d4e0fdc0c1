// @ts-check
/**
 * What the scenarios that let alarms refresh by themselves share (scale.mjs, open-platform.mjs): workerd's
 * memory, the Worker's JSON log lines, alarm delays in figures, and how many refreshes a plan calls for.
 */
import { execFileSync } from "node:child_process";
import { AUTH_HEADERS } from "./broker.mjs";
import { percentile, round } from "./stats.mjs";

/** Tokens are refreshed 1/8 of their lifetime ahead (src/core/lifetime.ts; a stable one at most 270 s, which bench lifetimes never reach). */
export const REFRESH_AT = 7 / 8;
/** An alarm that ran more than this after its planned moment counts as late. */
export const LATE_MS = 1_000;
/** Cloudflare's `* * * * *`. */
export const CRON_INTERVAL_MS = 60_000;
/** Readers of the traffic phase, each pausing between reads like a real caller. */
const READERS = 8;
const READER_PAUSE_MS = 20;

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sum of the resident memory of every workerd process under this one (Miniflare's runtime), in MiB. */
export function workerdRssMiB() {
	try {
		const out = execFileSync("ps", ["-eo", "pid,ppid,rss,comm"], { encoding: "utf8" });
		const rows = out.trim().split("\n").slice(1).map((line) => line.trim().split(/\s+/)).map(([pid, ppid, rss, comm]) => ({ pid: Number(pid), ppid: Number(ppid), rss: Number(rss), comm }));
		const mine = new Set([process.pid]);
		let grew = true;
		while (grew) {
			grew = false;
			for (const row of rows) if (!mine.has(row.pid) && mine.has(row.ppid)) { mine.add(row.pid); grew = true; }
		}
		return round(rows.filter((r) => mine.has(r.pid) && (r.comm ?? "").includes("workerd")).reduce((sum, r) => sum + r.rss, 0) / 1024, 0);
	} catch {
		return null;
	}
}

/**
 * The JSON entry of a Worker log line (`… {"level":…,"event":…}`), or null for any other line.
 * @param {string} line
 * @returns {Record<string, any> | null}
 */
export function logEntry(line) {
	const start = line.indexOf("{");
	if (start < 0) return null;
	try {
		const entry = JSON.parse(line.slice(start));
		return typeof entry === "object" && entry !== null ? entry : null;
	} catch {
		return null;
	}
}

/**
 * How late alarms ran, in ms after their planned moment.
 * @param {number[]} delays
 */
export function alarmFigures(delays) {
	return {
		count: delays.length,
		late: delays.filter((d) => d > LATE_MS).length,
		late_threshold_ms: LATE_MS,
		delay_p50_ms: delays.length ? round(percentile(delays, 50), 0) : null,
		delay_p99_ms: delays.length ? round(percentile(delays, 99), 0) : null,
		delay_max_ms: delays.length ? delays.reduce((a, b) => Math.max(a, b), 0) : null,
	};
}

/**
 * The refreshes a plan calls for by `endedAt`: each credential refreshed every `intervalMs` from its first
 * value (ms, one entry per credential), the first value itself not counted.
 * @param {Iterable<number>} firstAt @param {number} endedAt @param {number} intervalMs
 */
export function plannedRefreshes(firstAt, endedAt, intervalMs) {
	let planned = 0;
	for (const at of firstAt) planned += Math.max(0, Math.floor((endedAt - at) / intervalMs));
	return planned;
}

/**
 * The traffic phase: READERS readers for `seconds`, each reading GET /token of a random app of `appids` and
 * checking the token it got with the platform (`check`: WeChat's getcallbackip by default, WeCom's for corp
 * tokens). Counts reads, 503s, other failures and tokens the platform refused, with the first error.
 * @param {{ brokerUrl: string, world: import("./world.mjs").World, appids: readonly string[], seconds: number, check?: (token: string) => Promise<number> }} options
 */
export async function readTokens({ brokerUrl, world, appids, seconds, check = world.check }) {
	/** @type {string | null} */
	let firstError = null;
	const reads = { total: 0, ok: 0, unavailable_503: 0, other_failures: 0, checked: 0, refused_by_wechat: 0 };
	const ends = Date.now() + seconds * 1000;
	await Promise.all(Array.from({ length: READERS }, async () => {
		while (Date.now() < ends) {
			const appid = /** @type {string} */ (appids[Math.floor(Math.random() * appids.length)]);
			reads.total++;
			try {
				const res = await fetch(`${brokerUrl}/token?appid=${appid}`, { headers: AUTH_HEADERS });
				const body = /** @type {any} */ (await res.json());
				if (res.status === 200) {
					reads.ok++;
					reads.checked++;
					const errcode = await check(body.access_token);
					if (errcode !== 0) {
						reads.refused_by_wechat++;
						firstError ??= `${appid}: token refused with ${errcode} (expires_in ${body.expires_in})`;
					}
				} else if (res.status === 503) {
					reads.unavailable_503++;
					firstError ??= `${appid}: 503 ${body.message}`;
				} else {
					reads.other_failures++;
					firstError ??= `${appid}: HTTP ${res.status} ${body.message}`;
				}
			} catch (error) {
				reads.other_failures++;
				firstError ??= `${appid}: ${error instanceof Error ? error.message : String(error)}`;
			}
			await sleep(READER_PAUSE_MS);
		}
	}));
	return { ...reads, first_error: firstError };
}
