/**
 * Backoff after failed refreshes, step by step: 2 s, 4 s, 8 s … capped at 60 s for transient failures and
 * at 300 s for fatal and quota ones. Each step moves the clock to 1 s short of the next backoff (no upstream
 * call may happen), then to it (exactly one refresh happens). A refresh is at most 3 upstream attempts.
 */
import { expect, it } from "vitest";
import { appsFor } from "./fixtures";
import { getToken, sim, travel, settle } from "./helpers";

const next = appsFor("backoff");

it("transient failures: 3 attempts per refresh, backoff 2, 4, 8, 16, 32, 60, 60 s, Retry-After the time left", async () => {
	const app = next("stable");
	await sim.fault({ appid: app.appid, kind: "http", status: 503 });
	const first = await getToken(app);
	expect(first.status).toBe(503);
	expect(await sim.tokenCalls(app)).toBe(3);
	expect(first.headers.get("retry-after")).toBe("2");

	let calls = 3;
	for (const backoff of [2, 4, 8, 16, 32, 60, 60]) {
		await travel(backoff - 1);
		const waiting = await getToken(app);
		expect(waiting.status).toBe(503);
		expect(waiting.headers.get("retry-after"), `1 s before the end of a ${backoff} s backoff`).toBe("1");
		expect(await sim.tokenCalls(app), `${backoff - 1} s into a ${backoff} s backoff`).toBe(calls);

		await travel(1);
		const retried = await getToken(app);
		calls += 3;
		expect(await sim.tokenCalls(app), `after a ${backoff} s backoff`).toBe(calls);
		expect(retried.status).toBe(503);
		expect(retried.headers.get("retry-after")).toBe(String(Math.min(backoff * 2, 60)));
	}
});

it.each([
	["fatal", 40125],
	["quota", 45009],
])("%s failures: 1 attempt per refresh, backoff 2, 4 … 256, 300, 300 s", async (_kind, errcode) => {
	const app = next("classic");
	await sim.fault({ appid: app.appid, kind: "errcode", errcode });
	expect((await getToken(app)).status).toBe(502);
	let calls = 1;
	expect(await sim.tokenCalls(app)).toBe(calls);
	for (const backoff of [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]) {
		await travel(backoff - 1);
		expect((await getToken(app)).status).toBe(502);
		expect(await sim.tokenCalls(app), `${backoff - 1} s into a ${backoff} s backoff`).toBe(calls);
		await travel(1);
		expect((await getToken(app)).status).toBe(502);
		calls += 1;
		expect(await sim.tokenCalls(app), `after a ${backoff} s backoff`).toBe(calls);
	}
});

it("a transient failure that lasts 2 attempts is retried to success; one that lasts 3 is not retried a 4th time", async () => {
	const healed = next("classic");
	await sim.fault({ appid: healed.appid, kind: "errcode", errcode: -1, times: 2 });
	expect((await getToken(healed)).status).toBe(200);
	expect(await sim.tokenCalls(healed)).toBe(3);

	const failed = next("classic");
	await sim.fault({ appid: failed.appid, kind: "errcode", errcode: -1, times: 3 });
	expect((await getToken(failed)).status).toBe(502);
	expect(await sim.tokenCalls(failed)).toBe(3);
});

it("backs off a due token's refresh too, while the token keeps serving", async () => {
	const app = next("stable");
	const held = (await getToken(app)).body.access_token as string;
	await travel(7200 - 250); // due, and accepted for 250 s more
	await sim.fault({ appid: app.appid, kind: "http", status: 502 });
	// Each failed refresh is 3 attempts, then a backoff of 2 s, then 4 s: a read inside it starts nothing.
	const reads = [{ at: 0, refreshes: 1 }, { at: 1, refreshes: 1 }, { at: 2, refreshes: 2 }, { at: 5, refreshes: 2 }, { at: 6, refreshes: 3 }];
	let elapsed = 0;
	for (const { at, refreshes } of reads) {
		if (at > elapsed) await travel(at - elapsed);
		elapsed = at;
		expect((await getToken(app)).body.access_token).toBe(held);
		await settle(app); // the refresh the read started in the background
		expect(await sim.tokenCalls(app), `${at} s after the first due read`).toBe(1 + 3 * refreshes);
	}
});
