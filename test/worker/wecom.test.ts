/**
 * WeCom (企业微信) apps on the same engine: one token per (corpid, secret) from WECOM_API_BASE, WeCom's own
 * errcodes (40001 is a bad secret there), a re-fetch that returns the same token, early revocation healed by
 * invalidation, the corp and agent tickets with their hourly limits, and wx.agentConfig signatures.
 */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config";
import { allWeComApps, KEYS, WECOM_CORP, WECOM_OTHER_CORP, type WeComTestApp } from "./fixtures";
import { call, runCron, sim, statusOf, travel } from "./helpers";

const apps = allWeComApps();
const agent = (corpid: string, agentid: string): WeComTestApp => apps.find((a) => a.corpid === corpid && a.agentid === agentid)!;
const contacts = apps.find((a) => !a.agentid)!;
/** runCron and statusOf take anything with an appid; the cron's configuration needs the entry's shape. */
const asEntry = (a: WeComTestApp) => ({ kind: "wecom", corpid: a.corpid, secret: a.secret, ...(a.agentid ? { agentid: a.agentid } : { id: a.appid }) });

function token(a: WeComTestApp) {
	return call(`/token?appid=${a.appid}`);
}

it("gives each agent of a corp its own token, from WeCom's base, each accepted by WeCom", async () => {
	const one = agent(WECOM_CORP, "1000001");
	const two = agent(WECOM_CORP, "1000002");
	const before = (await sim.wecomCalls(WECOM_CORP)).gettoken ?? 0;
	const [a, b] = [await token(one), await token(two)];
	expect(a.status).toBe(200);
	expect(b.status).toBe(200);
	expect(a.body.access_token).not.toBe(b.body.access_token);
	expect(await sim.checkWeCom(a.body.access_token as string)).toBe(0);
	expect(await sim.checkWeCom(b.body.access_token as string)).toBe(0);
	expect((await sim.wecomCalls(WECOM_CORP)).gettoken).toBe(before + 2);
	// The same token again, from the edge, with no call.
	expect((await token(one)).body.access_token).toBe(a.body.access_token);
	expect((await sim.wecomCalls(WECOM_CORP)).gettoken).toBe(before + 2);
});

it("does not refetch early for nothing: WeCom returns the same token until it expires", async () => {
	const a = agent(WECOM_CORP, "1000003");
	const first = (await token(a)).body.access_token as string;
	const calls = () => sim.wecomCalls(WECOM_CORP).then((c) => c.gettoken ?? 0);
	const start = await calls();
	await travel(7200 - 899); // due
	await runCron([asEntry(a)] as never);
	expect(await calls()).toBe(start + 1); // asked once: the same token came back
	for (let i = 0; i < 5; i++) {
		await travel(120);
		await runCron([asEntry(a)] as never);
	}
	expect(await calls()).toBe(start + 1);
	expect((await token(a)).body.access_token).toBe(first);
	await travel(300); // past its expiry
	const second = (await token(a)).body.access_token as string;
	expect(second).not.toBe(first);
	expect(await sim.checkWeCom(second)).toBe(0);
});

it("heals a token WeCom revoked early (40014) through invalidation", async () => {
	const a = agent(WECOM_CORP, "1000004");
	const first = (await token(a)).body.access_token as string;
	await sim.wecomRevoke(a.corpid, a.agentid);
	expect(await sim.checkWeCom(first)).toBe(40014);
	const res = await call("/token/invalidate", { method: "POST", body: { appid: a.appid, access_token: first } });
	expect(res.status).toBe(200);
	expect(res.body.access_token).not.toBe(first);
	expect(await sim.checkWeCom(res.body.access_token as string)).toBe(0);
});

it("reads WeCom's 40001 as a wrong secret, not a bad token", async () => {
	const a = agent(WECOM_OTHER_CORP, "1000001");
	await sim.wecomApp({ ...a, secret: "reset-in-the-wecom-console" });
	try {
		const res = await token(a);
		expect(res.status).toBe(502);
		expect(res.body.wechat_errcode).toBe(40001);
		expect(res.body.message).toMatch(/WeCom rejected the Secret.*WECHAT_APPS/);
	} finally {
		await sim.wecomApp(a);
	}
});

describe("JS-SDK for a WeCom agent", () => {
	it("signs wx.config with the corp ticket and wx.agentConfig with the agent ticket", async () => {
		const a = agent(WECOM_CORP, "1000005");
		const url = "https://oa.example.com/approve?id=7#top";
		const res = await call("/jssdk/config", { method: "POST", body: { appid: a.appid, url } });
		expect(res.status).toBe(200);
		expect(res.body.appId).toBe(WECOM_CORP);
		const { timestamp, nonceStr, signature } = res.body;
		expect(await sim.verify({ appid: WECOM_CORP, url, timestamp, nonceStr, signature })).toEqual({ ok: true });
		const agentConfig = res.body.agentConfig as Record<string, unknown>;
		expect(agentConfig).toMatchObject({ corpid: WECOM_CORP, agentid: a.agentid });
		expect(await sim.verify({ appid: WECOM_CORP, agentid: a.agentid, type: "agent_config", url, timestamp: agentConfig.timestamp, nonceStr: agentConfig.nonceStr, signature: agentConfig.signature })).toEqual({ ok: true });
	});

	it("refuses agent_config for an entry without an agentid, saying what to add", async () => {
		const res = await call(`/ticket?appid=${contacts.appid}&type=agent_config`);
		expect(res.status).toBe(400);
		expect(res.body.message).toMatch(/no agentid.*"agentid"/);
	});

	it("keeps to WeCom's 100 agent tickets an hour, and says when the next hour starts", async () => {
		const a = agent(WECOM_CORP, "1000006");
		// A WeCom clock hour's first second: the whole test falls on one hour.
		await travel(3600 - ((Date.now() / 1_000) % 3600) + 1);
		for (let i = 0; i < 100; i++) {
			const forced = await call(`/ticket/refresh?appid=${a.appid}&type=agent_config`, { method: "POST", key: KEYS.admin });
			expect(forced.status, `ticket ${i + 1}`).toBe(200);
			await travel(31);
		}
		const refused = await call(`/ticket/refresh?appid=${a.appid}&type=agent_config`, { method: "POST", key: KEYS.admin });
		expect(refused.status).toBe(429);
		expect(refused.body.message).toMatch(/100 ticket_get calls an hour/);
		const status = await statusOf({ appid: a.appid } as never);
		expect((status.credentials as Array<Record<string, any>>).find((c) => c.type === "agent_config")!.calls_today).toBe(100);
	});
});

describe("configuration of WeCom entries", () => {
	const keys = JSON.stringify([{ name: "a", key: KEYS.all, apps: ["*"] }]);
	const load = (entries: unknown[]) => () => loadConfig({ WECHAT_APPS: JSON.stringify(entries), API_KEYS: keys });

	it("says what is missing or duplicated", () => {
		expect(load([{ kind: "wecom", agentid: "1000002", secret: "s" }])).toThrow(/corpid must be the WeCom CorpID/);
		expect(load([{ kind: "wecom", corpid: "ww1", secret: "s" }])).toThrow(/no agentid, so it needs an "id"/);
		expect(load([{ kind: "wecom", corpid: "ww1", agentid: "1000002", secret: "s" }, { kind: "wecom", corpid: "ww1", agentid: "1000002", secret: "t" }]))
			.toThrow(/listed twice.*distinct "id"s/);
		expect(load([{ kind: "wecom", corpid: "ww1", agentid: 1000002, secret: "s" }])).toThrow(/AgentId as a string of digits/);
	});

	it("names an agent entry <corpid>-<agentid> unless it sets an id", () => {
		const config = load([{ kind: "wecom", corpid: "ww1", agentid: "1000002", secret: "s" }, { kind: "wecom", corpid: "ww1", id: "ww1-contacts", secret: "t" }])();
		expect([...config.apps.keys()]).toEqual(["ww1-1000002", "ww1-contacts"]);
		expect(config.apps.get("ww1-1000002")).toMatchObject({ platform: "wecom", corpid: "ww1", agentid: "1000002", corpEntries: 2 });
	});
});
