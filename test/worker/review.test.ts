/**
 * Findings of an adversarial review of the refresh engine, each reproduced before it was fixed; and (I) what
 * a read that reaches the object gets while it runs a stable force, where the in-flight marker alone falls short.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { edgeKey } from "../../src/core/storage-keys";
import { nextQuotaReset } from "../../src/core/usage";
import { appsFor } from "./fixtures";
import { deferred, forceRefresh, heldAnswer, getToken, interceptUpstream, invalidate, isForce, lostAnswer, readInObject, settle, sim, statusOf, travel } from "./helpers";

const next = appsFor("review");

describe("A classic: a read during an in-flight refresh", () => {
	it("is promised no longer than mint + 300 s", async () => {
		const app = next("classic");
		const first = (await getToken(app)).body.access_token as string;
		await travel(7200 - 850); // due (900 s ahead), still accepted
		await env.TOKEN_CACHE.delete(edgeKey(app.appid));
		const sent = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) =>
			url.pathname === "/cgi-bin/token" ? heldAnswer(real, url, init, sent.resolve, release.promise) : undefined);
		expect((await getToken(app)).body.access_token).toBe(first); // starts the background refresh
		await sent.promise; // WeChat minted: `first` dies 300 s from now
		await travel(20);
		const r2 = await getToken(app); // served while the flight is under way
		expect(r2.body.access_token).toBe(first);
		const promised = r2.body.expires_in as number;
		release.resolve();
		await settle(app);
		await travel(promised - 2); // still inside what r2 promised
		expect(await sim.check(first), `promised ${promised} s, 20 s after the mint`).toBe(0);
	});
});

describe("D a report the probe cannot judge", () => {
	it.each(["stable", "classic"] as const)("%s: is not believed: a valid token is not revoked", async (mode) => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		// getcallbackip's own daily quota is spent (45009): the probe says nothing about the token.
		await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "errcode", errcode: 45009, times: 1 });
		const res = await invalidate(app, first); // any key scoped to the app can send this
		expect(res.status).toBe(503); // not proof either way: kept, and the client is told to retry
		expect(res.headers.get("retry-after")).toBe("60");
		await travel(mode === "classic" ? 301 : 1);
		expect(await sim.check(first)).toBe(0); // first was valid and was promised ~7200 s
	});
});

describe("E a reader while a valid token exists", () => {
	it("stable: does not wait for an invalidation's normal call + probe (which then refutes the report)", async () => {
		const app = next("stable");
		const first = (await getToken(app)).body.access_token as string;
		await env.TOKEN_CACHE.delete(edgeKey(app.appid)); // a location whose KV has no copy
		const sent = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) =>
			url.pathname === "/cgi-bin/stable_token" ? heldAnswer(real, url, init, sent.resolve, release.promise) : undefined);
		const reporting = invalidate(app, first);
		await sent.promise;
		// Answered while the call is still held: a read that waited would never return (the test times out).
		expect((await getToken(app)).body.access_token).toBe(first);
		release.resolve();
		expect((await reporting).body.access_token).toBe(first); // probe refuted: nothing was revoked
	});
	it("classic: does not wait for an admin refresh (it revokes the old token only 300 s later)", async () => {
		const app = next("classic");
		await getToken(app);
		await env.TOKEN_CACHE.delete(edgeKey(app.appid));
		const sent = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) =>
			url.pathname === "/cgi-bin/token" ? heldAnswer(real, url, init, sent.resolve, release.promise) : undefined);
		const forcing = forceRefresh(app.appid);
		await sent.promise;
		// Answered while the call is still held: a read that waited would never return (the test times out).
		expect((await getToken(app)).status).toBe(200);
		release.resolve();
		expect((await forcing).status).toBe(200);
	});
});

describe("F a client looping on reports of a valid token", () => {
	it("costs a bounded number of probes", async () => {
		const app = next("classic");
		const first = (await getToken(app)).body.access_token as string;
		for (let i = 0; i < 30; i++) {
			expect((await invalidate(app, first)).body.access_token).toBe(first);
			await travel(11);
		}
		// One probe a minute at most: reports from 0 to 319 s are probed at 0, 66, 132, 198 and 264 s.
		expect((await sim.calls(app)).getcallbackip).toBe(5);
	});
});

describe("G stable: reports after the 20 daily forces are spent", () => {
	it("cost one normal call and one probe, then nothing for a minute", async () => {
		const app = next("stable");
		// 20 forces 31 s apart span 620 s, which must fall in one WeChat day (its counts reset at midnight
		// China time): started 5 min before that midnight, the last forces were the next day's and this failed.
		await travel(Math.ceil((nextQuotaReset(Date.now()) - Date.now()) / 1_000) + 1);
		await getToken(app);
		for (let i = 0; i < 20; i++) {
			expect((await forceRefresh(app.appid)).status).toBe(200);
			await travel(31);
		}
		const dead = (await getToken(app)).body.access_token as string;
		await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "errcode", errcode: 40001, times: 10 });
		const before = await sim.calls(app);
		for (let i = 0; i < 10; i++) expect((await invalidate(app, dead)).status).toBe(429); // a client looping on 429
		const after = await sim.calls(app);
		expect({ stable_token: after.stable_token - before.stable_token, getcallbackip: after.getcallbackip - before.getcallbackip })
			.toEqual({ stable_token: 1, getcallbackip: 1 });
	});
});

describe("H stable: a force whose answer was lost", () => {
	it("is not re-sent at once (WeChat ignores forces < 30 s apart) nor counted twice against the 20/day", async () => {
		const app = next("stable");
		await getToken(app);
		let forces = 0;
		interceptUpstream((url, init, real) => {
			if (!isForce(url, init)) return undefined;
			forces++;
			return forces === 1 ? real(url, init).then(() => lostAnswer()) : undefined;
		});
		expect((await forceRefresh(app.appid)).status).toBe(200);
		expect({ sent: forces, counted: (await statusOf(app)).calls_today.stable_token_force }).toEqual({ sent: 1, counted: 1 });
	});
});


// A stable force_refresh revokes the current token the moment WeChat takes it. The in-flight marker (and the
// cap it puts on the current token) exists only from the force's first attempt; the object has taken the force
// before that, so its readers wait from then on (Refresher.force marks the flight revoking).
describe("I stable: a read that reaches the object once it has taken an admin force", () => {
	it("waits for the force even before it is sent, while the edge copy is being retracted", async () => {
		const app = next("stable");
		const first = (await getToken(app)).body.access_token as string;
		// The force's first step retracts the edge copy: a KV write, which takes real time at the edge. Hold it.
		const proto = Object.getPrototypeOf(env.TOKEN_CACHE) as KVNamespace;
		const realPut = proto.put;
		const retracting = deferred();
		const release = deferred();
		vi.spyOn(proto, "put").mockImplementation(function (this: KVNamespace, key: string, value: unknown, opts?: unknown) {
			const put = () => realPut.call(this, key, value as string, opts as KVNamespacePutOptions);
			if (key !== edgeKey(app.appid)) return put();
			retracting.resolve();
			return release.promise.then(put);
		} as typeof realPut);
		// setup.ts restores every spy after the test.
		const forcing = forceRefresh(app.appid);
		await retracting.promise;
		expect((await sim.calls(app)).stable_token_force).toBe(0); // taken by the object, not yet sent to WeChat

		const read = await readInObject(app, release.resolve);
		const forced = await forcing;
		expect(forced.status).toBe(200);
		expect(await sim.check(first)).toBe(40001); // the force revoked the token the object held when the read came in
		expect(read.ok && read.record.value, "the read's token: the force's, not the one it revoked").toBe(forced.body.access_token);
	});

	it("gets the force's token, not a 503, while reads back off from an earlier failure", async () => {
		const app = next("stable");
		const first = (await getToken(app)).body.access_token as string;
		await travel(7200 - 250); // due, still accepted for 250 s
		// The background refresh the next read starts fails: reads back off for 2 s (the clock stands still here).
		await sim.fault({ appid: app.appid, endpoint: "stable_token", kind: "errcode", errcode: 40164, times: 1 });
		expect((await getToken(app)).body.access_token).toBe(first);
		await settle(app);
		const sent = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) => (isForce(url, init) ? heldAnswer(real, url, init, sent.resolve, release.promise) : undefined));
		const forcing = forceRefresh(app.appid);
		await sent.promise; // WeChat has revoked `first`; its answer is held

		const read = await readInObject(app, release.resolve);
		const forced = await forcing;
		expect(forced.status).toBe(200);
		expect(read.ok ? read.record.value : read.failure, "the read's answer: the force's token").toBe(forced.body.access_token);
		expect(await sim.check(forced.body.access_token as string)).toBe(0);
	});
});
