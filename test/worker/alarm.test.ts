/**
 * One alarm per object (src/authority/alarm-chain.ts): each app's object keeps its Durable Object alarm armed
 * for its next due moment and refreshes from it. Alarms are delivered here the way workerd would
 * (runDurableObjectAlarm once their moment has come on the broker's clock: helpers.ts), never by waiting.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { authority } from "../../src/authority/stub";
import { scheduleIndex } from "../../src/schedule/client";
import { ScheduleIndex } from "../../src/schedule/schedule-index";
import { appsFor, type TestApp } from "./fixtures";
import { armedAt, getToken, interceptUpstream, never, nextAlarm, sim, statusOf, travel } from "./helpers";

const next = appsFor("alarm");

async function plannedRefresh(app: TestApp): Promise<number> {
	return Date.parse((await statusOf(app)).next_refresh as string);
}

/** The app's row in the schedule index, as /status and the watchdog read it. */
async function indexRow(app: TestApp) {
	await authority(env, app.appid).idle();
	const page = await scheduleIndex(env).page({ now: Date.now(), marginMs: 60_000, configured: [app.appid], scope: [app.appid], limit: 1, after: null });
	return page.entries[0]?.row ?? null;
}

describe.each(["stable", "classic"] as const)("%s mode", (mode) => {
	it("a fresh app arms its alarm at its token's planned refresh, and its index row says so", async () => {
		const app = next(mode);
		expect((await getToken(app)).status).toBe(200);
		const planned = await plannedRefresh(app);
		expect(planned).toBeGreaterThan(Date.now());
		expect(await armedAt(app)).toBe(planned);
		expect(await indexRow(app)).toMatchObject({ appid: app.appid, source: "secret", dueAt: planned, fetched: true, incident: null });
	});

	it("the alarm refreshes the due token and arms the next refresh", async () => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await nextAlarm(app);
		expect(await sim.tokenCalls(app)).toBe(2);
		const second = (await getToken(app)).body.access_token as string;
		expect(second).not.toBe(first);
		expect(await sim.check(second)).toBe(0);
		const planned = await plannedRefresh(app);
		expect(planned).toBeGreaterThan(Date.now());
		expect(await armedAt(app)).toBe(planned);
		expect((await indexRow(app))?.dueAt).toBe(planned);
	});
});

it("an alarm delivered early or twice costs no upstream call and keeps the same moment armed", async () => {
	const app = next("stable");
	await getToken(app);
	const planned = await armedAt(app);
	const stub = authority(env, app.appid);
	expect(await runDurableObjectAlarm(stub)).toBe(true); // early: nothing is due
	expect(await armedAt(app)).toBe(planned);
	expect(await runDurableObjectAlarm(stub)).toBe(true); // again
	expect(await sim.tokenCalls(app)).toBe(1);
	expect(await armedAt(app)).toBe(planned);

	await nextAlarm(app); // at its moment: one refresh
	const after = await armedAt(app);
	expect(await runDurableObjectAlarm(stub)).toBe(true); // delivered twice (at least once)
	expect(await sim.tokenCalls(app)).toBe(2);
	expect(await armedAt(app)).toBe(after);
});

it("an alarm that comes late refreshes once, and the token served meanwhile was still accepted", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	const planned = (await armedAt(app))!;
	await travel((planned - Date.now()) / 1_000 + 240); // 4 minutes late: a classic token is promised 300 s past its planned refresh
	expect(await sim.check(first)).toBe(0);
	const stub = authority(env, app.appid);
	await runDurableObjectAlarm(stub);
	await runDurableObjectAlarm(stub);
	expect(await sim.tokenCalls(app)).toBe(2);
});

it("a failing refresh re-arms the alarm at the end of its backoff", async () => {
	const app = next("stable");
	await getToken(app);
	await sim.fault({ appid: app.appid, endpoint: "stable_token", kind: "errcode", errcode: -1 }); // "system busy", until cleared
	await nextAlarm(app);
	const status = await statusOf(app);
	expect(status.consecutive_failures).toBe(1);
	expect(await armedAt(app)).toBe(Date.now() + 2_000); // the first backoff (engine/backoff.ts)
	await nextAlarm(app);
	expect((await statusOf(app)).consecutive_failures).toBe(2);
	expect(await armedAt(app)).toBe(Date.now() + 4_000);
	await sim.clearFaults();
	await nextAlarm(app);
	expect((await statusOf(app)).consecutive_failures).toBe(0);
	expect(await armedAt(app)).toBe(await plannedRefresh(app));
});

it("a restart keeps the alarm, and the restarted object refreshes from it", async () => {
	const app = next("stable");
	await getToken(app);
	const planned = await armedAt(app);
	await abortAllDurableObjects();
	expect(await armedAt(app)).toBe(planned);
	await nextAlarm(app);
	expect(await sim.tokenCalls(app)).toBe(2);
});

it("an instance that dies during the alarm's upstream call arms its successor's alarm for now", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	await travel(((await armedAt(app))! - Date.now()) / 1_000);
	const restore = interceptUpstream((url) => (url.pathname === "/cgi-bin/token" ? never() : undefined));
	const ringing = runDurableObjectAlarm(authority(env, app.appid)).catch(() => null); // the platform took the alarm
	await vi.waitFor(async () => expect(await sim.tokenCalls(app)).toBe(1)); // the marker is written before the call
	await runInDurableObject(authority(env, app.appid), (_o, state) => state.storage.get("state")); // the call is out
	await abortAllDurableObjects();
	void ringing;
	restore();
	expect(await armedAt(app)).toBeLessThanOrEqual(Date.now()); // the successor recovered the marker and armed for now
	await nextAlarm(app);
	const second = (await getToken(app)).body.access_token as string;
	expect(second).not.toBe(first);
	expect(await sim.check(second)).toBe(0);
});

it("a throw in the alarm's own work re-arms it 5 s later instead of ending the chain", async () => {
	const app = next("stable");
	await getToken(app);
	await runInDurableObject(authority(env, app.appid), (instance) => {
		(instance as unknown as { refreshIfDue: () => Promise<never> }).refreshIfDue = () => Promise.reject(new Error("storage hiccup"));
	});
	expect(await runDurableObjectAlarm(authority(env, app.appid))).toBe(true);
	expect(await armedAt(app)).toBe(Date.now() + 5_000);
});

it("an app no longer configured disarms and leaves the index when its alarm fires", async () => {
	const app = next("stable");
	await getToken(app);
	expect(await indexRow(app)).not.toBeNull();
	const without = JSON.parse(env.WECHAT_APPS!).filter((a: { appid: string }) => a.appid !== app.appid);
	await runInDurableObject(authority(env, app.appid), (instance) => {
		(instance as unknown as { env: typeof env }).env = { ...env, WECHAT_APPS: JSON.stringify(without) };
	});
	expect(await runDurableObjectAlarm(authority(env, app.appid))).toBe(true);
	expect(await armedAt(app)).toBeNull();
	expect(await indexRow(app)).toBeNull();
	expect(await sim.tokenCalls(app)).toBe(1);
});

it("a refresh writes the alarm once and the index row once; a read that changes nothing writes neither", async () => {
	const app = next("classic");
	await getToken(app);
	const stub = authority(env, app.appid);
	await stub.idle();
	const puts = vi.spyOn(ScheduleIndex.prototype, "put");
	const setAlarms = await runInDurableObject(stub, (_o, state) => vi.spyOn(state.storage, "setAlarm"));
	await getToken(app); // served, nothing changes
	await stub.idle();
	expect({ setAlarm: setAlarms.mock.calls.length, upserts: puts.mock.calls.length }).toEqual({ setAlarm: 0, upserts: 0 });
	await nextAlarm(app); // one refresh
	await stub.idle();
	expect({ setAlarm: setAlarms.mock.calls.length, upserts: puts.mock.calls.length }).toEqual({ setAlarm: 1, upserts: 1 });
	expect(puts.mock.results.map((r) => r.value)).toEqual([2]); // SQLite's count: the row and its apps_due entry
});
