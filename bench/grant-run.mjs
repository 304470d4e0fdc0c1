// @ts-check
/**
 * What the scenarios of grants share (open-platform.mjs: accounts authorising a component; wecom-suite.mjs:
 * companies installing a suite): the Worker's log read for exchanges, alarms, watchdog runs and errcodes, and
 * granting N at once as fast as the broker takes them, most through the platform's push (which waits in the
 * simulator's bounded outbox) and every few through the vendor's redirect page's POST, each code its own and
 * single-use, with a bound on codes consented but not yet exchanged (each exchange wakes an object: one local
 * workerd holds a few thousand databases at once, README "Scale"); then the simulator's counters sampled
 * while alarms refresh, through a phase of readers and a quiet one, the cron firing as Cloudflare's would.
 */
import { CRON_INTERVAL_MS, logEntry, readTokens, sleep, workerdRssMiB } from "./refresh-run.mjs";
import { round } from "./stats.mjs";

/** Every this many-th grant goes through the redirect page's POST; the others by the platform's push. */
export const POST_EVERY = 5;
/** Codes pushed and already exchanged that are POSTed again: the broker must not exchange them twice. */
export const DUPLICATE_POSTS = 20;
/** How often the simulator's counters are sampled (the parent-token calls' moments). */
export const SAMPLE_MS = 1_000;
/** Granted (consented at the simulator) but not yet exchanged by the broker, at most. */
const MAX_PENDING = 200;
/** Redirect-page POSTs in flight. */
const POST_CONCURRENCY = 8;
/** A redirect-page POST refused is tried this many times in all, this far apart. */
const POST_ATTEMPTS = 3;
const POST_RETRY_MS = 1_000;
/** Codes asked for without push in one call. */
const POST_BATCH = 100;
/** Ticket pushes of the parent's schedule that may arrive while grant pushes wait in the outbox. */
const OUTBOX_MARGIN = 5;
/** A push batch smaller than this waits for more room (unless it is the last). */
const MIN_PUSH_BATCH = 10;
/** Granting stops with an error when nothing is exchanged for this long. */
const STALL_MS = 60_000;
const PROGRESS_MS = 15_000;

/**
 * @typedef {object} GrantLog
 * @property {(line: string) => void} onLine  for startBroker
 * @property {Map<string, number>} firstTokenAt  grant key (see keyOf) → ms its exchange was logged
 * @property {Map<string, string>} appidOf  grant key → the appid the broker made of it
 * @property {{ at: number, delay: number, parent: boolean }[]} alarms  parent: the component's or suite's own
 * @property {{ at: number, subrequests: number }[]} watchdogRuns
 * @property {number} noProgress  alarms that rang and left their credential still due (alarm-chain.ts retries
 *   them 5 s later): e.g. a grant's refresh that found its parent's token in its last second
 * @property {Map<number, number>} errcodes  non-zero errcodes anywhere in a line, counted
 */

/**
 * @param {{ exchangedEvent: string, keyOf: (entry: Record<string, any>) => string }} options  the log event of an
 *   exchange (authorization_code_exchanged, install_code_exchanged) and the grant it names
 * @returns {GrantLog}
 */
export function watchGrantLog({ exchangedEvent, keyOf }) {
	/** @type {GrantLog} */
	const log = { firstTokenAt: new Map(), appidOf: new Map(), alarms: [], watchdogRuns: [], noProgress: 0, errcodes: new Map(), onLine };
	const wanted = [`"event":"alarm_rang"`, `"event":"watchdog_run"`, `"event":"alarm_no_progress"`, `"event":"${exchangedEvent}"`];
	/** @param {string} line */
	function onLine(line) {
		for (const match of line.matchAll(/"errcode":(\d+)/g)) {
			const code = Number(match[1]);
			if (code !== 0) log.errcodes.set(code, (log.errcodes.get(code) ?? 0) + 1);
		}
		if (!wanted.some((w) => line.includes(w))) return;
		const entry = logEntry(line);
		if (!entry) return;
		// A parent's object is named `component:<id>` or `suite:<id>`; no app's appid holds a colon.
		if (entry.event === "alarm_rang" && typeof entry.delay_ms === "number") log.alarms.push({ at: Date.now(), delay: entry.delay_ms, parent: String(entry.appid).includes(":") });
		if (entry.event === "alarm_no_progress") log.noProgress++;
		if (entry.event === "watchdog_run") log.watchdogRuns.push({ at: Date.now(), subrequests: entry.subrequests });
		if (entry.event === exchangedEvent && !log.firstTokenAt.has(keyOf(entry))) {
			log.firstTokenAt.set(keyOf(entry), Date.now());
			log.appidOf.set(keyOf(entry), String(entry.appid ?? keyOf(entry)));
		}
	}
	return log;
}

/**
 * @typedef {object} GrantChannels
 * @property {(keys: string[], push: boolean) => Promise<{ key: string, code: string }[]>} grantMany  the
 *   simulator's bulk control (authorize-many, install-many): one fresh code per key, pushed when `push`
 * @property {() => Promise<number>} outboxRoom  pushes the simulator's outbox takes before it drops one
 * @property {(grant: { key: string, code: string }) => Promise<string | null>} post  the redirect page's POST of
 *   one code; null when the broker answered with the grant, else what went wrong
 */

/**
 * Grants every key: every `postEvery`-th through `post`, the others by push. Ends when the broker logged an
 * exchange of each; throws when none is logged for STALL_MS.
 * @param {{ label: string, keys: readonly string[], postEvery: number, log: GrantLog, channels: GrantChannels, logFile: string, step: (message: string) => void }} options
 */
export async function grantAll({ label, keys, postEvery, log, channels, logFile, step }) {
	const byPost = keys.filter((_, i) => i % postEvery === postEvery - 1);
	const byPush = keys.filter((_, i) => i % postEvery !== postEvery - 1);
	/** Codes of pushed grants, some POSTed again once exchanged (repostCodes). */
	const pushedCodes = new Map();
	/** failed: refused answers, each retry counted. */
	const posts = { ok: 0, failed: 0, first_error: /** @type {string | null} */ (null) };
	let consented = 0;
	const started = performance.now();
	let last = { at: Date.now(), exchanged: 0 };
	const exchanged = () => log.firstTokenAt.size;
	const stalled = (/** @type {string} */ what) => {
		if (exchanged() !== last.exchanged) last = { at: Date.now(), exchanged: exchanged() };
		if (Date.now() - last.at > STALL_MS) throw new Error(`${label}: ${what} for ${STALL_MS / 1000} s (${exchanged()} of ${consented} consented exchanged; ${posts.failed} POSTs failed, first: ${posts.first_error}); see ${logFile}`);
	};
	const progress = setInterval(() => step(`${label}: ${exchanged()} of ${keys.length} exchanged (${round(exchanged() / ((performance.now() - started) / 1000), 1)}/s)`), PROGRESS_MS);
	const waitForRoom = async (/** @type {number} */ wanted) => {
		while (consented - exchanged() + wanted > MAX_PENDING) {
			stalled("nothing exchanged");
			await sleep(20);
		}
	};
	const pushLane = async () => {
		for (let i = 0; i < byPush.length;) {
			const room = Math.min(await channels.outboxRoom() - OUTBOX_MARGIN, byPush.length - i, MAX_PENDING / 2);
			if (room < Math.min(MIN_PUSH_BATCH, byPush.length - i)) {
				// An outbox that never drains (pushes the simulator cannot deliver) is a stall too.
				stalled("the simulator's outbox did not drain");
				await sleep(20);
				continue;
			}
			await waitForRoom(room);
			const batch = byPush.slice(i, i + room);
			consented += batch.length;
			for (const g of await channels.grantMany(batch, true)) pushedCodes.set(g.key, g.code);
			i += batch.length;
		}
	};
	const postLane = async () => {
		for (let i = 0; i < byPost.length; i += POST_BATCH) {
			const batch = byPost.slice(i, i + POST_BATCH);
			await waitForRoom(batch.length);
			consented += batch.length;
			const grants = await channels.grantMany(batch, false);
			for (let j = 0; j < grants.length; j += POST_CONCURRENCY) {
				await Promise.all(grants.slice(j, j + POST_CONCURRENCY).map(async (g) => {
					// A refused POST is tried again, as a vendor's page would after its error: the code stays
					// unused when the exchange failed upstream (e.g. 42009 on a suite token expiring in flight).
					for (let attempt = 1; ; attempt++) {
						const error = await channels.post(g).catch((e) => `fetch: ${e instanceof Error ? e.message : String(e)}`);
						if (error === null) return void posts.ok++;
						posts.failed++;
						posts.first_error ??= `${g.key}: ${error}`;
						if (attempt === POST_ATTEMPTS) return;
						await sleep(POST_RETRY_MS);
					}
				}));
			}
		}
	};
	try {
		await Promise.all([pushLane(), postLane()]);
		while (exchanged() < keys.length) {
			stalled(`${keys.length - exchanged()} never exchanged`);
			await sleep(50);
		}
	} finally {
		clearInterval(progress);
	}
	return { seconds: (performance.now() - started) / 1000, byPush: byPush.length, byPost: byPost.length, posts, pushedCodes };
}

/**
 * The first `count` pushed codes POSTed again, once exchanged: each must be answered from its first exchange
 * (the caller counts the platform's exchange calls around this, which must not move).
 * @param {Map<string, string>} pushedCodes @param {number} count @param {GrantChannels["post"]} post
 */
export async function repostCodes(pushedCodes, count, post) {
	const again = { sent: 0, ok: 0 };
	for (const [key, code] of [...pushedCodes].slice(0, count)) {
		again.sent++;
		if (await post({ key, code }) === null) again.ok++;
	}
	return again;
}

/**
 * The simulator's counters, read now and every `everyMs` until stopped, each reading kept with its moment.
 * @template T
 * @param {() => Promise<T>} read @param {number} everyMs
 */
export function counterSampler(read, everyMs) {
	/** @type {{ at: number, stats: T }[]} */
	const samples = [];
	const sampleNow = async () => {
		const stats = await read();
		samples.push({ at: Date.now(), stats });
		return stats;
	};
	const timer = setInterval(() => void sampleNow().catch(() => {}), everyMs);
	return { samples, sampleNow, stop: () => clearInterval(timer) };
}

/**
 * Once every grant holds a token: `trafficS` of readers (readTokens, each token checked with `check`), then
 * `quietS` with alarms and the watchdog only, the cron firing every minute throughout.
 * @template T
 * @param {{ label: string, broker: { url: string, fireCron: () => Promise<unknown> }, world: import("./world.mjs").World, appids: readonly string[], check?: (token: string) => Promise<number>, trafficS: number, quietS: number, sampleNow: () => Promise<T>, step: (message: string) => void }} options
 */
export async function refreshPhases({ label, broker, world, appids, check, trafficS, quietS, sampleNow, step }) {
	const startedAt = Date.now();
	const cron = setInterval(() => void broker.fireCron().catch(() => {}), CRON_INTERVAL_MS);
	try {
		step(`${label}: ${trafficS} s of readers sampling tokens, alarms refreshing…`);
		const reads = await readTokens({ brokerUrl: broker.url, world, appids, seconds: trafficS, ...(check && { check }) });
		const memoryBusy = workerdRssMiB();
		step(`${label}: ${quietS} s with no client traffic (alarms and the watchdog only)…`);
		const quietBefore = await sampleNow();
		const quietStartedAt = Date.now();
		await sleep(quietS * 1000);
		const quietAfter = await sampleNow();
		return { reads, memoryBusy, startedAt, quietStartedAt, quietBefore, quietAfter, endedAt: Date.now() };
	} finally {
		clearInterval(cron);
	}
}

/**
 * A client of one part of the simulator's control API (`/__sim/open/components`, `/__sim/wecom/suites`): GET
 * without a body, POST with one; an answer other than 2xx throws with the simulator's error.
 * @param {string} base  e.g. `${world.url}/__sim/wecom/suites`
 */
export function simControl(base) {
	/** @param {string} path @param {unknown} [body] @returns {Promise<any>} */
	return async (path, body) => {
		const res = await fetch(`${base}${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
		const json = /** @type {any} */ (await res.json());
		if (!res.ok) throw new Error(`simulator: ${path}: ${json.error ?? res.status}`);
		return json;
	};
}

/**
 * Room left in a simulator outbox of `max` pushes, from its counters (made, less those dropped, delivered or failed).
 * @param {number} max @param {{ made: number, dropped: number, delivered: number, failed: number }} p
 */
export function outboxRoom(max, p) {
	return max - (p.made - p.dropped - p.delivered - p.failed);
}
