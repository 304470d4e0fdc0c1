/**
 * The promises `expires_in` makes, under the failures an adversarial review found (issue 7): lost answers,
 * retries that fail differently, restarts mid-call, forced flights that fail, and readers that must never
 * wait for WeChat while a valid token exists.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { authority } from "../../src/authority/stub";
import { edgeKey, STATE_KEY } from "../../src/core/storage-keys";
import { appsFor } from "./fixtures";
import { call, deferred, forceRefresh, getToken, interceptUpstream, isForce, lostAnswer, runCron, sim, statusOf, travel, wechatAnswer } from "./helpers";

const next = appsFor("promise");

describe("classic: a refresh whose first attempt went unanswered and whose retries failed otherwise", () => {
	it("promises the current token no longer than 300 s from that call, and makes it due at once", async () => {
		const app = next("classic");
		const first = (await getToken(app)).body.access_token as string;
		let attempt = 0;
		const restore = interceptUpstream((url, init, real) => {
			if (url.pathname !== "/cgi-bin/token") return undefined;
			attempt++;
			// Attempt 1 reaches WeChat, which mints a token, but its answer is lost; 2 and 3 get -1.
			if (attempt === 1) return real(url, init).then(() => lostAnswer());
			return wechatAnswer({ errcode: -1, errmsg: "system error" });
		});
		expect((await forceRefresh(app.appid)).status).toBe(502); // the last answer: WeChat's -1
		restore();
		expect(attempt).toBe(3);

		const read = await getToken(app);
		expect(read.body.access_token).toBe(first);
		expect(read.body.expires_in).toBeLessThanOrEqual(300);
		// The capped token is due at once: /status says so, and the cron replaces it with no client traffic.
		expect(Date.parse((await statusOf(app)).next_refresh)).toBeLessThanOrEqual(Date.now() + 2_000);
		// WeChat did revoke it 300 s after the lost call: the broker's promise held.
		await travel(301);
		expect(await sim.check(first)).toBe(40001);

		await runCron([app]);
		const replaced = (await getToken(app)).body.access_token as string;
		expect(replaced).not.toBe(first);
		expect(await sim.check(replaced)).toBe(0);
	});
});

describe("stable: a force_refresh WeChat received whose answer was lost", () => {
	it("learns WeChat's live token with a normal call instead of promising the revoked one", async () => {
		const app = next("stable");
		const first = (await getToken(app)).body.access_token as string;
		const restore = interceptUpstream((url, init, real) => (isForce(url, init) ? real(url, init).then(() => lostAnswer()) : undefined));
		const res = await forceRefresh(app.appid);
		restore();
		expect(await sim.check(first)).toBe(40001); // the force took effect at WeChat

		const read = await getToken(app);
		expect(read.status).toBe(200);
		expect(read.body.access_token).not.toBe(first);
		expect(await sim.check(read.body.access_token as string)).toBe(0);
		if (res.status === 200) expect(res.body.access_token).toBe(read.body.access_token);
	});
});

describe("stable: the forced-refresh spacing counts from when the force is sent", () => {
	it("refuses a second force until 30 s after the first one reached WeChat", async () => {
		const app = next("stable");
		const first = (await getToken(app)).body.access_token as string;
		// WeChat refuses the token, yet stable_token still returns it: the object must force.
		await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "errcode", errcode: 40001, times: 1 });
		const restore = interceptUpstream((url, init) => {
			// The normal call takes 20 s (a slow WeChat), so the force goes out 20 s after the report.
			if (url.pathname === "/cgi-bin/stable_token" && !isForce(url, init)) travelNow(20);
			return undefined;
		});
		const replaced = await call("/token/invalidate", { method: "POST", body: { appid: app.appid, access_token: first } });
		restore();
		expect(replaced.status).toBe(200);
		expect(replaced.body.access_token).not.toBe(first);
		expect((await sim.calls(app)).stable_token_force).toBe(1);

		await travel(15); // 35 s after the report, 15 s after the force
		const again = await forceRefresh(app.appid);
		expect(again.status).toBe(429);
		expect(Number(again.headers.get("retry-after"))).toBe(15);
	});

	it("does not count a force when the normal call already found a new token", async () => {
		const app = next("stable");
		const first = (await getToken(app)).body.access_token as string;
		await sim.rotate(app); // another server forced: WeChat refuses `first`, stable_token returns the new one
		const healed = await call("/token/invalidate", { method: "POST", body: { appid: app.appid, access_token: first } });
		expect(healed.status).toBe(200);
		expect((await sim.calls(app)).stable_token_force).toBe(0);
		// No force was sent, so an admin may force at once.
		expect((await forceRefresh(app.appid)).status).toBe(200);
	});
});

/** Moves only the broker's clock, from inside a flight (the simulator keeps its own). */
function travelNow(seconds: number): void {
	vi.setSystemTime(Date.now() + seconds * 1_000);
}

describe("a restart in the middle of an upstream call", () => {
	it("classic: the next instance applies the lost-answer cap to what the dead one left", async () => {
		const app = next("classic");
		const first = (await getToken(app)).body.access_token as string;
		const stub = authority(env, app.appid);
		// What an instance that died while asking WeChat leaves in storage: the call counted, and its marker.
		const startedAt = Date.now();
		await runInDurableObject(stub, async (_o, state) => {
			const stored = (await state.storage.get<Record<string, any>>(STATE_KEY))!;
			const usage = { ...stored.usage, calls: { ...stored.usage.calls, token: stored.usage.calls.token + 1 } };
			const token = { ...stored.slots.token, inFlight: { call: "token", force: false, startedAt } };
			await state.storage.put(STATE_KEY, { ...stored, usage, slots: { ...stored.slots, token } });
		});
		await abortAllDurableObjects();

		await env.TOKEN_CACHE.delete(edgeKey(app.appid));
		await travel(10);
		const read = await getToken(app);
		expect(read.body.access_token).toBe(first);
		expect(read.body.expires_in).toBeLessThanOrEqual(290);
		// The dead instance's call, then the refresh its capped (so due) token starts in the background.
		expect((await statusOf(app)).calls_today.token).toBe(3);
		const stored = await runInDurableObject(authority(env, app.appid), (_o, state) => state.storage.get<Record<string, any>>(STATE_KEY));
		expect(stored?.slots.token.inFlight).toBeNull();
	});
});

describe("a read that waited for a forced refresh that failed", () => {
	it("never answers a token that expired while it waited", async () => {
		const app = next("stable");
		await getToken(app);
		await travel(7200 - 320); // not yet due (stable refreshes 270 s ahead), 320 s left
		const sent = deferred();
		await sim.fault({ appid: app.appid, endpoint: "stable_token", kind: "hang", times: 1 });
		let attempt = 0;
		interceptUpstream((url) => {
			if (url.pathname !== "/cgi-bin/stable_token") return undefined;
			attempt++;
			// Attempt 1 hangs at the simulator until the broker's timeout (300 ms) gives up on it; the read
			// joins the flight meanwhile. The token expires while the retries run, and they fail.
			if (attempt === 1) {
				sent.resolve();
				return undefined;
			}
			if (attempt === 2) vi.setSystemTime(Date.now() + 400_000);
			return wechatAnswer({ errcode: -1, errmsg: "system error" });
		});
		const forcing = forceRefresh(app.appid);
		await sent.promise;
		const reading = authority(env, app.appid).getToken(app.appid); // joins the forced flight
		const [forced, read] = await Promise.all([forcing, reading]);
		expect(forced.status).toBe(503); // the force went unanswered, and so did the normal calls after it
		expect(read.ok).toBe(false);
	});
});

describe.each(["stable", "classic"] as const)("%s: a due token that is still accepted", (mode) => {
	it("is answered at once while the refresh runs in the background", async () => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await travel(7200 - 250); // due in both modes, accepted for 250 s more
		await sim.fault({ appid: app.appid, kind: "hang", times: 1 });
		await env.TOKEN_CACHE.delete(edgeKey(app.appid));
		const read = await getToken(app); // would not return while the refresh hangs if it waited for it
		expect(read.status).toBe(200);
		expect(read.body.access_token).toBe(first);
		expect(read.body.expires_in).toBeGreaterThan(0);
		// Released: the hung attempt gets -1, the retry succeeds, and the cron joins that same flight.
		await sim.clearFaults();
		await runCron([app]);
		const after = await getToken(app);
		expect(after.body.access_token).not.toBe(first);
		expect(await sim.tokenCalls(app)).toBe(3); // the first read, the hung attempt, its retry
	});
});

describe("an upstream call under way", () => {
	it("has its marker in storage while it is out: what a successor acts on if this instance dies", async () => {
		const app = next("classic");
		await getToken(app);
		await travel(7_200 + 60); // expired: the next read asks WeChat
		const sent = deferred();
		const release = deferred();
		const restore = interceptUpstream((url, init, real) => {
			if (!url.pathname.endsWith("/cgi-bin/token")) return undefined;
			sent.resolve();
			return release.promise.then(() => real(url.toString(), init));
		});
		const read = getToken(app);
		try {
			await sent.promise;
			const stored = await runInDurableObject(authority(env, app.appid), (_o, state) => state.storage.get<Record<string, any>>(STATE_KEY));
			expect(stored?.slots.token.inFlight).toMatchObject({ call: "token", force: false });
		} finally {
			restore();
			release.resolve();
		}
		expect((await read).status).toBe(200);
	});
});
