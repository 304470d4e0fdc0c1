/**
 * The gateway for a vendor's own component code: POST /cgi-bin/component/api_component_token answered from
 * the broker for a broker key as component_appsecret (the ticket field ignored), and component API calls
 * carrying a component_access_token the broker issued forwarded upstream with the current token, healed on
 * 40001 like any call; a component token anywhere else, or an account's token named as one, never leaves.
 */
import { abortAllDurableObjects } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { componentAuthority } from "../../src/authority/stub";
import { KEYS, testComponent, type TestComponent } from "./fixtures";
import { call, deferred, interceptUpstream, never, sim, wechatAnswer } from "./helpers";
import { componentStats, componentStatus, pushTicket, registryKey } from "./component-helpers";
import { expectWeChatError, gw, postJson, unknownTokenCalls } from "./gateway-helpers";

const T = Array.from({ length: 16 }, (_, n) => testComponent("comptok", n)) as TestComponent[];

function componentToken(c: TestComponent, secret: unknown, extra: Record<string, unknown> = {}) {
	return postJson("/cgi-bin/component/api_component_token", { component_appid: c.component_appid, component_appsecret: secret, component_verify_ticket: "ignored", ...extra });
}

function preAuthCode(c: TestComponent, token: string, name = "component_access_token") {
	return postJson(`/cgi-bin/component/api_create_preauthcode?${name}=${encodeURIComponent(token)}`, { component_appid: c.component_appid });
}

describe("api_component_token through the gateway", () => {
	/** Scoped to another component than the ones this describe asks for. */
	let vendor: string;
	beforeAll(async () => {
		vendor = await registryKey("gwcomponent-vendor", ["component:wxcompcomptok00"]);
	});

	it("answers a broker key with the broker's component token in WeChat's shape, whatever ticket is sent", async () => {
		const c = T[7]!;
		await pushTicket(c);
		const res = await componentToken(c, KEYS.all);
		expect(res.status).toBe(200);
		expect(Object.keys(res.json!).sort()).toEqual(["component_access_token", "expires_in"]);
		const direct = await call(`/component-token?component_appid=${c.component_appid}`, { key: KEYS.all });
		expect(direct.body.component_access_token).toBe(res.json!.component_access_token);
		expect(res.json!.expires_in).toBeLessThanOrEqual(6300);
		expect((await componentStats(c)).api_component_token).toBe(1);
	});

	it("refuses in WeChat's words: a wrong key, a key outside the component, an unknown component, GET, a missing appid", async () => {
		const c = T[8]!;
		expectWeChatError(await componentToken(c, c.secret), 40125);
		expectWeChatError(await componentToken(c, vendor), 40125);
		expectWeChatError(await componentToken({ ...c, component_appid: "wxnosuchcomponent" }, KEYS.all), 61011);
		expectWeChatError(await gw("/cgi-bin/component/api_component_token"), 43002);
		expectWeChatError(await postJson("/cgi-bin/component/api_component_token", { component_appsecret: KEYS.all }), 41002);
		expectWeChatError(await componentToken(c, 7), 47001);
		expect((await componentStats(c)).api_component_token).toBe(0);
	});
});

describe("component API calls through the gateway", () => {
	it("forwards a call with a component token the broker issued, under either name, and WeChat's answer comes back", async () => {
		const c = T[9]!;
		await pushTicket(c);
		const token = (await componentToken(c, KEYS.all)).json!.component_access_token as string;
		for (const name of ["component_access_token", "access_token"]) {
			const res = await preAuthCode(c, token, name);
			expect(res.status).toBe(200);
			expect(res.json?.pre_auth_code, JSON.stringify(res.json)).toMatch(/^preauthcode@@@/);
		}
		expect((await componentStats(c)).api_create_preauthcode).toBe(2);
	});

	it("heals a call WeChat refuses with 40001: the token is checked, replaced, and the call sent again; the replaced one is refused after", async () => {
		const c = T[10]!;
		await pushTicket(c);
		const token = (await componentToken(c, KEYS.all)).json!.component_access_token as string;
		await sim.fault({ appid: c.component_appid, endpoint: "api_create_preauthcode", kind: "errcode", errcode: 40001, times: 1 });
		// The probe (api_get_authorizer_list) confirms WeChat refuses it.
		await sim.fault({ appid: c.component_appid, endpoint: "api_get_authorizer_list", kind: "errcode", errcode: 40001, times: 1 });
		const res = await preAuthCode(c, token);
		expect(res.json?.pre_auth_code, JSON.stringify(res.json)).toMatch(/^preauthcode@@@/);
		const stats = await componentStats(c);
		// A new component token may revoke the old one at once: WeChat is asked first (one probe), as for classic.
		expect(stats.api_get_authorizer_list).toBe(1);
		expect(stats.api_component_token).toBe(2);
		expect(stats.api_create_preauthcode).toBe(2);
		const fresh = await call(`/component-token?component_appid=${c.component_appid}`, { key: KEYS.all });
		expect(fresh.body.component_access_token).not.toBe(token);
		// No overlap is assumed: the token it replaced is no longer a gateway credential.
		expectWeChatError(await preAuthCode(c, token), 40001);
		expect((await componentStats(c)).api_create_preauthcode).toBe(2);
	});

	it("never forwards a component token off the component APIs, an account's token named component_access_token, two tokens, or a forged one", async () => {
		const c = T[11]!;
		await pushTicket(c);
		const token = (await componentToken(c, KEYS.all)).json!.component_access_token as string;
		const before = await unknownTokenCalls();
		expectWeChatError(await gw(`/cgi-bin/user/get?access_token=${encodeURIComponent(token)}`), 40001);
		const appToken = (await call("/token?appid=wxauths00", { key: KEYS.all })).body.access_token as string;
		expectWeChatError(await preAuthCode(c, appToken), 40001);
		expectWeChatError(await postJson(`/cgi-bin/component/api_create_preauthcode?component_access_token=${encodeURIComponent(token)}&access_token=x`, { component_appid: c.component_appid }), 40001);
		expectWeChatError(await preAuthCode(c, "forged-component-token"), 40001);
		expectWeChatError(await postJson("/cgi-bin/component/api_create_preauthcode", { component_appid: c.component_appid }), 41001);
		expect(await unknownTokenCalls()).toEqual(before);
		expect((await componentStats(c)).api_create_preauthcode).toBe(0);
	});
});

describe("a restart while a component token is being replaced", () => {
	it("the successor no longer hands out the token the unanswered call may have revoked (no overlap assumed)", async () => {
		const c = T[12]!;
		await pushTicket(c);
		const first = (await componentToken(c, KEYS.all)).json!.component_access_token as string;
		await sim.fault({ appid: c.component_appid, endpoint: "api_create_preauthcode", kind: "errcode", errcode: 40001, times: 1 });
		const sent = deferred();
		const restore = interceptUpstream((url, init, real) => {
			if (url.pathname.endsWith("/api_get_authorizer_list")) return wechatAnswer({ errcode: 40001, errmsg: "invalid credential" });
			// WeChat mints the new token; the instance dies before its answer arrives.
			if (url.pathname.endsWith("/api_component_token")) return real(url, init).then(() => { sent.resolve(); return never(); });
			return undefined;
		});
		const healing = preAuthCode(c, first).catch(() => null);
		await sent.promise;
		await abortAllDurableObjects();
		void healing;
		restore();
		expect((await componentStatus(c)).token).toBeNull();
		await componentAuthority(env, c.component_appid).idle();
		const read = await call(`/component-token?component_appid=${c.component_appid}`, { key: KEYS.all });
		expect(read.status).toBe(200);
		expect(read.body.component_access_token).not.toBe(first);
	});
});
