/** The gateway's token endpoints: WeChat's /cgi-bin/token and /cgi-bin/stable_token, answered by the broker. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { appsFor, KEYS, SCOPED_APPS, type TestApp } from "./fixtures";
import { expectWeChatError, gw, postJson } from "./gateway-helpers";
import { getToken, sim } from "./helpers";

const next = appsFor("gwtoken");

function classicUrl(app: { appid: string }, secret: string, grantType = "client_credential"): string {
	return `/cgi-bin/token?grant_type=${grantType}&appid=${app.appid}&secret=${encodeURIComponent(secret)}`;
}

function stableBody(app: { appid: string }, secret: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
	return { grant_type: "client_credential", appid: app.appid, secret, ...extra };
}

describe.each(["stable", "classic"] as const)("an app in %s mode", (mode) => {
	it("serves the broker's current token from both endpoints, in WeChat's success shape", async () => {
		const app = next(mode);
		const classic = await gw(classicUrl(app, KEYS.all));
		const stable = await postJson("/cgi-bin/stable_token", stableBody(app, KEYS.all));
		const direct = await getToken(app);
		for (const res of [classic, stable]) {
			expect(res.status).toBe(200);
			expect(Object.keys(res.json!).sort()).toEqual(["access_token", "expires_in"]);
			expect(res.json!.access_token).toBe(direct.body.access_token);
			expect(res.json!.expires_in).toBeGreaterThan(6000);
		}
		expect(await sim.check(classic.json!.access_token as string)).toBe(0);
		expect(await sim.tokenCalls(app)).toBe(1);
	});
});

it("accepts a key stored as its SHA-256, like the bearer route", async () => {
	const app = next("stable");
	expect((await gw(classicUrl(app, KEYS.hashed))).json!.access_token).toEqual(expect.any(String));
});

it("compares every configured key in constant time", async () => {
	const app = next("stable");
	const spy = vi.spyOn(crypto.subtle, "timingSafeEqual");
	expectWeChatError(await gw(classicUrl(app, "not-a-key-0123456789abcdef")), 40125);
	expect(spy).toHaveBeenCalledTimes(6); // one comparison per key in API_KEYS
	spy.mockRestore();
});

describe("refusals come in WeChat's shape, with HTTP 200, and never reach WeChat", () => {
	const app = next("classic");
	const cases: [string, () => Promise<Awaited<ReturnType<typeof gw>>>, number][] = [
		["a key the broker does not know", () => gw(classicUrl(app, "not-a-key-0123456789abcdef")), 40125],
		["the app's real AppSecret (it is not a broker key)", () => gw(classicUrl(app, app.secret)), 40125],
		["a key scoped to other apps", () => gw(classicUrl(app, KEYS.scoped)), 40125],
		["an appid the broker does not serve, with a good key", () => gw(classicUrl({ appid: "wxnotconfigured001" }, KEYS.all)), 40013],
		["an appid that cannot be one", () => gw(classicUrl({ appid: "../../etc" }, KEYS.all)), 40013],
		["no appid", () => gw(`/cgi-bin/token?grant_type=client_credential&secret=${KEYS.all}`), 41002],
		["no secret", () => gw(`/cgi-bin/token?grant_type=client_credential&appid=${app.appid}`), 41004],
		["a wrong grant_type", () => gw(classicUrl(app, KEYS.all, "password")), 40002],
		["POST to /cgi-bin/token", () => gw(classicUrl(app, KEYS.all), { method: "POST" }), 43001],
		["GET to /cgi-bin/stable_token", () => gw("/cgi-bin/stable_token"), 43002],
		["a body that is not JSON", () => gw("/cgi-bin/stable_token", { method: "POST", body: "{not json" }), 47001],
		["a JSON array", () => postJson("/cgi-bin/stable_token", [stableBody(app, KEYS.all)]), 47001],
		["force_refresh as a string", () => postJson("/cgi-bin/stable_token", stableBody(app, KEYS.admin, { force_refresh: "true" })), 47001],
		["a body over 4 KiB", () => postJson("/cgi-bin/stable_token", stableBody(app, KEYS.all, { pad: "x".repeat(5000) })), 47001],
	];

	it.each(cases)("%s", async (_name, request, errcode) => {
		const before = await sim.calls(app);
		const res = await request();
		expectWeChatError(res, errcode);
		expect(JSON.stringify(res.json)).not.toContain(app.secret);
		expect(await sim.calls(app)).toEqual(before);
	});

	it("checks the key before the appid, so a caller without one cannot tell which apps exist", async () => {
		expectWeChatError(await gw(classicUrl({ appid: "wxnotconfigured001" }, "not-a-key-0123456789abcdef")), 40125);
	});

	it("names the key and the app when the key's scope is the problem", async () => {
		const res = await gw(classicUrl(app, KEYS.scoped));
		expect(res.json!.errmsg).toMatch(new RegExp(`"billing" may not use app ${app.appid}`));
		// The same key gets its own apps' tokens.
		expect((await gw(classicUrl({ appid: SCOPED_APPS[0]! }, KEYS.scoped))).json!.access_token).toEqual(expect.any(String));
	});
});

describe("force_refresh", () => {
	async function force(app: TestApp, key: string) {
		return postJson("/cgi-bin/stable_token", stableBody(app, key, { force_refresh: true }));
	}

	it("from a key that is not an admin's, returns the current token and forces nothing", async () => {
		const app = next("stable");
		const first = (await getToken(app)).body.access_token;
		const res = await force(app, KEYS.all);
		expect(res.json!.access_token).toBe(first);
		expect((await sim.calls(app)).stable_token_force).toBe(0);
		expect(await sim.check(first as string)).toBe(0);
	});

	it("from an admin key, forces a new token, within the broker's own forced-refresh limits", async () => {
		const app = next("stable");
		const first = (await getToken(app)).body.access_token;
		const res = await force(app, KEYS.admin);
		expect(res.json!.access_token).not.toBe(first);
		expect((await sim.calls(app)).stable_token_force).toBe(1);
		expect(await sim.check(res.json!.access_token as string)).toBe(0);
		// A second force inside 30 s is refused as WeChat would refuse it: a minute-quota errcode.
		expectWeChatError(await force(app, KEYS.admin), 45011);
		expect((await sim.calls(app)).stable_token_force).toBe(1);
	});
});

it("passes WeChat's own refusal through with its errcode when there is no valid token", async () => {
	const app = next("classic");
	await sim.configure(app, { secret: "reset-by-someone" });
	try {
		const res = await gw(classicUrl(app, KEYS.all));
		expectWeChatError(res, 40125);
		expect(res.json!.errmsg).toMatch(/AppSecret is wrong/);
	} finally {
		await sim.configure(app, { secret: app.secret });
	}
});

it("applies ALLOWED_IPS, answering an address outside it in WeChat's shape (40164)", async () => {
	const app = next("stable");
	async function from(ip: string) {
		const ctx = createExecutionContext();
		const res = await worker.fetch(new Request(`https://broker.test${classicUrl(app, KEYS.all)}`, { headers: { "cf-connecting-ip": ip } }),
			{ ...env, ALLOWED_IPS: "203.0.113.0/24" }, ctx);
		await waitOnExecutionContext(ctx);
		return { status: res.status, json: (await res.json()) as Record<string, unknown> };
	}
	const refused = await from("198.51.100.1");
	expect(refused.status).toBe(200);
	expect(refused.json.errcode).toBe(40164);
	expect(refused.json.errmsg).toMatch(/ALLOWED_IPS/);
	expect(await sim.tokenCalls(app)).toBe(0);
	expect((await from("203.0.113.9")).json.access_token).toEqual(expect.any(String));
});
