/**
 * Authorizers: an account that authorises a component becomes an app. WeChat's `authorized` push (or the
 * vendor's redirect page) brings a code, exchanged with api_query_auth once however often it arrives; the
 * refresh token is sealed in the authorizer's own object; its token is on the engine (api_authorizer_token
 * with the component's token, alarm-refreshed); 61023 / 61003 need a person, once; `unauthorized` wipes it.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority, componentAuthority } from "../../src/authority/stub";
import { AUTHORIZER_MARK_KEY, edgeKey, REGISTERED_APP_KEY } from "../../src/core/storage-keys";
import { nextQuotaReset } from "../../src/core/usage";
import { registry } from "../../src/registry/registry";
import { KEYS, testComponent, type TestComponent } from "./fixtures";
import { alertsFor, call, interceptUpstream, sim, travel, wechatAnswer } from "./helpers";
import { gw } from "./gateway-helpers";
import { componentAlarm, componentStats, pushTicket, registryKey, ringComponent, simOpen } from "./component-helpers";

const C = Array.from({ length: 16 }, (_, n) => testComponent("authz", n)) as TestComponent[];
const accountOf = (n: number) => `wxauthz${String(n).padStart(2, "0")}acct`;

interface Push { info_type: string; query: string; body: string }

/** The account consents on WeChat's page: the pushes it makes (with `push`), and the code. */
async function authorise(c: TestComponent, authorizerAppid: string, push = true): Promise<{ auth_code: string; pushes: Push[] }> {
	await simOpen(`components/${c.component_appid}/take`);
	const { auth_code } = await simOpen(`components/${c.component_appid}/authorize`, { authorizer_appid: authorizerAppid, push });
	const { pushes } = await simOpen(`components/${c.component_appid}/take`) as { pushes: Push[] };
	return { auth_code, pushes: pushes.filter((p) => p.info_type !== "component_verify_ticket") };
}

/** Delivers a push to the event URL as WeChat does; the answer's status and text. */
async function deliver(c: TestComponent, push: Push): Promise<{ status: number; text: string }> {
	const res = await exports.default.fetch(new Request(`https://broker.test/open/${c.component_appid}/events?${push.query}`, {
		method: "POST", headers: { "content-type": "text/xml" }, body: push.body,
	}));
	return { status: res.status, text: await res.text() };
}

/** Delivers the push and waits for the component's background exchange to be over. */
async function deliverAndSettle(c: TestComponent, push: Push): Promise<{ status: number; text: string }> {
	const answer = await deliver(c, push);
	await componentAuthority(env, c.component_appid).idle();
	return answer;
}

/** A component with a ticket and an authorised account, through the `authorized` push. */
async function authorised(n: number): Promise<{ c: TestComponent; appid: string; code: string; push: Push }> {
	const c = C[n]!;
	expect(await pushTicket(c)).toBe("success");
	const appid = accountOf(n);
	const { auth_code, pushes } = await authorise(c, appid);
	expect(pushes.map((p) => p.info_type)).toEqual(["authorized"]);
	expect(await deliverAndSettle(c, pushes[0]!)).toEqual({ status: 200, text: "success" });
	return { c, appid, code: auth_code, push: pushes[0]! };
}

function storedOf(appid: string): Promise<Record<string, unknown>> {
	return runInDurableObject(authority(env, appid), async (_o, state) => Object.fromEntries(await state.storage.list()));
}

function alarmOf(appid: string): Promise<number | null> {
	return runInDurableObject(authority(env, appid), (_o, state) => state.storage.getAlarm());
}

async function ring(appid: string): Promise<void> {
	const at = await alarmOf(appid);
	if (at === null) throw new Error(`${appid} has no alarm`);
	const ahead = Math.ceil((at - Date.now()) / 1_000);
	if (ahead > 0) await travel(ahead);
	await runDurableObjectAlarm(authority(env, appid));
}

describe("an authorizer is an app", () => {
	it("is made by the `authorized` push: the code exchanged once, the refresh token sealed in its own object, registered with its component, its alarm armed", async () => {
		const { c, appid, push } = await authorised(0);
		expect((await componentStats(c)).api_query_auth).toBe(1);
		// WeChat repeats pushes: the same code again is answered and not exchanged again.
		expect(await deliverAndSettle(c, push)).toEqual({ status: 200, text: "success" });
		expect((await componentStats(c)).api_query_auth).toBe(1);

		const stored = await storedOf(appid);
		expect(JSON.stringify(stored)).not.toContain("refreshtoken@@@");
		expect((stored[REGISTERED_APP_KEY] as { sealed: unknown }).sealed).toBeTruthy();
		const row = await registry(env).getApp(appid);
		expect(row?.profile).toMatchObject({ appid, mode: "authorizer", componentAppid: c.component_appid });
		expect(await alarmOf(appid)).not.toBeNull();

		const token = await call(`/token?appid=${appid}`);
		expect(token.status, JSON.stringify(token.body)).toBe(200);
		expect(await sim.check(token.body.access_token as string)).toBe(0);
	});

	it("cannot be PUT by hand through /admin/apps", async () => {
		const { appid } = await authorised(1);
		const res = await call(`/admin/apps/${appid}`, { method: "PUT", key: KEYS.admin, body: { secret: "x".repeat(32) } });
		expect(res.status).toBe(409);
		expect(res.body.message).toMatch(/authorizer of component .*auth-url/);
	});

	it("refuses a push without its code or appid, and answers `success` at once while the exchange runs in the background", async () => {
		const c = C[2]!;
		await pushTicket(c);
		const { pushes } = await authorise(c, accountOf(2));
		let release!: () => void;
		const held = new Promise<void>((resolve) => { release = resolve; });
		interceptUpstream((url, init, real) => url.pathname.endsWith("/api_query_auth") ? held.then(() => real(url.toString(), init)) : undefined);
		expect(await deliver(c, pushes[0]!)).toEqual({ status: 200, text: "success" });
		expect(await registry(env).getApp(accountOf(2))).toBeNull();
		release();
		await componentAuthority(env, c.component_appid).idle();
		expect((await registry(env).getApp(accountOf(2)))?.profile.mode).toBe("authorizer");
	});
});

describe("a pushed code whose exchange fails", () => {
	it("stays pending and is exchanged by the component's alarm 30 s later; nothing is lost", async () => {
		const c = C[7]!;
		await pushTicket(c);
		const appid = accountOf(7);
		const { pushes } = await authorise(c, appid);
		const restore = interceptUpstream((url) => url.pathname.endsWith("/api_query_auth") ? Promise.resolve(new Response("bad gateway", { status: 502 })) : undefined);
		expect(await deliverAndSettle(c, pushes[0]!)).toEqual({ status: 200, text: "success" });
		restore();
		expect(await registry(env).getApp(appid)).toBeNull();
		const at = await componentAlarm(c);
		expect(at).not.toBeNull();
		expect(at! - Date.now()).toBeLessThanOrEqual(30_000);
		await ringComponent(c);
		await componentAuthority(env, c.component_appid).idle();
		expect((await registry(env).getApp(appid))?.profile.mode).toBe("authorizer");
		expect((await componentStats(c)).api_query_auth).toBe(1);
		// Nothing waits any more: the alarm goes back to the component token's own plan.
		expect((await componentAlarm(c))! - Date.now()).toBeGreaterThan(30_000);
	});
});

describe("the authorizer's token on the engine", () => {
	it("is refreshed by its alarm with api_authorizer_token and the component's token, no_overlap, with no client traffic", async () => {
		const { c, appid } = await authorised(3);
		const first = (await call(`/token?appid=${appid}`)).body;
		const before = (await componentStats(c)).api_authorizer_token ?? 0;
		// 7200 s, refreshed 900 s ahead: promised until the refresh only.
		expect(first.expires_in).toBeLessThanOrEqual(6300);
		await pushTicket(c);
		await ring(appid);
		expect((await componentStats(c)).api_authorizer_token).toBe(before + 1);
		const second = (await call(`/token?appid=${appid}`)).body;
		expect(second.access_token).not.toBe(first.access_token);
		expect((await authority(env, appid).status(appid)) as any).toMatchObject({ appid, last_refresh: { trigger: "scheduled" }, authorizer: { component_appid: c.component_appid, needs_reauthorisation: null } });
		// GET /status lists it among the apps.
		const listed = async (key: string) => ((await call(`/status?limit=5&cursor=${appid.slice(0, -1)}`, { key })).body.apps as any[]).find((a) => a.appid === appid);
		expect(await listed(KEYS.admin)).toMatchObject({ appid, mode: "authorizer", last_refresh: { trigger: "scheduled" } });
	});

	it("stores a refresh token an answer carries (sealed) before using the answer, and sends it next time", async () => {
		const { appid } = await authorised(4);
		const bodies: Record<string, unknown>[] = [];
		interceptUpstream((url, init) => {
			if (!url.pathname.endsWith("/api_authorizer_token")) return undefined;
			bodies.push(JSON.parse(String(init?.body)));
			return wechatAnswer({ authorizer_access_token: `authtok-${bodies.length}-${"x".repeat(40)}`, expires_in: 7200, authorizer_refresh_token: `refreshtoken@@@replaced${bodies.length}` });
		});
		await ring(appid);
		await ring(appid);
		expect(bodies.length).toBe(2);
		expect(bodies[1]!.authorizer_refresh_token).toBe("refreshtoken@@@replaced1");
		expect(JSON.stringify(await storedOf(appid))).not.toContain("replaced");
	});

	it("61003 or 61023: needs re-authorisation, one incident and one alert, and no more calls however often its alarm rings", async () => {
		const { c, appid } = await authorised(5);
		await simOpen(`components/${c.component_appid}/unauthorize`, { authorizer_appid: appid, push: false });
		const before = (await componentStats(c)).api_authorizer_token ?? 0;
		await ring(appid);
		expect((await componentStats(c)).api_authorizer_token).toBe(before + 1);
		// Nothing for its alarm to do until the account authorises again: no wake every backoff, only the
		// incident's day turn (10,000 blocked authorizers would otherwise wake 120,000 times an hour).
		const next = await alarmOf(appid);
		if (next !== null) expect(next).toBeGreaterThanOrEqual(nextQuotaReset(Date.now()));
		for (let i = 0; i < 4; i++) await ring(appid);
		expect((await componentStats(c)).api_authorizer_token).toBe(before + 1);
		// Nor when a client asks once the token it held has expired: the answer names the re-authorisation.
		const read = await call(`/token?appid=${appid}`);
		expect(read.status).not.toBe(200);
		expect(read.body.message).toMatch(/authorise/);
		expect((await componentStats(c)).api_authorizer_token).toBe(before + 1);
		const status = (await authority(env, appid).status(appid)) as any;
		expect(status.authorizer.needs_reauthorisation).toMatchObject({ errcode: 61003 });
		expect(status.incident?.reason).toMatch(/61003.*authorise again/);
		const alerts = (await alertsFor({ appid } as any)).filter((a) => /61003/.test(a.content));
		expect(alerts.length).toBe(1);
		expect(await runInDurableObject(authority(env, appid), (_o, state) => state.storage.get(AUTHORIZER_MARK_KEY))).toBeTruthy();
		// The account authorises again (the vendor's redirect page posts the code): the new refresh token is
		// tried at once, the incident closes, and its alarm refreshes it again with no client traffic. (Its
		// alarm's day turns took the clock past the component's 12 h ticket: WeChat pushes a new one.)
		expect(await pushTicket(c)).toBe("success");
		const { auth_code } = await authorise(c, appid, false);
		expect((await call(`/open/${c.component_appid}/authorizations`, { method: "POST", key: KEYS.admin, body: { auth_code } })).status).toBe(200);
		expect((await authority(env, appid).status(appid)) as any).toMatchObject({ consecutive_failures: 0, incident: null });
		const calls = (await componentStats(c)).api_authorizer_token ?? 0;
		await ring(appid);
		expect((await componentStats(c)).api_authorizer_token).toBe(calls + 1);
	});

	it("serves /ticket and /jssdk/config, to keys scoped to it or to its component, and to no other key", async () => {
		const { c, appid } = await authorised(6);
		const vendor = await registryKey(`authz-vendor-${Date.now()}`, [`component:${c.component_appid}`]);
		const own = await registryKey(`authz-own-${Date.now()}`, [appid]);
		const other = await registryKey(`authz-other-${Date.now()}`, [accountOf(7)]);
		for (const key of [vendor, own]) {
			expect((await call(`/token?appid=${appid}`, { key })).status).toBe(200);
			const ticket = await call(`/ticket?appid=${appid}&type=jsapi`, { key });
			expect(ticket.status, JSON.stringify(ticket.body)).toBe(200);
			const config = await call("/jssdk/config", { method: "POST", key, body: { appid, url: "https://vendor.example/page" } });
			expect(config.status, JSON.stringify(config.body)).toBe(200);
			const { timestamp, nonceStr, signature } = config.body;
			expect(await sim.verify({ appid, url: "https://vendor.example/page", timestamp, nonceStr, signature })).toEqual({ ok: true });
		}
		expect((await call(`/token?appid=${appid}`, { key: other })).status).toBe(403);
		// The gateway: an SDK given the authorizer's appid and a broker key as its secret gets the token, and its
		// calls with it are forwarded to WeChat.
		const token = await gw(`/cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${encodeURIComponent(vendor)}`);
		expect(token.status, JSON.stringify(token.json)).toBe(200);
		expect(token.json?.access_token).toBe((await call(`/token?appid=${appid}`)).body.access_token);
		const ip = await gw(`/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token.json?.access_token as string)}`);
		expect(ip.json?.errcode ?? 0, JSON.stringify(ip.json)).toBe(0);
		expect(ip.json?.ip_list).toBeTruthy();
	});
});

describe("unauthorized", () => {
	it("wipes the authorizer: tokens from storage and KV, alarm disarmed, /token a 404 naming the revocation", async () => {
		const { c, appid } = await authorised(8);
		const held = await call(`/token?appid=${appid}`);
		expect(held.status).toBe(200);
		expect((await gw(`/cgi-bin/getcallbackip?access_token=${encodeURIComponent(held.body.access_token as string)}`)).json?.ip_list).toBeTruthy();
		await simOpen(`components/${c.component_appid}/take`);
		await simOpen(`components/${c.component_appid}/unauthorize`, { authorizer_appid: appid, push: true });
		const { pushes } = await simOpen(`components/${c.component_appid}/take`) as { pushes: Push[] };
		const push = pushes.find((p) => p.info_type === "unauthorized")!;
		expect(await deliverAndSettle(c, push)).toEqual({ status: 200, text: "success" });
		const stored = await storedOf(appid);
		expect(Object.keys(stored)).toEqual([AUTHORIZER_MARK_KEY]);
		expect(await alarmOf(appid)).toBeNull();
		expect(await env.TOKEN_CACHE.get(edgeKey(appid, "token"))).toBeNull();
		const res = await call(`/token?appid=${appid}`);
		expect(res.status).toBe(404);
		expect(res.body.message).toMatch(/revoked its authorisation of component .*auth-url/);
		// The gateway no longer honours the token it issued.
		const refused = await gw(`/cgi-bin/getcallbackip?access_token=${encodeURIComponent(held.body.access_token as string)}`);
		expect(refused.json?.ip_list, JSON.stringify(refused.json)).toBeUndefined();
		const outcome = await authority(env, appid).getToken(appid);
		expect(outcome.ok ? null : outcome.failure).toMatchObject({ code: "not_found", message: expect.stringMatching(/revoked/) });
	});
});

describe("POST /open/{c}/auth-url and /open/{c}/authorizations", () => {
	const post = (c: TestComponent, path: string, body: unknown, key: string = KEYS.admin) => call(`/open/${c.component_appid}/${path}`, { method: "POST", key, body });

	it("auth-url answers WeChat's PC or mobile page with a fresh pre_auth_code that WeChat accepts", async () => {
		const c = C[9]!;
		await pushTicket(c);
		const pc = await post(c, "auth-url", { redirect_uri: "https://vendor.example/back?x=1", auth_type: 1 });
		expect(pc.status, JSON.stringify(pc.body)).toBe(200);
		const url = new URL(pc.body.url as string);
		expect(`${url.origin}${url.pathname}`).toBe("https://mp.weixin.qq.com/cgi-bin/componentloginpage");
		expect(Object.fromEntries(url.searchParams)).toMatchObject({ component_appid: c.component_appid, redirect_uri: "https://vendor.example/back?x=1", auth_type: "1" });
		expect(pc.body.expires_in).toBeGreaterThan(0);
		const mobile = await post(c, "auth-url", { redirect_uri: "https://vendor.example/back", biz_appid: accountOf(9), mobile: true });
		const murl = new URL(mobile.body.url as string);
		expect(`${murl.origin}${murl.pathname}`).toBe("https://open.weixin.qq.com/wxaopen/safe/bindcomponent");
		expect(murl.hash).toBe("#wechat_redirect");
		expect(murl.searchParams.get("action")).toBe("bindcomponent");
		expect(murl.searchParams.get("biz_appid")).toBe(accountOf(9));
		expect(murl.searchParams.get("pre_auth_code")).not.toBe(url.searchParams.get("pre_auth_code"));
		expect((await componentStats(c)).api_create_preauthcode).toBe(2);
		// The account consents on the page the link opens: WeChat takes the code.
		const consent = await simOpen(`components/${c.component_appid}/authorize`, { authorizer_appid: accountOf(9), pre_auth_code: url.searchParams.get("pre_auth_code"), push: false });
		expect(consent.auth_code).toBeTruthy();
	});

	it("auth-url refuses a bad body, a key that is not the component's admin, and an unknown component", async () => {
		const c = C[10]!;
		expect((await post(c, "auth-url", {})).status).toBe(400);
		expect((await post(c, "auth-url", { redirect_uri: "not a url" })).status).toBe(400);
		expect((await post(c, "auth-url", { redirect_uri: "https://v.example", auth_type: 4 })).status).toBe(400);
		expect((await post(c, "auth-url", { redirect_uri: "https://v.example", auth_type: 1, biz_appid: "wx1" })).status).toBe(400);
		expect((await post(c, "auth-url", { redirect_uri: "https://v.example", extra: 1 })).status).toBe(400);
		expect((await post(c, "auth-url", { redirect_uri: "https://v.example" }, KEYS.all)).status).toBe(403);
		const otherAdmin = await registryKey(`authz-other-admin-${Date.now()}`, [`component:${C[14]!.component_appid}`], true);
		expect((await post(c, "auth-url", { redirect_uri: "https://v.example" }, otherAdmin)).status).toBe(403);
		expect((await post(c, "authorizations", { auth_code: "x" }, otherAdmin)).status).toBe(403);
		expect((await call("/open/wxnosuchcomp/auth-url", { method: "POST", key: KEYS.admin, body: { redirect_uri: "https://v.example" } })).status).toBe(404);
		expect((await call(`/open/${c.component_appid}/auth-url`, { method: "GET", key: KEYS.admin })).status).toBe(405);
	});

	it("authorizations exchanges the redirect page's code once, and answers the same for it again", async () => {
		const c = C[11]!;
		await pushTicket(c);
		const { auth_code } = await authorise(c, accountOf(11), false);
		// The browser's redirect may be posted several times at once: one exchange.
		const [first, ...others] = await Promise.all([0, 1, 2].map(() => post(c, "authorizations", { auth_code })));
		expect(first!.status, JSON.stringify(first!.body)).toBe(200);
		for (const res of others) expect(res.body).toEqual(first!.body);
		expect(first!.body).toMatchObject({ authorizer_appid: accountOf(11), func_info: [1, 2, 3] });
		expect(first!.body.expires_in).toBeGreaterThan(6000);
		expect((await post(c, "authorizations", { auth_code })).body).toMatchObject({ authorizer_appid: accountOf(11), func_info: [1, 2, 3] });
		expect((await componentStats(c)).api_query_auth).toBe(1);
		expect((await call(`/token?appid=${accountOf(11)}`)).status).toBe(200);
	});

	it("a code already exchanged from the `authorized` push is not exchanged again by the redirect page", async () => {
		const { c, appid, code } = await authorised(12);
		const res = await post(c, "authorizations", { auth_code: code });
		expect(res.status).toBe(200);
		expect(res.body.authorizer_appid).toBe(appid);
		expect((await componentStats(c)).api_query_auth).toBe(1);
	});

	it("a code WeChat does not know is a 400 that says to start again; no auth_code is a 400", async () => {
		const c = C[13]!;
		await pushTicket(c);
		const res = await post(c, "authorizations", { auth_code: "queryauthcode@@@madeup" });
		expect(res.status).toBe(400);
		expect(res.body.message).toMatch(/61009.*start the authorisation again/);
		expect((await post(c, "authorizations", {})).status).toBe(400);
		expect((await post(c, "authorizations", { auth_code: 5 })).status).toBe(400);
	});
});

describe("GET /open/{c}/authorizers and POST /open/{c}/authorizers/sync", () => {
	it("sync stores refresh tokens from api_get_authorizer_list for the authorizers the broker lacks, and leaves serving ones alone", async () => {
		const c = C[14]!;
		await pushTicket(c);
		const { pushes } = await authorise(c, "wxauthzsync0serving");
		await deliverAndSettle(c, pushes[0]!);
		// Authorised while the broker missed the push (a lost push, a wiped store): it lacks them.
		for (const n of [1, 2, 3]) await authorise(c, `wxauthzsync${n}missed`, false);
		const before = await componentStats(c);
		// WeChat's pages hold 500; shrunk to 2 here, so that the pass must page through.
		interceptUpstream((url, init, real) => {
			if (!url.pathname.endsWith("/api_get_authorizer_list")) return undefined;
			return real(url.toString(), { ...init, body: JSON.stringify({ ...JSON.parse(String(init?.body)), count: 2 }) });
		});
		const res = await call(`/open/${c.component_appid}/authorizers/sync`, { method: "POST", key: KEYS.admin });
		expect(res.status, JSON.stringify(res.body)).toBe(200);
		expect(res.body).toMatchObject({ total_count: 4, recovered: 3, already_serving: 1, without_refresh_token: 0 });
		const after = await componentStats(c);
		expect(after.api_get_authorizer_list! - before.api_get_authorizer_list!).toBe(2);
		expect(after.api_query_auth).toBe(before.api_query_auth);
		const token = await call("/token?appid=wxauthzsync2missed");
		expect(token.status, JSON.stringify(token.body)).toBe(200);
		expect(await sim.check(token.body.access_token as string)).toBe(0);

		const first = await call(`/open/${c.component_appid}/authorizers?limit=3`, { key: KEYS.admin });
		expect(first.status).toBe(200);
		expect(first.body.authorizers).toHaveLength(3);
		const rest = await call(`/open/${c.component_appid}/authorizers?limit=3&cursor=${first.body.next_cursor as string}`, { key: KEYS.admin });
		const all = [...(first.body.authorizers as any[]), ...(rest.body.authorizers as any[])];
		expect(all.map((a) => a.authorizer_appid).sort()).toEqual(["wxauthzsync0serving", "wxauthzsync1missed", "wxauthzsync2missed", "wxauthzsync3missed"]);
		expect(new Set(all.map((a) => a.state))).toEqual(new Set(["serving"]));
		expect(rest.body.next_cursor).toBeNull();
		expect((await call(`/open/${c.component_appid}/authorizers?cursor=bogus!`, { key: KEYS.admin })).status).toBe(400);
	});

	it("sync recovers an authorizer whose refresh token WeChat refused, once the account authorised again; the listing shows each state", async () => {
		const { c, appid } = await authorised(15);
		await simOpen(`components/${c.component_appid}/unauthorize`, { authorizer_appid: appid, push: false });
		await ring(appid);
		const listed = await call(`/open/${c.component_appid}/authorizers`, { key: KEYS.admin });
		expect((listed.body.authorizers as any[]).find((a) => a.authorizer_appid === appid)).toMatchObject({ state: "needs_reauthorisation" });
		// The account authorises again, and the broker misses the push: the list has its new refresh token.
		await authorise(c, appid, false);
		const res = await call(`/open/${c.component_appid}/authorizers/sync`, { method: "POST", key: KEYS.admin });
		expect(res.body).toMatchObject({ recovered: 1 });
		const token = await call(`/token?appid=${appid}`);
		expect(token.status, JSON.stringify(token.body)).toBe(200);
		const again = await call(`/open/${c.component_appid}/authorizers`, { key: KEYS.admin });
		expect((again.body.authorizers as any[]).find((a) => a.authorizer_appid === appid)).toMatchObject({ state: "serving" });
	});
});
