import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { apiKeysJson, appsFor, KEYS, SCOPED_APPS } from "./fixtures";
import { call, getToken, sim, statusEntry } from "./helpers";

const next = appsFor("auth");
// The scoped key may use these two (the first stable and first classic app of this file), nothing else.
const inScope = next("stable");
const alsoInScope = next("classic");
const outOfScope = next("stable");

it("fixtures: the scoped key's apps are this file's first two", () => {
	expect([inScope.appid, alsoInScope.appid]).toEqual(SCOPED_APPS);
});

describe("without a valid key", () => {
	it("answers 401 with a Bearer challenge when no key is sent", async () => {
		const res = await call(`/token?appid=${inScope.appid}`, { key: null });
		expect(res.status).toBe(401);
		expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
		expect(res.body.error).toBe("unauthorized");
	});

	it("answers 401 for a wrong key, without calling WeChat", async () => {
		const before = await sim.tokenCalls(inScope); // the gateway's tests use this app too
		const res = await call(`/token?appid=${inScope.appid}`, { key: "not-a-key-0123456789abcdef" });
		expect(res.status).toBe(401);
		expect(res.headers.get("www-authenticate")).toMatch(/invalid_token/);
		expect(await sim.tokenCalls(inScope)).toBe(before);
	});

	it("answers 400 for an Authorization header that is not a bearer key", async () => {
		const res = await call(`/token?appid=${inScope.appid}`, { key: null, headers: { authorization: "Basic dXNlcjpwYXNz" } });
		expect(res.status).toBe(400);
		expect(res.body.message).toMatch(/Bearer/);
	});

	it("guards every route but /healthz", async () => {
		for (const [method, path] of [["GET", "/token"], ["POST", "/token/invalidate"], ["POST", "/token/refresh"], ["GET", "/status"]] as const) {
			expect((await call(path, { method, key: null, body: method === "POST" ? {} : undefined })).status, `${method} ${path}`).toBe(401);
		}
		expect((await call("/healthz", { key: null })).status).toBe(200);
	});
});

it("compares every configured key in constant time, and remembers only keys that matched", async () => {
	const spy = vi.spyOn(crypto.subtle, "timingSafeEqual");
	const configured = Object.keys(KEYS).length; // fixtures.ts puts each of KEYS in API_KEYS once
	for (let i = 0; i < 2; i++) {
		await call(`/token?appid=${inScope.appid}`, { key: "not-a-key-0123456789abcdef" });
		// One comparison per key in API_KEYS, every time: a wrong key is never remembered.
		expect(spy).toHaveBeenCalledTimes(configured * (i + 1));
	}
	spy.mockClear();
	await call("/status", { key: KEYS.scopedAdmin }); // first use here: all the others are compared too
	expect(spy).toHaveBeenCalledTimes(configured);
	spy.mockClear();
	expect((await call("/status", { key: KEYS.scopedAdmin })).status).toBe(200); // verified: from memory
	expect(spy).toHaveBeenCalledTimes(0);
	spy.mockRestore();
});

it("forgets a verified key once the configuration no longer has it", async () => {
	const request = (apiKeys: string) => worker.fetch(new Request(`https://broker.test/token?appid=${inScope.appid}`, { headers: { authorization: `Bearer ${KEYS.all}` } }), { ...env, API_KEYS: apiKeys }, createExecutionContext());
	const configured = await apiKeysJson();
	expect((await request(configured)).status).toBe(200);
	// The operator rotates the key out (`wrangler secret put API_KEYS`): the next request is refused.
	const rotated = JSON.stringify((JSON.parse(configured) as Array<{ name: string }>).filter((key) => key.name !== "all-apps"));
	const refused = await request(rotated);
	expect(refused.status).toBe(401);
	await refused.text();
	expect((await request(configured)).status).toBe(200);
});

it("accepts a key stored as its SHA-256", async () => {
	expect((await getToken(inScope, KEYS.hashed)).status).toBe(200);
});

describe("a key scoped to some apps", () => {
	it("gets tokens for its apps", async () => {
		expect((await getToken(inScope, KEYS.scoped)).status).toBe(200);
		expect((await getToken(alsoInScope, KEYS.scoped)).status).toBe(200);
	});

	it("gets 403 for any other app on every route, and WeChat is never called for it", async () => {
		const key = KEYS.scoped;
		const token = (await getToken(outOfScope)).body.access_token as string;
		const before = await sim.calls(outOfScope);
		const answers = [
			await getToken(outOfScope, key),
			await call("/token/invalidate", { method: "POST", key, body: { appid: outOfScope.appid, access_token: token } }),
			await call(`/token/refresh?appid=${outOfScope.appid}`, { method: "POST", key }),
		];
		for (const res of answers) {
			expect(res.status).toBe(403);
			expect(res.body.error).toBe("forbidden");
			expect(res.body.message).toContain("billing");
		}
		expect(await sim.calls(outOfScope)).toEqual(before);
	});
});

describe("a key without the admin role", () => {
	it("cannot force a refresh", async () => {
		const res = await call(`/token/refresh?appid=${inScope.appid}`, { method: "POST", key: KEYS.all });
		expect(res.status).toBe(403);
		expect(res.body.message).toMatch(/admin/);
	});

	it("cannot read /status", async () => {
		expect((await call("/status", { key: KEYS.scoped })).status).toBe(403);
	});
});

it("an admin key scoped to some apps sees only those in /status", async () => {
	const res = await call("/status", { key: KEYS.scopedAdmin });
	expect(res.status).toBe(200);
	expect((res.body.apps as Array<{ appid: string }>).map((a) => a.appid)).toEqual([...SCOPED_APPS].sort()); // in appid order, one page
});

describe("an admin key", () => {
	it("forces a refresh that WeChat accepts", async () => {
		const app = next("classic");
		const first = (await getToken(app)).body.access_token;
		const res = await call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: KEYS.admin });
		expect(res.status).toBe(200);
		expect(res.body.access_token).not.toBe(first);
		expect(await sim.check(res.body.access_token as string)).toBe(0);
	});

	it("reads /status: masked tokens, lifetimes and today's upstream calls per app", async () => {
		const app = next("classic");
		const token = (await getToken(app)).body.access_token as string;
		const entry = await statusEntry(app.appid, KEYS.admin);
		expect(entry).toMatchObject({ mode: "classic", calls_today: { token: 1 }, consecutive_failures: 0, last_error: null });
		expect(entry?.token).toBe(`${token.slice(0, 8)}…(${token.length} chars)`);
		expect(entry?.expires_in).toBeGreaterThan(0);
	});
});
