/**
 * The cron is a watchdog (src/ops/scheduled.ts): it asks the schedule index who is late and wakes only those,
 * so a run with nothing late calls no app's object, whatever the number of apps. Each test counts the objects
 * the run itself reaches, through a TOKEN_AUTHORITY binding that counts `get`.
 */
import { createExecutionContext, createScheduledController, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import worker from "../../src/index";
import { MAX_WAKES_PER_RUN, WATCHDOG_MARGIN_MS } from "../../src/ops/scheduled";
import { scheduleIndex } from "../../src/schedule/client";
import type { ScheduleIndex } from "../../src/schedule/schedule-index";
import { appsFor, KEYS, type TestApp } from "./fixtures";
import { armedAt, getToken, sim, travel } from "./helpers";

const next = appsFor("watchdog");
/** A stable token's planned refresh: 270 s before its 7200 s expire (core/lifetime.ts). */
const STABLE_DUE_S = 7200 - 270;

/** One cron run with WECHAT_APPS = `apps`; returns the appids whose object the run itself called. */
async function cronRun(apps: readonly { appid: string; secret: string }[]): Promise<string[]> {
	const called: string[] = [];
	const namespace = env.TOKEN_AUTHORITY;
	const counting = new Proxy(namespace, {
		get(target, property) {
			if (property === "idFromName") return (name: string) => {
				called.push(name);
				return target.idFromName(name);
			};
			const value = Reflect.get(target, property);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	const keys = [{ name: "cron-test", key: KEYS.admin, apps: ["*"], admin: true }];
	const scoped = { ...env, TOKEN_AUTHORITY: counting, WECHAT_APPS: JSON.stringify(apps), API_KEYS: JSON.stringify(keys) };
	const ctx = createExecutionContext();
	worker.scheduled(createScheduledController({ cron: "* * * * *", scheduledTime: Date.now() }), scoped, ctx);
	await waitOnExecutionContext(ctx);
	return called;
}

it("a run over 1,000 apps whose alarms are armed, none late, calls no app's object", async () => {
	const now = Date.now();
	const apps = Array.from({ length: 1_000 }, (_, i) => ({ appid: `wxwatchfresh${String(i).padStart(4, "0")}`, secret: `sec-fresh-${i}` }));
	// The rows their objects would have sent, written inside the index (one RPC each would only be slower).
	await runInDurableObject(scheduleIndex(env), (index: ScheduleIndex) => {
		for (const [i, app] of apps.entries()) {
			index.put({ appid: app.appid, source: "secret", dueAt: now + 60_000 + i * 1_000, servingUntil: now + 7_000_000, fetched: true, lastRefreshAt: now, incident: null, memberOf: null });
		}
	});
	expect(await cronRun(apps)).toEqual([]);
});

it("wakes exactly the apps whose alarm is overdue by more than the margin, once", async () => {
	const late = next("stable");
	await getToken(late);
	await travel(31);
	const withinMargin = next("stable"); // due 31 s after `late`
	await getToken(withinMargin);
	await travel(1_000);
	const fresh = [next("stable"), next("classic")];
	for (const app of fresh) await getToken(app);
	// `late` is now WATCHDOG_MARGIN_MS + 1 s overdue; `withinMargin` 30 s; `fresh` are not due.
	await travel(STABLE_DUE_S - 1_031 + WATCHDOG_MARGIN_MS / 1_000 + 1);
	const apps = [late, withinMargin, ...fresh];
	expect(await cronRun(apps)).toEqual([late.appid]);
	expect(await sim.tokenCalls(late)).toBe(2);
	expect(await Promise.all([withinMargin, ...fresh].map((app) => sim.tokenCalls(app)))).toEqual([1, 1, 1]);
	expect(await armedAt(late)).toBeGreaterThan(Date.now()); // its chain is armed again
	expect(await cronRun(apps)).toEqual([]); // and its row says so
});

it(`starts the chain of WECHAT_APPS apps that have none, at most ${MAX_WAKES_PER_RUN} a run`, async () => {
	// With the index's call, a run stays inside the Free plan's 50 subrequests per invocation.
	expect(1 + MAX_WAKES_PER_RUN).toBeLessThanOrEqual(50);
	const apps: TestApp[] = [];
	for (let i = 0; i < 45; i++) apps.push(next(i % 2 === 0 ? "stable" : "classic"));
	const first = await cronRun(apps);
	expect(first).toHaveLength(MAX_WAKES_PER_RUN);
	const second = await cronRun(apps);
	expect(second.sort()).toEqual(apps.map((a) => a.appid).filter((id) => !first.includes(id)).sort());
	expect(await cronRun(apps)).toEqual([]);
	for (const app of apps) {
		expect(await armedAt(app), app.appid).toBeGreaterThan(Date.now());
		// Its first token asked for with no client traffic (40 at once may time out on a loaded machine: then
		// its alarm is armed at the backoff's end, which the line above checks all the same).
		expect(await sim.tokenCalls(app), app.appid).toBeGreaterThanOrEqual(1);
	}
});
