/**
 * The open platform's loose ends (issue 18): a key scoped `component:<id>` reaches the component and all its
 * authorizers (and nothing else) in /status, /health, /token, /ticket, /jssdk/config and the gateway; the
 * component's ledger of authorization codes is pruned once a code is long dead; an authorizer whose account
 * no longer authorises the component (61003) stops being served at once.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority, componentAuthority } from "../../src/authority/stub";
import { KEYS, SCOPED_APPS, testComponent, type TestComponent } from "./fixtures";
import { call, sim, travel } from "./helpers";
import { expectWeChatError, gw } from "./gateway-helpers";
import { authoriseAccount, componentStats, deliverPush, pushTicket, registryKey, ringComponent, simOpen } from "./component-helpers";

const C = Array.from({ length: 8 }, (_, n) => testComponent("ends", n)) as TestComponent[];

/** The account authorises the component through WeChat's `authorized` push; its appid. */
async function authorised(c: TestComponent, appid: string): Promise<string> {
	const { pushes } = await authoriseAccount(c, appid);
	expect(pushes.map((p) => p.info_type)).toEqual(["authorized"]);
	expect(await deliverPush(c, pushes[0]!)).toEqual({ status: 200, text: "success" });
	return appid;
}

/** Every appid GET /status lists for `key`, page by page (`limit` a page). */
async function statusAppids(key: string, limit: number): Promise<{ appids: string[]; apps: number }> {
	const appids: string[] = [];
	let cursor: string | null = null;
	let apps = -1;
	for (let page = 0; page < 20; page++) {
		const res = await call(`/status?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { key });
		expect(res.status, JSON.stringify(res.body)).toBe(200);
		expect((res.body.apps as unknown[]).length).toBeLessThanOrEqual(limit);
		appids.push(...(res.body.apps as { appid: string }[]).map((a) => a.appid));
		apps = (res.body.summary as { apps: number }).apps;
		cursor = res.body.next_cursor as string | null;
		if (cursor === null) break;
	}
	return { appids, apps };
}

describe("a key scoped component:<id>", () => {
	it("/status and /health cover the component and every authorizer of it, paged, and nothing of another component", async () => {
		const [mine, other] = [C[2]!, C[3]!];
		expect(await pushTicket(mine)).toBe("success");
		expect(await pushTicket(other)).toBe("success");
		const accounts = [await authorised(mine, "wxendsmine1acct"), await authorised(mine, "wxendsmine2acct"), await authorised(mine, "wxendsmine3acct")];
		const foreign = await authorised(other, "wxendsother1acct");

		const admin = await registryKey(`ends-admin-${Date.now()}`, [`component:${mine.component_appid}`], true);
		const listed = await statusAppids(admin, 2);
		expect(listed.appids).toEqual([`component:${mine.component_appid}`, ...accounts]);
		expect(listed.apps).toBe(4);
		expect(listed.appids).not.toContain(foreign);
		const entry = ((await call(`/status?limit=5&cursor=${encodeURIComponent(`component:${mine.component_appid}`)}`, { key: admin })).body.apps as Record<string, unknown>[])[0];
		expect(entry).toMatchObject({ appid: accounts[0], mode: "authorizer", authorizer: { component_appid: mine.component_appid } });

		// A monitor's key of the component: every one of them counted.
		const monitor = await registryKey(`ends-monitor-${Date.now()}`, [`component:${mine.component_appid}`]);
		const health = await call("/health", { key: monitor });
		expect(health.status, JSON.stringify(health.body)).toBe(200);
		expect(health.body.summary).toEqual({ apps: 4, unhealthy: 0 });
		// One of them in trouble shows: the account revoked its authorisation (and the push was missed).
		await simOpen(`components/${mine.component_appid}/unauthorize`, { authorizer_appid: accounts[1], push: false });
		const at = await runInDurableObject(authority(env, accounts[1]!), (_o, state) => state.storage.getAlarm());
		await travel(Math.ceil((at! - Date.now()) / 1_000) + 1);
		await runDurableObjectAlarm(authority(env, accounts[1]!));
		const sick = await call("/health", { key: monitor });
		expect(sick.status, JSON.stringify(sick.body)).toBe(503);
		expect((sick.body.apps as { appid: string }[]).map((a) => a.appid)).toContain(accounts[1]);
	});

	it("/token, /ticket, /jssdk/config and the gateway serve its authorizers, and refuse another component's and plain apps", async () => {
		const [mine, other] = [C[4]!, C[5]!];
		expect(await pushTicket(mine)).toBe("success");
		expect(await pushTicket(other)).toBe("success");
		const account = await authorised(mine, "wxendsmine4acct");
		const foreign = await authorised(other, "wxendsother4acct");
		const vendor = await registryKey(`ends-vendor-${Date.now()}`, [`component:${mine.component_appid}`]);
		const page = "https://vendor.example/page";

		const token = await call(`/token?appid=${account}`, { key: vendor });
		expect(token.status, JSON.stringify(token.body)).toBe(200);
		expect((await call(`/ticket?appid=${account}&type=jsapi`, { key: vendor })).status).toBe(200);
		expect((await call("/jssdk/config", { method: "POST", key: vendor, body: { appid: account, url: page } })).status).toBe(200);
		const viaGateway = await gw(`/cgi-bin/token?grant_type=client_credential&appid=${account}&secret=${encodeURIComponent(vendor)}`);
		expect(viaGateway.json?.access_token).toBe(token.body.access_token);

		for (const appid of [foreign, SCOPED_APPS[0]!]) {
			const refused = await call(`/token?appid=${appid}`, { key: vendor });
			expect(refused.status, appid).toBe(403);
			expect(refused.body.message).toMatch(new RegExp(`not allowed to use app ${appid}`));
			expect((await call(`/ticket?appid=${appid}&type=jsapi`, { key: vendor })).status).toBe(403);
			expect((await call("/jssdk/config", { method: "POST", key: vendor, body: { appid, url: page } })).status).toBe(403);
			expectWeChatError(await gw(`/cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${encodeURIComponent(vendor)}`), 40125);
			expect((await call("/token/invalidate", { method: "POST", key: vendor, body: { appid, access_token: "x".repeat(40) } })).status).toBe(403);
		}
		// Nor another component's token, nor /status without admin.
		expect((await call(`/component-token?component_appid=${other.component_appid}`, { key: vendor })).status).toBe(403);
		expect((await call("/status", { key: vendor })).status).toBe(403);
		// The other component's vendor is refused this one's authorizer the same way.
		const otherVendor = await registryKey(`ends-other-vendor-${Date.now()}`, [`component:${other.component_appid}`]);
		expect((await call(`/token?appid=${account}`, { key: otherVendor })).status).toBe(403);
		expect((await call(`/token?appid=${foreign}`, { key: otherVendor })).status).toBe(200);
		expect(await sim.check(token.body.access_token as string)).toBe(0);
	});
});

describe("an authorizer whose account no longer authorises the component (61003)", () => {
	it("is not served the token it held: WeChat refuses it, and /token names the re-authorisation", async () => {
		const c = C[6]!;
		expect(await pushTicket(c)).toBe("success");
		const appid = await authorised(c, "wxendsgone6acct");
		const held = await call(`/token?appid=${appid}`);
		expect(held.status).toBe(200);
		const token = held.body.access_token as string;

		// The account revokes its authorisation and the `unauthorized` push never reaches the broker: WeChat
		// stops the account's tokens. A client finds its token refused and reports it; the refresh gets 61003.
		await simOpen(`components/${c.component_appid}/unauthorize`, { authorizer_appid: appid, push: false });
		expect(await sim.check(token)).not.toBe(0);
		const reported = await call("/token/invalidate", { method: "POST", body: { appid, access_token: token } });
		expect(reported.status, JSON.stringify(reported.body)).toBe(502);
		expect(reported.body).toMatchObject({ wechat_errcode: 61003 });

		// Past this isolate's memory tier: neither the object nor the KV copy hands the dead token out again.
		await travel(6);
		for (let i = 0; i < 2; i++) {
			const read = await call(`/token?appid=${appid}`);
			expect(read.status, `handed out ${read.body.expires_in} s; WeChat says ${read.body.access_token ? await sim.check(read.body.access_token as string) : "-"}`).toBe(502);
			expect(read.body).toMatchObject({ error: "wechat_error", wechat_errcode: 61003 });
			expect(read.body.message).toContain(`no longer authorises the component: it must authorise again (POST /open/${c.component_appid}/auth-url)`);
		}
		const status = (await authority(env, appid).status(appid)) as unknown as Record<string, any>;
		expect(status.authorizer.needs_reauthorisation).toMatchObject({ errcode: 61003 });
		expect(status.expires_in ?? 0).toBe(0);
		// The gateway asks for it the way an SDK does: no token to hand out either.
		const viaGateway = await gw(`/cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${encodeURIComponent(KEYS.all)}`);
		expect(viaGateway.json?.access_token).toBeUndefined();
	});
	it("is not served again by the isolate whose gateway healed a call with it, not even from its memory tier", async () => {
		const c = C[1]!;
		expect(await pushTicket(c)).toBe("success");
		const appid = await authorised(c, "wxendsgone1acct");
		// Read twice: the second read is answered from KV and remembered in this isolate's memory tier.
		await call(`/token?appid=${appid}`);
		const token = (await call(`/token?appid=${appid}`)).body.access_token as string;
		await simOpen(`components/${c.component_appid}/unauthorize`, { authorizer_appid: appid, push: false });
		// The vendor's SDK calls an API through the gateway: WeChat refuses the token, the heal gets 61003.
		const refused = await gw(`/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`);
		expect(refused.json?.errcode).toBe(40001);
		const read = await call(`/token?appid=${appid}`);
		expect(read.status, `handed out ${read.body.expires_in} s; WeChat says ${read.body.access_token ? await sim.check(read.body.access_token as string) : "-"}`).toBe(502);
		expect(read.body).toMatchObject({ wechat_errcode: 61003 });
	});
});

describe("the component's ledger of authorization codes", () => {
	/** The codes the ledger holds (each also has a time key, which goes with it). */
	const ledgerKeys = (c: TestComponent) => runInDurableObject(componentAuthority(env, c.component_appid), async (_o, state) => {
		const entries = [...(await state.storage.list({ prefix: "auth_code:" })).keys()];
		const timeKeys = [...(await state.storage.list({ prefix: "auth_code_at:" })).keys()];
		expect(timeKeys.map((key) => key.slice(key.lastIndexOf(":") + 1)).sort()).toEqual(entries.map((key) => key.slice("auth_code:".length)).sort());
		return entries;
	});
	const exchange = (c: TestComponent, auth_code: string) => call(`/open/${c.component_appid}/authorizations`, { method: "POST", key: KEYS.admin, body: { auth_code } });
	/** The clock moves on (the simulator keeps pushing tickets, valid 12 h), and the component's alarm rings. */
	async function later(c: TestComponent, hours: number): Promise<void> {
		await travel(hours * 3_600);
		expect(await pushTicket(c)).toBe("success");
		await ringComponent(c);
		await componentAuthority(env, c.component_appid).idle();
	}

	it("answers a code's late duplicate for a day without a second api_query_auth, then prunes it: storage holds about a day of codes", async () => {
		const c = C[7]!;
		expect(await pushTicket(c)).toBe("success");
		const early = await Promise.all(["wxendsled1acct", "wxendsled2acct"].map(async (appid) => (await authoriseAccount(c, appid, false)).auth_code));
		for (const code of early) expect((await exchange(c, code)).status).toBe(200);
		const exchanged = (await componentStats(c)).api_query_auth ?? 0;
		expect(await ledgerKeys(c)).toHaveLength(2);

		// 20 h on: the duplicates are answered from the ledger; a new code is exchanged.
		await later(c, 20);
		for (const code of early) expect((await exchange(c, code)).body).toMatchObject({ authorizer_appid: expect.stringMatching(/^wxendsled[12]acct$/) });
		expect((await componentStats(c)).api_query_auth).toBe(exchanged);
		const { auth_code: recent } = await authoriseAccount(c, "wxendsled3acct", false);
		expect((await exchange(c, recent)).status).toBe(200);
		expect(await ledgerKeys(c)).toHaveLength(3);

		// A day and more after the first two: they are gone, the recent one stays (and still answers alone).
		await later(c, 5);
		expect(await ledgerKeys(c)).toHaveLength(1);
		expect((await exchange(c, recent)).body).toMatchObject({ authorizer_appid: "wxendsled3acct" });
		expect((await componentStats(c)).api_query_auth).toBe(exchanged + 1);
		// A pruned code sent again is WeChat's to refuse (single use): a 400 that says to start again, no token minted.
		const late = await exchange(c, early[0]!);
		expect(late.status).toBe(400);
		expect(late.body.message).toMatch(/start the authorisation again/);
		expect((await call("/token?appid=wxendsled1acct")).status).toBe(200);
	});

	it("prunes entries stored before the ledger kept time keys, however many (in batches)", async () => {
		const c = C[0]!;
		expect(await pushTicket(c)).toBe("success");
		// More than one storage batch of them (128 keys a put or a delete).
		const OLD_ENTRIES = 150;
		await runInDurableObject(componentAuthority(env, c.component_appid), async (_o, state) => {
			await state.storage.delete("auth_code_ledger_indexed");
			for (let n = 0; n < OLD_ENTRIES; n++) {
				await state.storage.put(`auth_code:${n.toString(16).padStart(64, "0")}`, { receivedAt: Date.now(), authorizerAppid: "wxendsold0acct", funcInfo: [1], exchangedAt: Date.now() });
			}
		});
		await later(c, 1);
		expect(await ledgerKeys(c)).toHaveLength(OLD_ENTRIES);
		await later(c, 24);
		expect(await ledgerKeys(c)).toEqual([]);
	});
});
