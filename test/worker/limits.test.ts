/**
 * The limits around forced refreshes and the request boundary: the 20-a-day stable force limit on the
 * invalidation path, exact Retry-After values, a read that waits for a forced refresh in flight, the
 * forced-refresh limit surviving a restart in the middle of the call, the token length limit, and a
 * /healthz that touches nothing.
 */
import { abortAllDurableObjects, createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { authority } from "../../src/authority/stub";
import { edgeKey } from "../../src/core/storage-keys";
import worker from "../../src/index";
import { appsFor, KEYS, type TestApp } from "./fixtures";
import { call, getToken, invalidate, sim, simUrl, travel } from "./helpers";

const next = appsFor("limits");

afterEach(() => {
	vi.restoreAllMocks();
});

/** Seconds until the next 00:00 in China (UTC+8), when WeChat's daily quotas reset. */
function secondsToChinaMidnight(now = Date.now()): number {
	const chinaMs = now + 8 * 3_600_000;
	return Math.ceil(((Math.floor(chinaMs / 86_400_000) + 1) * 86_400_000 - chinaMs) / 1_000);
}

function adminRefresh(app: TestApp) {
	return call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: KEYS.admin });
}

/** WeChat stops accepting every token of the app, so a report of it is one WeChat would confirm. */
async function revoke(app: TestApp): Promise<void> {
	const res = await fetch(`${simUrl}/__sim/apps/${app.appid}/revoke`, {
		method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: app.mode }),
	});
	expect(res.status).toBe(200);
	await res.body?.cancel();
}

/** Waits (in round trips, not time) until the simulator has received `calls` token calls for the app. */
async function untilUpstreamCalls(app: TestApp, calls: number): Promise<void> {
	for (let i = 0; i < 500; i++) if (await sim.tokenCalls(app) >= calls) return;
	throw new Error(`the simulator never saw ${calls} token calls for ${app.appid}`);
}

it("stable: never sends a 21st force_refresh in a WeChat day from the invalidation path", async () => {
	const app = next("stable");
	await travel(secondsToChinaMidnight() + 1);
	await getToken(app);
	for (let i = 0; i < 20; i++) {
		expect((await adminRefresh(app)).status, `forced refresh ${i + 1}`).toBe(200);
		await travel(31);
	}
	const current = (await getToken(app)).body.access_token as string;
	const res = await invalidate(app, current);
	expect((await sim.calls(app)).stable_token_force).toBe(20);
	// Today the report is refused outright. A broker that first confirms the report with WeChat answers a
	// token WeChat still accepts as it is; either way no force goes out, and never a 502 from WeChat's 45009.
	if (res.status === 429) {
		expect(res.body.message).toMatch(/20 forced/);
		expect(res.headers.get("retry-after")).toBe(String(secondsToChinaMidnight()));
	} else {
		expect(res.status).toBe(200);
		expect(res.body.access_token).toBe(current);
	}
});

it("a second forced refresh 10 s after one gets 429 with Retry-After: 20", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	await revoke(app);
	const second = await invalidate(app, first);
	expect(second.status).toBe(200);
	expect(second.body.access_token).not.toBe(first);

	await travel(10);
	await revoke(app);
	const refused = await invalidate(app, second.body.access_token as string);
	expect(refused.status).toBe(429);
	expect(refused.headers.get("retry-after")).toBe("20");
	expect(refused.body.retry_after).toBe(20);

	await travel(19.5);
	expect((await adminRefresh(app)).headers.get("retry-after")).toBe("1");
});

it("a 502 (WeChat refused) carries no Retry-After", async () => {
	const app = next("classic");
	await sim.fault({ appid: app.appid, kind: "errcode", errcode: 40125 });
	const res = await getToken(app);
	expect(res.status).toBe(502);
	expect(res.headers.get("retry-after")).toBeNull();
	expect(res.body).not.toHaveProperty("retry_after");
});

it("stable: a read that reaches the object during a force_refresh waits for its result", async () => {
	const app = next("stable");
	await getToken(app);
	await env.TOKEN_CACHE.delete(edgeKey(app.appid)); // the read must reach the object, not the edge copy
	// The force hangs until the broker's 300 ms timeout; the normal call after it tells WeChat's live token.
	await sim.fault({ appid: app.appid, kind: "hang", times: 1 });
	const forced = adminRefresh(app);
	await untilUpstreamCalls(app, 2);

	const read = await getToken(app);
	const refreshed = await forced;
	expect(refreshed.status).toBe(200);
	expect(read.status).toBe(200);
	expect(read.body.access_token).toBe(refreshed.body.access_token);
	expect(await sim.check(read.body.access_token as string)).toBe(0);
});

it("classic: a read during a forced refresh gets the current token at once, promised 300 s from the call", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	await env.TOKEN_CACHE.delete(edgeKey(app.appid));
	await sim.fault({ appid: app.appid, kind: "hang", times: 1 });
	const forced = adminRefresh(app);
	await untilUpstreamCalls(app, 2);

	const read = await getToken(app); // a classic mint revokes the old token only 300 s later: no wait
	expect(read.body.access_token).toBe(first);
	expect(read.body.expires_in).toBeLessThanOrEqual(300);
	const refreshed = await forced;
	expect(refreshed.status).toBe(200);
	expect(refreshed.body.access_token).not.toBe(first);
});

it("a restart during a forced refresh still refuses a second force within 30 s", async () => {
	const app = next("classic");
	await getToken(app);
	const stub = authority(env, app.appid);
	await sim.fault({ appid: app.appid, kind: "hang", times: 1 });
	const forced = adminRefresh(app);
	await untilUpstreamCalls(app, 2);
	// What storage holds while WeChat is being asked is all that an object restarted at this moment would know.
	const duringCall = await runInDurableObject(stub, (_instance, state) => state.storage.list());
	expect((await forced).status).toBe(200);

	// The restart: storage as it was during the call, and a new instance that reads it.
	await runInDurableObject(stub, async (_instance, state) => {
		await state.storage.deleteAll();
		await state.storage.put(Object.fromEntries(duringCall));
	});
	await abortAllDurableObjects();
	await travel(10);
	const calls = await sim.tokenCalls(app);
	const again = await adminRefresh(app);
	expect(again.status).toBe(429);
	expect(again.headers.get("retry-after")).toBe("20");
	expect(await sim.tokenCalls(app)).toBe(calls);
});

it("refuses a 513-character token in a small body with 400 naming the 512 limit, and takes 512", async () => {
	const app = next("classic");
	const current = (await getToken(app)).body.access_token as string;
	const tooLong = "t".repeat(513);
	expect(JSON.stringify({ appid: app.appid, access_token: tooLong }).length).toBeLessThan(4 * 1024);
	const refused = await invalidate(app, tooLong);
	expect(refused.status).toBe(400);
	expect(refused.body.error).toBe("bad_request");
	expect(refused.body.message).toContain("512");

	const longest = await invalidate(app, "t".repeat(512)); // a token, not the current one: a stale report
	expect(longest.status).toBe(200);
	expect(longest.body.access_token).toBe(current);
	expect(await sim.tokenCalls(app)).toBe(1);
});

it("/healthz answers with no fetch, no KV, no Durable Object and no configuration", async () => {
	const touched: string[] = [];
	const untouchable = (name: string) => new Proxy({}, {
		get(_target, property) {
			touched.push(`${name}.${String(property)}`);
			throw new Error(`/healthz touched ${name}`);
		},
	});
	const fetchSpy = vi.spyOn(globalThis, "fetch");
	const ctx = createExecutionContext();
	const res = await worker.fetch(new Request("https://broker.test/healthz"), {
		...env,
		TOKEN_CACHE: untouchable("TOKEN_CACHE") as KVNamespace,
		TOKEN_AUTHORITY: untouchable("TOKEN_AUTHORITY") as typeof env.TOKEN_AUTHORITY,
		WECHAT_APPS: "",
		API_KEYS: "",
	}, ctx);
	await waitOnExecutionContext(ctx);
	expect(res.status).toBe(200);
	expect(await res.json()).toEqual({ ok: true });
	expect(touched).toEqual([]);
	expect(fetchSpy).not.toHaveBeenCalled();
});
