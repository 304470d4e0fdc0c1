// @ts-check
/**
 * The open-platform scenario's burst of ticket pushes (scenarios/open-platform.mjs): how many pushes a
 * second the event URL absorbs, and whether each answer is the one the broker's rule gives.
 */
import { randomInt } from "node:crypto";
import { checkTicketAnswers } from "./open-figures.mjs";
import { sleep } from "./refresh-run.mjs";
import { percentile, round } from "./stats.mjs";

/** Ticket pushes of the burst in flight. */
export const BURST_CONCURRENCY = 32;
/** The burst's CreateTimes: from this long before the kept ticket's up to now. */
const BURST_SPREAD_S = 300;
/** WeChat counts a push answered later than this as failed (OPEN-PLATFORM.md §2). */
const PUSH_BUDGET_MS = 5_000;

/**
 * M ticket pushes at once, each a fresh ticket the simulator issued (so the kept one works), their
 * CreateTimes from BURST_SPREAD_S before the kept ticket's up to now in random order, so that some are older
 * than what is kept (409) and some newer (`success`); the simulator's own schedule paused meanwhile.
 * `sim` calls the simulator's /__sim/open/components control API, `admin` reads GET /admin/components/{id}.
 * @param {{ brokerUrl: string, componentAppid: string, sim: (path: string, body?: unknown) => Promise<any>, admin: () => Promise<any>, size: number }} options
 */
export async function ticketBurst({ brokerUrl, componentAppid: id, sim, admin, size }) {
	await sim(`/${id}/schedule`, { running: false });
	for (let p = (await sim(`/${id}`)).stats.pushes; p.made - p.dropped - p.delivered - p.failed > 0; p = (await sim(`/${id}`)).stats.pushes) await sleep(50);
	const prior = Date.parse((await admin()).verify_ticket.create_time) / 1000;
	const nowS = Math.floor(Date.now() / 1000);
	const createTimes = Array.from({ length: size }, () => randomInt(prior - BURST_SPREAD_S, nowS + 1));
	/** @type {{ query: string, body: string, create_time: number }[]} */
	const pushes = (await sim(`/${id}/tickets`, { create_times_s: createTimes })).pushes;
	/** @type {import("./open-figures.mjs").TicketAnswer[]} */
	const answers = [];
	const started = performance.now();
	let next = 0;
	await Promise.all(Array.from({ length: BURST_CONCURRENCY }, async () => {
		while (next < pushes.length) {
			const push = /** @type {typeof pushes[0]} */ (pushes[next++]);
			const sentAt = performance.now();
			const res = await fetch(`${brokerUrl}/open/${id}/events?${push.query}`, { method: "POST", headers: { "content-type": "text/xml" }, body: push.body });
			const body = await res.text();
			answers.push({ createTime: push.create_time, sentAt, answeredAt: performance.now(), status: res.status, body: res.status === 200 ? body : body.slice(0, 200) });
		}
	}));
	const seconds = (performance.now() - started) / 1000;
	const kept = Date.parse((await admin()).verify_ticket.create_time) / 1000;
	await sim(`/${id}/schedule`, { running: true, next_in_s: 0 });
	const check = checkTicketAnswers(prior, answers);
	const latencies = answers.map((a) => a.answeredAt - a.sentAt);
	return {
		pushes: size, concurrency: BURST_CONCURRENCY, seconds: round(seconds, 2), pushes_per_s: round(size / seconds, 0),
		p50_ms: round(percentile(latencies, 50), 1), p99_ms: round(percentile(latencies, 99), 1),
		over_wechat_budget: latencies.filter((ms) => ms > PUSH_BUDGET_MS).length, wechat_budget_ms: PUSH_BUDGET_MS,
		success: check.accepted, refused_older_409: check.refused_older, wrong_answers: check.wrong, first_wrong: check.first_wrong,
		prior_create_time: prior, newest_create_time: check.newest_create_time, kept_create_time: kept, newest_kept: kept === check.newest_create_time,
	};
}
