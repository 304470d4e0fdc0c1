/**
 * WeCom through the gateway: /cgi-bin/gettoken answered by the broker with a broker key as corpsecret (the
 * entry picked by corpid and the key's scope), WeCom business calls forwarded to WECOM_API_BASE with the
 * relay headers, healed on WeCom's 40014, and WeCom's 40001 (a bad secret there) passed back untouched.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { allWeComApps, KEYS, WECOM_GATEWAY_CORP, WECOM_SINGLE_CORP, type WeComTestApp } from "./fixtures";
import { gw as gwAll, type GatewayResponse } from "./gateway-helpers";
import { call, interceptUpstream, sim, simUrl } from "./helpers";

/** The one entry WECOM_KEYS.agent may use: what a WeCom service's SDK sends as corpsecret is scoped to it. */
const WECOM_AGENT_KEY_ENTRY = `${WECOM_GATEWAY_CORP}-1000001`;
const WECOM_KEYS = {
	agent: "wecom-agent-key-0123456789abcdef",
	/** Scoped to two entries of WECOM_GATEWAY_CORP: gettoken cannot tell which one is meant. */
	twoAgents: "wecom-two-agents-key-0123456789abcdef",
} as const;
/** This file's API_KEYS: the tests' unscoped key and the two WeCom service keys (the shared fixtures stay as they are). */
const API_KEYS = JSON.stringify([
	{ name: "all-apps", key: KEYS.all, apps: ["*"] },
	{ name: "wecom-service", key: WECOM_KEYS.agent, apps: [WECOM_AGENT_KEY_ENTRY] },
	{ name: "wecom-two", key: WECOM_KEYS.twoAgents, apps: [`${WECOM_GATEWAY_CORP}-1000002`, `${WECOM_GATEWAY_CORP}-1000003`] },
]);
const gw = (path: string, init: RequestInit = {}) => gwAll(path, init, { API_KEYS });

const entry = (appid: string): WeComTestApp => allWeComApps().find((a) => a.appid === appid)!;
const gettoken = (corpid: string, key: string) => gw(`/cgi-bin/gettoken?corpid=${corpid}&corpsecret=${encodeURIComponent(key)}`);
const ipList = (token: string) => `/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`;
const gettokenCalls = async (corpid: string) => (await sim.wecomCalls(corpid)).gettoken ?? 0;
/** WeCom's own callback egress list, as the simulator's /qyapi serves it: the call went to WECOM_API_BASE. */
const WECOM_IP = "182.254.11.176";

async function brokerToken(appid: string): Promise<string> {
	const res = await call(`/token?appid=${appid}`);
	expect(res.status).toBe(200);
	return res.body.access_token as string;
}

function expectWeComError(res: GatewayResponse, errcode: number, message?: RegExp): void {
	expect(res.status).toBe(200);
	expect(res.headers.get("content-type")).toBe("application/json; charset=UTF-8");
	expect(res.json?.errcode, JSON.stringify(res.json)).toBe(errcode);
	if (message) expect(res.json?.errmsg).toMatch(message);
}

describe("GET /cgi-bin/gettoken", () => {
	it("answers the one entry of the corp the key may use, in WeCom's shape, with a token WeCom accepts", async () => {
		const res = await gettoken(WECOM_GATEWAY_CORP, WECOM_KEYS.agent);
		expect(res.status).toBe(200);
		expect(Object.keys(res.json!).sort()).toEqual(["access_token", "errcode", "errmsg", "expires_in"]);
		expect(res.json).toMatchObject({ errcode: 0, errmsg: "ok" });
		expect(res.json!.expires_in).toBeGreaterThan(7000);
		expect(res.json!.access_token).toBe(await brokerToken(WECOM_AGENT_KEY_ENTRY));
		expect(await sim.checkWeCom(res.json!.access_token as string)).toBe(0);
	});

	it("picks a corp's only entry for an unscoped key", async () => {
		const res = await gettoken(WECOM_SINGLE_CORP, KEYS.all);
		expect(res.json?.errcode).toBe(0);
		expect(res.json!.access_token).toBe(await brokerToken(`${WECOM_SINGLE_CORP}-1000001`));
	});

	it.each([
		["an unscoped key", KEYS.all, 6],
		["a key scoped to two of its entries", WECOM_KEYS.twoAgents, 2],
	])("refuses %s on a corp with several entries, naming them and asking for a key scoped to one, with no WeCom call", async (_name, key, n) => {
		const before = await gettokenCalls(WECOM_GATEWAY_CORP);
		const res = await gettoken(WECOM_GATEWAY_CORP, key);
		expectWeComError(res, 40001, new RegExp(`may use ${n} entries of corp ${WECOM_GATEWAY_CORP} \\(.*${WECOM_GATEWAY_CORP}-1000002, ${WECOM_GATEWAY_CORP}-1000003.*\\).*API_KEYS hold only your entry`));
		expect(res.json).not.toHaveProperty("access_token");
		expect(await gettokenCalls(WECOM_GATEWAY_CORP)).toBe(before);
	});

	it.each([
		["no corpid", `/cgi-bin/gettoken?corpsecret=${KEYS.all}`, 41002, /corpid missing/],
		["no corpsecret", `/cgi-bin/gettoken?corpid=${WECOM_SINGLE_CORP}`, 41004, /send your broker API key as the corpsecret/],
		["a corpsecret that is no broker key", `/cgi-bin/gettoken?corpid=${WECOM_SINGLE_CORP}&corpsecret=not-a-key`, 40001, /must be a broker API key/],
		["the entry's real Secret", `/cgi-bin/gettoken?corpid=${WECOM_SINGLE_CORP}&corpsecret=${entry(`${WECOM_SINGLE_CORP}-1000001`).secret}`, 40001, /not the app's Secret/],
		["an unknown corp", `/cgi-bin/gettoken?corpid=wwnosuchcorp&corpsecret=${KEYS.all}`, 40013, /corp wwnosuchcorp has no WeCom entry.*WECHAT_APPS/],
		["a scoped key on a corp outside its scope", `/cgi-bin/gettoken?corpid=${WECOM_SINGLE_CORP}&corpsecret=${WECOM_KEYS.agent}`, 40001, /"wecom-service" may use no WeCom entry of corp/],
		["a scoped key on a corp that does not exist (the same answer)", `/cgi-bin/gettoken?corpid=wwnosuchcorp&corpsecret=${WECOM_KEYS.agent}`, 40001, /"wecom-service" may use no WeCom entry of corp/],
	])("refuses %s with WeCom's errcode and what to do", async (_name, path, errcode, message) => {
		expectWeComError(await gw(path), errcode, message);
	});

	it("is a GET", async () => {
		expectWeComError(await gw(`/cgi-bin/gettoken?corpid=${WECOM_SINGLE_CORP}&corpsecret=${KEYS.all}`, { method: "POST" }), 43001);
	});
});

describe("forwarding WeCom calls", () => {
	it("sends a call made with a WeCom token to WECOM_API_BASE and returns WeCom's answer byte for byte", async () => {
		const token = (await gettoken(WECOM_GATEWAY_CORP, WECOM_KEYS.agent)).json!.access_token as string;
		const before = (await sim.wecomCalls(WECOM_GATEWAY_CORP)).getcallbackip ?? 0;
		const via = await gw(ipList(token));
		expect(via.json).toMatchObject({ errcode: 0, errmsg: "ok" });
		expect(via.json!.ip_list).toContain(WECOM_IP);
		const direct = await fetch(`${simUrl}/qyapi${ipList(token)}`);
		expect(via.bytes).toEqual(new Uint8Array(await direct.arrayBuffer()));
		expect((await sim.wecomCalls(WECOM_GATEWAY_CORP)).getcallbackip).toBe(before + 2);
	});

	it("heals a token WeCom revoked early (40014) inside one call, with one gettoken, relay headers on both attempts", async () => {
		const appid = `${WECOM_GATEWAY_CORP}-1000005`;
		const token = await brokerToken(appid);
		await sim.wecomRevoke(WECOM_GATEWAY_CORP, "1000005");
		expect(await sim.checkWeCom(token)).toBe(40014);
		const before = await sim.wecomCalls(WECOM_GATEWAY_CORP);
		const relayHeaders = { "X-Relay-Key": "relay-key-for-the-broker-only" };
		const sent: string[] = [];
		const restore = interceptUpstream((url, init) => {
			if (url.pathname.endsWith("/cgi-bin/getcallbackip")) sent.push(`${url.pathname} ${new Headers(init?.headers).get("x-relay-key")}`);
			return undefined;
		});
		let body: Record<string, unknown>;
		try {
			const ctx = createExecutionContext();
			const res = await worker.fetch(new Request(`https://broker.test${ipList(token)}`), { ...env, API_KEYS, WECHAT_RELAY_HEADERS: JSON.stringify(relayHeaders) }, ctx);
			await waitOnExecutionContext(ctx);
			body = (await res.json()) as Record<string, unknown>;
		} finally {
			restore();
		}
		expect(body.ip_list).toContain(WECOM_IP);
		expect(sent).toEqual(Array(2).fill(`/qyapi/cgi-bin/getcallbackip ${relayHeaders["X-Relay-Key"]}`));
		const after = await sim.wecomCalls(WECOM_GATEWAY_CORP);
		expect(after.gettoken! - before.gettoken!).toBe(1);
		expect(after.getcallbackip! - before.getcallbackip!).toBe(2);
		const healed = await brokerToken(appid);
		expect(healed).not.toBe(token);
		expect(await sim.checkWeCom(healed)).toBe(0);
	});

	it("passes WeCom's 40001 (a bad secret there, not a bad token) back without refreshing the token", async () => {
		const token = await brokerToken(WECOM_AGENT_KEY_ENTRY);
		await sim.fault({ appid: WECOM_GATEWAY_CORP, endpoint: "wecom_getcallbackip", kind: "errcode", errcode: 40001, times: 1 });
		const before = await gettokenCalls(WECOM_GATEWAY_CORP);
		const res = await gw(ipList(token));
		expect(res.json?.errcode).toBe(40001);
		expect(await gettokenCalls(WECOM_GATEWAY_CORP)).toBe(before);
		expect(await brokerToken(WECOM_AGENT_KEY_ENTRY)).toBe(token);
	});
});
