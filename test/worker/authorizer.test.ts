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
import { registry } from "../../src/registry/registry";
import { KEYS, testComponent, type TestComponent } from "./fixtures";
import { alertsFor, call, interceptUpstream, sim, travel, wechatAnswer } from "./helpers";
import { componentStats, pushTicket, registryKey, simOpen } from "./component-helpers";

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
		expect((await authority(env, appid).status(appid)) as any).toMatchObject({ appid, last_refresh: { trigger: "cron" }, authorizer: { component_appid: c.component_appid, needs_reauthorisation: null } });
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
		for (let i = 0; i < 4; i++) await ring(appid);
		expect((await componentStats(c)).api_authorizer_token).toBe(before + 1);
		const status = (await authority(env, appid).status(appid)) as any;
		expect(status.authorizer.needs_reauthorisation).toMatchObject({ errcode: 61003 });
		expect(status.incident?.reason).toMatch(/61003.*authorise again/);
		const alerts = (await alertsFor({ appid } as any)).filter((a) => /61003/.test(a.content));
		expect(alerts.length).toBe(1);
		expect(await runInDurableObject(authority(env, appid), (_o, state) => state.storage.get(AUTHORIZER_MARK_KEY))).toBeTruthy();
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
	});
});

describe("unauthorized", () => {
	it("wipes the authorizer: tokens from storage and KV, alarm disarmed, /token a 404 naming the revocation", async () => {
		const { c, appid } = await authorised(8);
		expect((await call(`/token?appid=${appid}`)).status).toBe(200);
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
	});
});
