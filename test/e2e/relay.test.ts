/**
 * relay/nginx.conf, run by the real nginx between the broker and the WeChat simulator: the broker with the
 * relay key gets tokens through it and its gateway forwards SDKs' business calls through it, the broker
 * without gets a clear error naming the relay, and nothing of a query string (where classic mode puts the
 * AppSecret) reaches nginx's logs.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { relayTestConf } from "./relay-recipe";
import { freePort, startBroker, startNginx, startSimulator, type Broker, type BrokerApp, type Nginx, type Simulator } from "./stack";

const RELAY_KEY = "e2e-relay-key-0123456789abcdef";
const API_KEY = "e2e-admin-key-0123456789abcdef";
const APPS: BrokerApp[] = [
	{ appid: "wxrelaystable", secret: "sec-wxrelaystable-do-not-leak", mode: "stable" },
	{ appid: "wxrelayclassic", secret: "sec-wxrelayclassic-do-not-leak", mode: "classic" },
];

let sim: Simulator;
let nginx: Nginx;
let admitted: Broker & { logs: string[] };
let refused: Broker & { logs: string[] };

beforeAll(async () => {
	sim = await startSimulator({ apps: APPS.map(({ appid, secret }) => ({ appid, secret })) });
	const port = await freePort();
	nginx = await startNginx(relayTestConf(sim.url, port, RELAY_KEY), port);
	const keys = [{ name: "e2e", key: API_KEY, apps: ["*"], admin: true }];
	const vars = { WECHAT_API_BASE: `${nginx.url}/wechat`, WECHAT_TIMEOUT_MS: "2000" };
	admitted = await startBroker({ apps: APPS, keys, vars: { ...vars, WECHAT_RELAY_HEADERS: JSON.stringify({ "X-Relay-Key": RELAY_KEY }) } });
	refused = await startBroker({ apps: APPS, keys, vars });
});

afterAll(async () => {
	await Promise.all([admitted?.dispose(), refused?.dispose()]);
	await nginx?.stop();
	await sim?.close();
});

async function getToken(broker: Broker, appid: string): Promise<{ status: number; body: Record<string, unknown> }> {
	const res = await fetch(`${broker.url}/token?appid=${appid}`, { headers: { authorization: `Bearer ${API_KEY}` } });
	return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function simCalls(appid: string): Promise<number> {
	const res = await fetch(`${sim.url}/__sim/stats?appid=${appid}`);
	const { apps } = (await res.json()) as { apps: Record<string, { token: number; stable_token: number } | undefined> };
	return (apps[appid]?.token ?? 0) + (apps[appid]?.stable_token ?? 0);
}

async function wechatAccepts(token: string): Promise<boolean> {
	const res = await fetch(`${sim.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`);
	return ((await res.json()) as { errcode?: number }).errcode === undefined;
}

function relayLogs(): string {
	return readdirSync(join(nginx.dir, "logs")).map((file) => readFileSync(join(nginx.dir, "logs", file), "utf8")).join("\n");
}

describe("the broker behind the relay", () => {
	it("gets tokens through the relay when it sends WECHAT_RELAY_HEADERS (stable and classic)", async () => {
		for (const app of APPS) {
			const res = await getToken(admitted, app.appid);
			expect(res.status, JSON.stringify(res.body)).toBe(200);
			expect(await wechatAccepts(res.body.access_token as string)).toBe(true);
		}
		const access = readFileSync(join(nginx.dir, "logs", "access.log"), "utf8");
		expect(access).toMatch(/"POST \/wechat\/cgi-bin\/stable_token" 200 /);
		expect(access).toMatch(/"GET \/wechat\/cgi-bin\/token" 200 /);
	});

	it("forwards an SDK's business call through the relay with the header (the gateway, not only token calls)", async () => {
		const app = APPS[0]!;
		const issued = await fetch(`${admitted.url}/cgi-bin/token?grant_type=client_credential&appid=${app.appid}&secret=${API_KEY}`);
		const { access_token: token } = (await issued.json()) as { access_token: string };
		const res = await fetch(`${admitted.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`, { headers: { "x-relay-key": "wrong" } });
		// Without the relay's key the gateway would pass nginx's 403 back as it came.
		expect(res.status).toBe(200);
		expect(await res.json()).toMatchObject({ ip_list: expect.any(Array) });
		expect(readFileSync(join(nginx.dir, "logs", "access.log"), "utf8")).toMatch(/"GET \/wechat\/cgi-bin\/getcallbackip" 200 /);
	});

	it("is refused without the header: 503 naming the relay, and WeChat never called", async () => {
		const before = await simCalls(APPS[0]!.appid);
		const res = await getToken(refused, APPS[0]!.appid);
		expect(res.status).toBe(503);
		expect(res.body.error).toBe("wechat_unreachable");
		expect(res.body.message).toMatch(/answered HTTP 403: a relay there refused the broker; check that WECHAT_RELAY_HEADERS/);
		expect(await simCalls(APPS[0]!.appid)).toBe(before);
		expect(readFileSync(join(nginx.dir, "logs", "access.log"), "utf8")).toMatch(/"POST \/wechat\/cgi-bin\/stable_token" 403 /);
	});
});

describe("the relay itself", () => {
	it("refuses a request with no key or a wrong one, and forwards /wecom/ with the right one", async () => {
		const path = "/wecom/cgi-bin/getcallbackip?access_token=not-a-token";
		for (const headers of [{}, { "x-relay-key": "wrong" }, { "x-relay-key": "" }] as Record<string, string>[]) {
			const res = await fetch(`${nginx.url}${path}`, { headers });
			expect(res.status).toBe(403);
			expect(await res.json()).toMatchObject({ errmsg: expect.stringMatching(/X-Relay-Key missing or wrong/) });
		}
		const res = await fetch(`${nginx.url}${path}`, { headers: { "x-relay-key": RELAY_KEY } });
		expect(res.status).toBe(200);
		// The simulator's own answer: the relay forwarded it.
		expect(await res.json()).toMatchObject({ errcode: 40014 });
	});

	it("never writes a query string, an AppSecret or a token to its logs", async () => {
		const logs = relayLogs();
		expect(logs).toContain("/wechat/cgi-bin/token");
		expect(logs).not.toContain("?");
		for (const app of APPS) expect(logs).not.toContain(app.secret);
		expect(logs).not.toContain("not-a-token");
		for (const line of [...admitted.logs, ...refused.logs]) for (const app of APPS) expect(line).not.toContain(app.secret);
	});
});
