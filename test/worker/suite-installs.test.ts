/**
 * WeCom installs: a company that installs a suite becomes an app (`<corpid>-<agentid>`, mode suite_corp).
 * `create_auth` (or the vendor's redirect page) brings an install code, exchanged with get_permanent_code once
 * however it arrives; the permanent code is sealed in the company's own object, whose token comes from
 * get_corp_token with the suite's token; `cancel_auth` wipes it; `change_auth` is read again; a 代开发
 * `reset_permanent_code` replaces the code; 40084 needs a person, once; a sync recovers lost objects.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority, suiteAuthority } from "../../src/authority/stub";
import { AUTHORIZER_MARK_KEY, edgeKey, installKey, REGISTERED_APP_KEY } from "../../src/core/storage-keys";
import { registry } from "../../src/registry/registry";
import { installTestSuite, KEYS, WECOM_CORP, type TestSuite } from "./fixtures";
import { call, interceptUpstream, simUrl, travel } from "./helpers";
import { gw } from "./gateway-helpers";
import { registryKey } from "./component-helpers";
import { pushSuiteTicket, serviceStats, simSuite } from "./suite-helpers";

const S = Array.from({ length: 12 }, (_, n) => installTestSuite(n)) as TestSuite[];
const corpOf = (n: number, k = 0) => `wwinscorp${String(n).padStart(2, "0")}${k}`;

interface Push { info_type: string; query: string; body: string }

/** A suite with a ticket pushed (so its token can be fetched). */
async function ready(n: number): Promise<TestSuite> {
	const s = S[n]!;
	expect(await pushSuiteTicket(s)).toBe("success");
	return s;
}

/** A company installs the suite from the market: the code, and the create_auth push (with `push`). */
async function install(s: TestSuite, corpid: string, extra: Record<string, unknown> = {}): Promise<{ auth_code: string; pushes: Push[] }> {
	await simSuite(`${s.suite_id}/take`);
	const { auth_code } = await simSuite(`${s.suite_id}/install`, { corpid, push: true, ...extra });
	return { auth_code, pushes: await instructions(s) };
}

/** The instruction callbacks the simulator holds for `s`, suite tickets aside. */
async function instructions(s: TestSuite): Promise<Push[]> {
	const { pushes } = await simSuite(`${s.suite_id}/take`) as { pushes: Push[] };
	return pushes.filter((p) => p.info_type !== "suite_ticket");
}

async function deliver(s: TestSuite, push: Push): Promise<{ status: number; text: string }> {
	const res = await exports.default.fetch(new Request(`https://broker.test/wecom-suite/${s.suite_id}/events?${push.query}`, {
		method: "POST", headers: { "content-type": "text/xml" }, body: push.body,
	}));
	return { status: res.status, text: await res.text() };
}

async function deliverAndSettle(s: TestSuite, push: Push): Promise<{ status: number; text: string }> {
	const answer = await deliver(s, push);
	await suiteAuthority(env, s.suite_id).idle();
	return answer;
}

/** An installed company: ready suite, create_auth delivered and exchanged; its app's id. */
async function installed(n: number, k = 0, extra: Record<string, unknown> = {}): Promise<{ s: TestSuite; corpid: string; appid: string; code: string; push: Push }> {
	const s = await ready(n);
	const corpid = corpOf(n, k);
	const { auth_code, pushes } = await install(s, corpid, extra);
	expect(pushes.map((p) => p.info_type)).toEqual(["create_auth"]);
	expect(await deliverAndSettle(s, pushes[0]!)).toEqual({ status: 200, text: "success" });
	const rows = await suiteAuthority(env, s.suite_id).listInstalls(s.suite_id, null, 100);
	const appid = rows.find((r) => r.corpid === corpid)?.appid;
	expect(appid, JSON.stringify(rows)).toMatch(new RegExp(`^${corpid}-\\d+$`));
	return { s, corpid, appid: appid!, code: auth_code, push: pushes[0]! };
}

const stats = async (s: TestSuite) => (await serviceStats(s)).suite;
const storedOf = (appid: string) => runInDurableObject(authority(env, appid), async (_o, state) => Object.fromEntries(await state.storage.list()));
const alarmOf = (appid: string) => runInDurableObject(authority(env, appid), (_o, state) => state.storage.getAlarm());

/** How WeCom judges a corp token: 0 when its corp endpoints take it. */
async function check(token: string): Promise<number> {
	const res = await fetch(`${simUrl}/qyapi/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`);
	return ((await res.json()) as { errcode?: number }).errcode ?? 0;
}

describe("an installed company is an app", () => {
	it("is made by create_auth: the code exchanged once (v1), the permanent code sealed in its own object, registered with its suite, its token WeCom's", async () => {
		const { s, appid, corpid, push } = await installed(0);
		expect((await stats(s)).wecom_get_permanent_code).toBe(1);
		// WeCom repeats callbacks: the same code again is answered and not exchanged again.
		expect(await deliverAndSettle(s, push)).toEqual({ status: 200, text: "success" });
		expect((await stats(s)).wecom_get_permanent_code).toBe(1);
		const stored = await storedOf(appid);
		expect((stored[REGISTERED_APP_KEY] as { sealed: unknown }).sealed).toBeTruthy();
		expect((await registry(env).getApp(appid))?.profile).toMatchObject({ appid, mode: "suite_corp", platform: "wecom", corpid, suiteId: s.suite_id });
		expect(await alarmOf(appid)).not.toBeNull();
		const token = await call(`/token?appid=${appid}`);
		expect(token.status, JSON.stringify(token.body)).toBe(200);
		expect(await check(token.body.access_token as string)).toBe(0);
		expect((await stats(s)).wecom_get_corp_token).toBeGreaterThanOrEqual(1);
		// The suite's copy of the permanent code is sealed too.
		const record = await runInDurableObject(suiteAuthority(env, s.suite_id), (_o, state) => state.storage.get<Record<string, unknown>>(installKey(corpid)));
		expect(record?.sealed).toBeTruthy();
		expect(Object.keys(record!)).not.toContain("permanentCode");
	});

	it("answers create_auth `success` at once while the exchange runs in the background", async () => {
		const s = await ready(1);
		const { pushes } = await install(s, corpOf(1));
		let release!: () => void;
		const held = new Promise<void>((resolve) => { release = resolve; });
		interceptUpstream((url, init, real) => url.pathname.endsWith("/get_permanent_code") ? held.then(() => real(url.toString(), init)) : undefined);
		expect(await deliver(s, pushes[0]!)).toEqual({ status: 200, text: "success" });
		expect(await suiteAuthority(env, s.suite_id).listInstalls(s.suite_id, null, 10)).toEqual([]);
		release();
		await suiteAuthority(env, s.suite_id).idle();
		expect((await suiteAuthority(env, s.suite_id).listInstalls(s.suite_id, null, 10)).map((r) => r.corpid)).toEqual([corpOf(1)]);
	});

	it("serves /ticket (corp jsapi, agent_config) and /jssdk/config with agentConfig", async () => {
		const { appid, corpid } = await installed(2);
		const jsapi = await call(`/ticket?appid=${appid}&type=jsapi`);
		expect(jsapi.status, JSON.stringify(jsapi.body)).toBe(200);
		const agent = await call(`/ticket?appid=${appid}&type=agent_config`);
		expect(agent.status, JSON.stringify(agent.body)).toBe(200);
		const config = await call("/jssdk/config", { method: "POST", body: { appid, url: "https://vendor.example/page#x" } });
		expect(config.status, JSON.stringify(config.body)).toBe(200);
		expect(config.body).toMatchObject({ appId: corpid, agentConfig: { corpid, agentid: appid.slice(corpid.length + 1) } });
		const status = await call(`/status?appid=${appid}`, { key: KEYS.admin });
		expect(status.status).toBe(200);
		expect(JSON.stringify(status.body)).toContain(appid);
	});

	it("is reached by keys scoped suite:<id> or corp:<corpid>, not by another suite's", async () => {
		const { s, appid, corpid } = await installed(3);
		const bySuite = await registryKey("ins-suite3", [`suite:${s.suite_id}`]);
		const byCorp = await registryKey("ins-corp3", [`corp:${corpid}`]);
		const other = await registryKey("ins-other3", [`suite:${S[4]!.suite_id}`]);
		expect((await call(`/token?appid=${appid}`, { key: bySuite })).status).toBe(200);
		expect((await call(`/token?appid=${appid}`, { key: byCorp })).status).toBe(200);
		expect((await call(`/token?appid=${appid}`, { key: other })).status).toBe(403);
	});

	it("goes through the gateway with the token it issued", async () => {
		const { appid } = await installed(4);
		const token = await call(`/token?appid=${appid}`);
		const ip = await gw(`/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token.body.access_token as string)}`);
		expect(ip.json?.ip_list, JSON.stringify(ip.json)).toBeTruthy();
	});

	it("leaves a company configured in WECHAT_APPS with its own secret on that entry", async () => {
		const s = await ready(5);
		const { pushes } = await install(s, WECOM_CORP, { agentid: 1000003 });
		expect(await deliverAndSettle(s, pushes[0]!)).toEqual({ status: 200, text: "success" });
		expect((await registry(env).getApp(`${WECOM_CORP}-1000003`))).toBeNull();
		const status = (await authority(env, `${WECOM_CORP}-1000003`).status(`${WECOM_CORP}-1000003`)) as unknown as { mode: string } | null;
		expect(status?.mode).toBe("wecom");
	});
});

describe("the install flow", () => {
	const post = (s: TestSuite, path: string, body: unknown, key: string = KEYS.admin) => call(`/wecom-suite/${s.suite_id}/${path}`, { method: "POST", key, body });

	it("install-url answers WeCom's install page with a fresh pre_auth_code (1200 s) that installs; auth_type 1 sets the session", async () => {
		const s = await ready(6);
		const made = await post(s, "install-url", { redirect_uri: "https://vendor.example/installed?x=1", state: "st1", auth_type: 1 });
		expect(made.status, JSON.stringify(made.body)).toBe(200);
		expect(made.body.expires_in).toBe(1200);
		const url = new URL(made.body.url as string);
		expect(`${url.origin}${url.pathname}`).toBe("https://open.work.weixin.qq.com/3rdapp/install");
		expect(Object.fromEntries(url.searchParams)).toMatchObject({ suite_id: s.suite_id, redirect_uri: "https://vendor.example/installed?x=1", state: "st1" });
		expect((await stats(s)).wecom_set_session_info).toBe(1);
		// The code installs in WeCom, and the redirect's auth_code is exchanged once, whichever path comes first.
		const { auth_code } = await simSuite(`${s.suite_id}/install`, { corpid: corpOf(6), pre_auth_code: url.searchParams.get("pre_auth_code") });
		const [a, b] = await Promise.all([post(s, "installs", { auth_code }), post(s, "installs", { auth_code })]);
		expect(a.status, JSON.stringify(a.body)).toBe(200);
		expect(a.body).toMatchObject({ corpid: corpOf(6), appid: expect.stringMatching(/^wwinscorp060-\d+$/), expires_in: expect.any(Number) });
		expect(b.body).toEqual(a.body);
		expect((await post(s, "installs", { auth_code })).body).toEqual(a.body);
		expect((await stats(s)).wecom_get_permanent_code).toBe(1);
	});

	it("refuses bad input with 4xx naming what to do, and keys that are not the suite's admins", async () => {
		const s = await ready(7);
		for (const [body, pattern] of [
			[{}, /redirect_uri is required/],
			[{ redirect_uri: "ftp://x" }, /http\(s\)/],
			[{ redirect_uri: "https://x.example", auth_type: 2 }, /auth_type must be 0/],
			[{ redirect_uri: "https://x.example", state: "a b" }, /state must be/],
			[{ redirect_uri: "https://x.example", extra: 1 }, /./],
		] as [unknown, RegExp][]) {
			const res = await post(s, "install-url", body);
			expect(res.status, JSON.stringify(res.body)).toBe(400);
			expect(res.body.message).toMatch(pattern);
		}
		expect((await post(s, "installs", { auth_code: "" })).status).toBe(400);
		const dead = await post(s, "installs", { auth_code: "x".repeat(70) });
		expect(dead.status, JSON.stringify(dead.body)).toBe(400);
		expect(dead.body).toMatchObject({ wechat_errcode: 40078 });
		expect((await post(s, "install-url", { redirect_uri: "https://x.example" }, KEYS.all)).status).toBe(403);
		const otherAdmin = await registryKey("ins-admin7", [`suite:${S[8]!.suite_id}`], true);
		expect((await post(s, "install-url", { redirect_uri: "https://x.example" }, otherAdmin)).status).toBe(403);
		const ownAdmin = await registryKey("ins-own7", [`suite:${s.suite_id}`], true);
		expect((await post(s, "install-url", { redirect_uri: "https://x.example" }, ownAdmin)).status).toBe(200);
		expect((await call("/wecom-suite/wwnosuchsuite/install-url", { method: "POST", key: KEYS.admin, body: { redirect_uri: "https://x.example" } })).status).toBe(404);
	});

	it("retries a pushed code whose exchange failed from the suite's alarm, and lists the companies", async () => {
		const s = await ready(8);
		const { pushes } = await install(s, corpOf(8));
		const stop = interceptUpstream((url) => url.pathname.endsWith("/get_permanent_code") ? Promise.resolve(new Response("busy", { status: 503 })) : undefined);
		expect(await deliverAndSettle(s, pushes[0]!)).toEqual({ status: 200, text: "success" });
		stop();
		expect(await suiteAuthority(env, s.suite_id).listInstalls(s.suite_id, null, 10)).toEqual([]);
		const at = await runInDurableObject(suiteAuthority(env, s.suite_id), (_o, state) => state.storage.getAlarm());
		expect(at).not.toBeNull();
		await travel(Math.max(0, Math.ceil((at! - Date.now()) / 1_000)));
		await runDurableObjectAlarm(suiteAuthority(env, s.suite_id));
		await suiteAuthority(env, s.suite_id).idle();
		const listed = await call(`/wecom-suite/${s.suite_id}/installs`, { key: KEYS.admin });
		expect(listed.status, JSON.stringify(listed.body)).toBe(200);
		expect(listed.body.installs).toEqual([expect.objectContaining({ corpid: corpOf(8), state: "serving" })]);
		expect(JSON.stringify(listed.body)).not.toMatch(/sealed|permanent/);
	});
});

describe("what a company does later", () => {
	it("cancel_auth wipes it: tokens from storage and KV, alarm disarmed, /token a 404 naming the uninstall, the gateway refusing its token", async () => {
		const { s, appid, corpid } = await installed(9);
		const held = await call(`/token?appid=${appid}`);
		expect(held.status).toBe(200);
		await simSuite(`${s.suite_id}/uninstall`, { corpid, push: true });
		const push = (await instructions(s)).find((p) => p.info_type === "cancel_auth")!;
		expect(await deliverAndSettle(s, push)).toEqual({ status: 200, text: "success" });
		expect(Object.keys(await storedOf(appid))).toEqual([AUTHORIZER_MARK_KEY]);
		expect(await alarmOf(appid)).toBeNull();
		expect(await env.TOKEN_CACHE.get(edgeKey(appid, "token"))).toBeNull();
		const res = await call(`/token?appid=${appid}`);
		expect(res.status).toBe(404);
		expect(res.body.message).toMatch(/uninstalled from WeCom suite .*install-url/);
		const refused = await gw(`/cgi-bin/getcallbackip?access_token=${encodeURIComponent(held.body.access_token as string)}`);
		expect(refused.json?.ip_list, JSON.stringify(refused.json)).toBeUndefined();
		const listed = await call(`/wecom-suite/${s.suite_id}/installs`, { key: KEYS.admin });
		expect(listed.body.installs).toEqual([expect.objectContaining({ corpid, state: "uninstalled" })]);
		const record = await runInDurableObject(suiteAuthority(env, s.suite_id), (_o, state) => state.storage.get<Record<string, unknown>>(installKey(corpid)));
		expect(record?.sealed).toBeUndefined();
	});

	it("change_auth is read again with get_auth_info; reset_permanent_code (代开发) replaces the permanent code", async () => {
		const { s, appid, corpid } = await installed(10);
		await simSuite(`${s.suite_id}/change`, { corpid, corp_name: "Renamed Ten" });
		expect(await deliverAndSettle(s, (await instructions(s))[0]!)).toEqual({ status: 200, text: "success" });
		expect((await stats(s)).wecom_get_auth_info).toBe(1);
		const listed = await call(`/wecom-suite/${s.suite_id}/installs`, { key: KEYS.admin });
		expect((listed.body.installs as unknown[])[0]).toMatchObject({ corpid, corp_name: "Renamed Ten" });
		const before = (await storedOf(appid))[REGISTERED_APP_KEY] as { sealed: { ciphertext?: string } };
		await simSuite(`${s.suite_id}/reset`, { corpid });
		expect(await deliverAndSettle(s, (await instructions(s))[0]!)).toEqual({ status: 200, text: "success" });
		await authority(env, appid).idle();
		const after = (await storedOf(appid))[REGISTERED_APP_KEY] as { sealed: unknown };
		expect(after.sealed).not.toEqual(before.sealed);
		// The old code answers 40084 now; the token is fetched with the new one.
		const fresh = await call(`/token/refresh?appid=${appid}`, { method: "POST", key: KEYS.admin });
		expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
		expect(await check(fresh.body.access_token as string)).toBe(0);
	});

	it("40084 (uninstalled without a callback) needs a re-install: marked once, no retry storm", async () => {
		const { s, appid, corpid } = await installed(11);
		await simSuite(`${s.suite_id}/uninstall`, { corpid, push: false });
		const res = await call(`/token/refresh?appid=${appid}`, { method: "POST", key: KEYS.admin });
		expect(res.body).toMatchObject({ wechat_errcode: 40084 });
		const calls = (await stats(s)).wecom_get_corp_token;
		for (let i = 0; i < 3; i++) {
			await travel(600);
			const at = await alarmOf(appid);
			if (at !== null) await runDurableObjectAlarm(authority(env, appid));
			await call(`/token?appid=${appid}`);
			await authority(env, appid).idle();
		}
		expect((await stats(s)).wecom_get_corp_token).toBe(calls);
		const status = (await authority(env, appid).status(appid)) as unknown as Record<string, any>;
		expect(status.suite_corp.needs_reinstall).toMatchObject({ errcode: 40084 });
		const listed = await call(`/wecom-suite/${s.suite_id}/installs`, { key: KEYS.admin });
		expect((listed.body.installs as unknown[])[0]).toMatchObject({ state: "needs_reinstall" });
	});

	it("a sync gives a company whose object lost its storage its permanent code back from the suite's sealed copy", async () => {
		const { s, appid } = await installed(0, 1);
		const wiped = await call(`/admin/apps/${appid}`, { method: "DELETE", key: KEYS.admin });
		expect(wiped.status, JSON.stringify(wiped.body)).toBeLessThan(300);
		expect((await call(`/token?appid=${appid}`)).status).toBe(404);
		const synced = await call(`/wecom-suite/${s.suite_id}/installs/sync`, { method: "POST", key: KEYS.admin });
		expect(synced.status, JSON.stringify(synced.body)).toBe(200);
		expect(synced.body).toMatchObject({ recovered: 1 });
		const token = await call(`/token?appid=${appid}`);
		expect(token.status, JSON.stringify(token.body)).toBe(200);
		expect(await check(token.body.access_token as string)).toBe(0);
		const again = await call(`/wecom-suite/${s.suite_id}/installs/sync`, { method: "POST", key: KEYS.admin });
		expect(again.body).toMatchObject({ recovered: 0 });
	});
});

describe("a corp token WeCom hands back inside its validity (unconfirmed)", () => {
	it("is never promised past the deadline its first fetch set, whatever expires_in WeCom says then", async () => {
		const { s, appid } = await installed(1, 1);
		try {
			const first = await call(`/token?appid=${appid}`);
			const deadline = Date.now() + (first.body.expires_in as number) * 1_000;
			await fetch(`${simUrl}/__sim/wecom/suites`, { method: "POST", body: JSON.stringify({ ...s, corp_token_refetch: "same", reused_expires_in: "full" }) }).then((r) => r.text());
			await travel(1800);
			const again = await call(`/token/refresh?appid=${appid}`, { method: "POST", key: KEYS.admin });
			expect(again.status, JSON.stringify(again.body)).toBe(200);
			expect(again.body.access_token).toBe(first.body.access_token);
			expect(Date.now() + (again.body.expires_in as number) * 1_000).toBeLessThanOrEqual(deadline + 1_000);
		} finally {
			await fetch(`${simUrl}/__sim/wecom/suites`, { method: "POST", body: JSON.stringify(s) }).then((r) => r.text());
		}
	});
});

describe("invalidation of a company's token", () => {
	it("answers a report of a token WeCom accepts with a token WeCom accepts; after an uninstall WeCom was not heard of, names the re-install", async () => {
		const { s, appid, corpid } = await installed(2, 1);
		const held = await call(`/token?appid=${appid}`);
		const reported = await call("/token/invalidate", { method: "POST", body: { appid, access_token: held.body.access_token } });
		expect(reported.status, JSON.stringify(reported.body)).toBe(200);
		expect(await check(reported.body.access_token as string)).toBe(0);
		await simSuite(`${s.suite_id}/uninstall`, { corpid, push: false });
		expect(await check(reported.body.access_token as string)).toBe(40014);
		const refused = await call("/token/invalidate", { method: "POST", body: { appid, access_token: reported.body.access_token } });
		expect(refused.status, JSON.stringify(refused.body)).toBe(502);
		expect(refused.body).toMatchObject({ wechat_errcode: 40084, message: expect.stringMatching(/install again/) });
	});
});
