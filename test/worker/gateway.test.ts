/** The gateway forwards WeChat API calls made with tokens this broker issued, heals refused tokens, and is no open proxy. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { authority } from "../../src/authority/stub";
import { loadConfig } from "../../src/config/config";
import { take } from "../../src/gateway/usage-counter";
import { tokenDigest } from "../../src/edge/issued-index";
import { issuedKey } from "../../src/core/storage-keys";
import { nextQuotaReset } from "../../src/core/usage";
import worker from "../../src/index";
import { appsFor, KEYS, type TestApp } from "./fixtures";
import { expectWeChatError, gw, unknownTokenCalls } from "./gateway-helpers";
import { call, getToken, interceptUpstream, runCron, sim, simUrl, travel } from "./helpers";
import { logLines } from "./setup";

const next = appsFor("gateway");

async function tokenOf(app: TestApp): Promise<string> {
	return (await getToken(app)).body.access_token as string;
}

const ipList = (token: string) => `/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`;

/** Makes WeChat refuse the broker's current token, as another server holding the AppSecret would. */
async function revokeBehindTheBrokersBack(app: TestApp, token: string): Promise<void> {
	await sim.rotate(app);
	// Classic: the old token lives 300 s after another server's fetch. Stable: a force revokes at once.
	if (app.mode === "classic") await travel(301);
	expect(await sim.check(token)).toBe(40001);
}

/** What /status reports, without waking every test app's object: this isolate's counts, then the object's. */
async function gatewayCounts(app: TestApp): Promise<{ calls_today: number; heals_today: number }> {
	const counts = await authority(env, app.appid).gatewayUsage(app.appid, take(app.appid));
	return { calls_today: counts.calls, heals_today: counts.heals };
}

/** GET /status as an admin key scoped to this one app sees it (an unscoped one would wake every test app's object). */
async function gatewayStatus(app: TestApp): Promise<{ calls_today: number; heals_today: number }> {
	const keys = [{ name: "gateway-ops", key: KEYS.admin, apps: [app.appid], admin: true }];
	const ctx = createExecutionContext();
	const res = await worker.fetch(new Request("https://broker.test/status", { headers: { authorization: `Bearer ${KEYS.admin}` } }),
		{ ...env, API_KEYS: JSON.stringify(keys) }, ctx);
	await waitOnExecutionContext(ctx);
	const { apps } = (await res.json()) as { apps: { appid: string; gateway: { calls_today: number; heals_today: number } }[] };
	expect(apps.map((a) => a.appid)).toEqual([app.appid]);
	return apps[0]!.gateway;
}

describe.each(["stable", "classic"] as const)("%s mode", (mode) => {
	it("forwards a call made with the broker's token and returns WeChat's answer byte for byte", async () => {
		const app = next(mode);
		const token = await tokenOf(app);
		const via = await gw(ipList(token));
		const direct = await fetch(`${simUrl}${ipList(token)}`);
		expect(via.status).toBe(direct.status);
		expect(via.headers.get("content-type")).toBe(direct.headers.get("content-type"));
		expect(via.bytes).toEqual(new Uint8Array(await direct.arrayBuffer()));
		expect(via.json!.ip_list).toEqual(expect.any(Array));
		expect((await sim.calls(app)).getcallbackip).toBe(2);
	});

	it("heals a token revoked behind everyone's back inside one call, with exactly one upstream refresh", async () => {
		const app = next(mode);
		const token = await tokenOf(app);
		await revokeBehindTheBrokersBack(app, token);
		const before = await sim.calls(app);

		const res = await gw(ipList(token));
		expect(res.json!.ip_list, JSON.stringify(res.json)).toEqual(expect.any(Array));

		const after = await sim.calls(app);
		expect(after.token + after.stable_token - before.token - before.stable_token).toBe(1);
		expect(after.stable_token_force - before.stable_token_force).toBe(0);
		// Refused once, then the retry. A refusal read from a forwarded answer is evidence, not proof (forward.ts):
		// classic probes the token first (a token call revokes it); stable's normal stable_token call revokes
		// nothing and learns WeChat's live token, so it needs no probe.
		expect(after.getcallbackip - before.getcallbackip).toBe(mode === "classic" ? 3 : 2);
		const current = await tokenOf(app);
		expect(current).not.toBe(token);
		expect(await sim.check(current)).toBe(0);
		expect(await gatewayCounts(app)).toEqual({ calls_today: 1, heals_today: 1 });
	});
});

it("heals 30 concurrent calls refused for one revoked token with a single upstream refresh", async () => {
	const app = next("classic");
	const token = await tokenOf(app);
	await revokeBehindTheBrokersBack(app, token);
	const before = await sim.calls(app);
	const answers = await Promise.all(Array.from({ length: 30 }, () => gw(ipList(token))));
	expect(answers.filter((res) => Array.isArray(res.json?.ip_list))).toHaveLength(30);
	expect((await sim.calls(app)).token - before.token).toBe(1);
});

it("swaps a token a scheduled refresh replaced for the current one, so an SDK's cached token keeps working", async () => {
	const app = next("classic");
	const old = await tokenOf(app);
	await travel(7200 - 900 + 1); // due
	await runCron([app]); // WeChat keeps `old` 300 s more, and so does the gateway (review5.test.ts has the end of it)
	const current = await tokenOf(app);
	expect(current).not.toBe(old);
	const sent: string[] = [];
	interceptUpstream((url) => {
		if (url.pathname === "/cgi-bin/getcallbackip") sent.push(url.searchParams.get("access_token")!);
		return undefined;
	});
	const before = await sim.calls(app);
	const res = await gw(ipList(old));
	expect(res.json!.ip_list).toEqual(expect.any(Array));
	const after = await sim.calls(app);
	expect(sent).toEqual([current]); // sent once, with the current token
	expect(after.token).toBe(before.token);
	expect(await tokenOf(app)).toBe(current);
});

describe("not an open proxy", () => {
	it("refuses a forged token with 40001 and never reaches WeChat", async () => {
		const before = await unknownTokenCalls();
		for (const forged of ["forged-token-0123456789", "86_" + "x".repeat(150), (await tokenOf(next("stable"))) + "x"]) {
			expectWeChatError(await gw(ipList(forged)), 40001);
			expectWeChatError(await gw(`/cgi-bin/ticket/getticket?access_token=${forged}&type=jsapi`), 40001);
			expectWeChatError(await gw(`/cgi-bin/message/custom/send?access_token=${forged}`, { method: "POST", body: "{}" }), 40001);
		}
		expect(await unknownTokenCalls()).toEqual(before);
	});

	it("refuses a real WeChat token that the broker did not issue", async () => {
		const app = next("classic");
		// Another server holding the AppSecret fetches its own token: valid at WeChat, not the broker's.
		const own = await fetch(`${simUrl}/cgi-bin/token?grant_type=client_credential&appid=${app.appid}&secret=${app.secret}`);
		const { access_token: theirs } = (await own.json()) as { access_token: string };
		expect(await sim.check(theirs)).toBe(0);
		const before = await sim.calls(app);
		expectWeChatError(await gw(ipList(theirs)), 40001);
		expect(await sim.calls(app)).toEqual(before);
	});

	it("answers 41001 without a token, and 40001 for two tokens or an escaped parameter name", async () => {
		const token = await tokenOf(next("classic"));
		const before = await unknownTokenCalls();
		expectWeChatError(await gw("/cgi-bin/getcallbackip"), 41001);
		expectWeChatError(await gw("/cgi-bin/getcallbackip?access_token="), 41001);
		expectWeChatError(await gw(`/cgi-bin/getcallbackip?access_token=${token}&access_token=forged`), 40001);
		expectWeChatError(await gw(`/cgi-bin/getcallbackip?access%5Ftoken=${token}`), 40001);
		expectWeChatError(await gw(`/cgi-bin/getcallbackip?access_token=%E0%A4%A`), 40001);
		expect(await unknownTokenCalls()).toEqual(before);
	});

	it("refuses /sns/* with a message, and answers paths outside WeChat's API families with the broker's 404", async () => {
		const token = await tokenOf(next("classic"));
		const sns = await gw(`/sns/oauth2/access_token?appid=x&secret=${KEYS.all}&code=c&grant_type=authorization_code`);
		expectWeChatError(sns, 48001);
		expect(sns.json!.errmsg).toMatch(/OAuth/);
		const other = await gw(`/not-wechat/call?access_token=${token}`);
		expect(other.status).toBe(404);
		expect(other.json!.error).toBe("not_found");
		expectWeChatError(await gw(`/cgi-bin/a%2Fb?access_token=${token}`), 48001);
	});

	it("applies ALLOWED_IPS to forwarded calls too", async () => {
		const app = next("stable");
		const token = await tokenOf(app);
		const before = await sim.calls(app);
		const ctx = createExecutionContext();
		const res = await worker.fetch(new Request(`https://broker.test${ipList(token)}`, { headers: { "cf-connecting-ip": "198.51.100.1" } }),
			{ ...env, ALLOWED_IPS: "203.0.113.0/24" }, ctx);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(200);
		expect(((await res.json()) as { errcode: number }).errcode).toBe(40164);
		expect(await sim.calls(app)).toEqual(before);
	});

	it("refuses a token past its own lifetime", async () => {
		const app = next("classic");
		const token = await tokenOf(app);
		await travel(7_201);
		const before = await sim.calls(app);
		expectWeChatError(await gw(ipList(token)), 40001);
		expect(await sim.calls(app)).toEqual(before);
	});
});

it("sends only content-type, accept, accept-language and user-agent upstream, and the query as written but for the token", async () => {
	const app = next("stable");
	const token = await tokenOf(app);
	const seen: Request[] = [];
	const realFetch = globalThis.fetch;
	const spy = vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
		const request = new Request(input, init);
		if (new URL(request.url).pathname === "/cgi-bin/getcallbackip") seen.push(request.clone());
		return realFetch(request);
	});
	try {
		const res = await gw(`${ipList(token)}&extra=a%2Bb+c&x=%E4%BD%A0`, {
			headers: {
				accept: "application/json", "accept-language": "zh-CN", "user-agent": "co-wechat-api/3.11",
				cookie: "session=1", authorization: `Bearer ${KEYS.admin}`, "cf-connecting-ip": "203.0.113.1",
				"x-forwarded-for": "203.0.113.1", "x-real-ip": "203.0.113.1", "x-custom": "1",
			},
		});
		expect(res.json!.ip_list).toEqual(expect.any(Array));
	} finally {
		spy.mockRestore();
	}
	expect(seen).toHaveLength(1);
	const upstream = seen[0]!;
	expect(upstream.url).toBe(`${simUrl}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}&extra=a%2Bb+c&x=%E4%BD%A0`);
	expect([...upstream.headers.keys()].sort()).toEqual(["accept", "accept-language", "user-agent"]);
});

it("adds WECHAT_RELAY_HEADERS to every forwarded call, the retry after a heal too, over the client's own headers of those names", async () => {
	const app = next("stable");
	const token = await tokenOf(app);
	const relayHeaders = { "X-Relay-Key": "relay-key-for-the-broker-only", "User-Agent": "wx-token-broker-relay" };
	await revokeBehindTheBrokersBack(app, token);
	const sent: Headers[] = [];
	const restore = interceptUpstream((url, init) => {
		if (url.pathname === "/cgi-bin/getcallbackip") sent.push(new Headers(init?.headers));
		return undefined;
	});
	try {
		const ctx = createExecutionContext();
		const res = await worker.fetch(new Request(`https://broker.test${ipList(token)}`, {
			headers: { "x-relay-key": "what-a-client-guessed", "user-agent": "co-wechat-api/3.11", accept: "application/json" },
		}), { ...env, WECHAT_RELAY_HEADERS: JSON.stringify(relayHeaders) }, ctx);
		await waitOnExecutionContext(ctx);
		expect(((await res.json()) as { ip_list?: unknown }).ip_list).toEqual(expect.any(Array));
	} finally {
		restore();
	}
	// Refused with the revoked token, then healed and sent again: both attempts carry the configured values.
	expect(sent).toHaveLength(2);
	for (const headers of sent) {
		expect(headers.get("x-relay-key")).toBe(relayHeaders["X-Relay-Key"]);
		expect(headers.get("user-agent")).toBe(relayHeaders["User-Agent"]);
		expect(headers.get("accept")).toBe("application/json");
	}
});

it("sends the new token after a forced refresh elsewhere, at the cost of one refused call and no upstream refresh", async () => {
	const app = next("stable");
	const old = await tokenOf(app);
	expect((await gw(ipList(old))).json!.ip_list).toEqual(expect.any(Array)); // this isolate now remembers `old` as current
	// Elsewhere: another isolate's refresh reaches the object, not this isolate's memory.
	const forced = await authority(env, app.appid).forceRefresh(app.appid);
	if (!forced.ok) throw new Error("the forced refresh failed");
	expect(await sim.check(old)).toBe(40001);
	const before = await sim.calls(app);
	expect((await gw(ipList(old))).json!.ip_list).toEqual(expect.any(Array));
	const after = await sim.calls(app);
	expect(after.getcallbackip - before.getcallbackip).toBe(2);
	expect(after.stable_token).toBe(before.stable_token); // compare-and-refresh saw a stale token: nothing upstream
	expect(await tokenOf(app)).toBe(forced.record.value);
});

it("the isolate that answered a forced refresh forwards with the new token at once", async () => {
	const app = next("stable");
	const old = await tokenOf(app);
	expect((await gw(ipList(old))).json!.ip_list).toEqual(expect.any(Array));
	const forced = await call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: KEYS.admin });
	const fresh = forced.body.access_token as string;
	expectWeChatError(await gw(ipList(old)), 40001); // forced out: no gateway credential any more (DESIGN.md)
	const before = await sim.calls(app);
	expect((await gw(ipList(fresh))).json!.ip_list).toEqual(expect.any(Array));
	const after = await sim.calls(app);
	expect(after.getcallbackip - before.getcallbackip).toBe(1); // no first attempt with the revoked token
	expect(await tokenOf(app)).toBe(fresh);
});

it("returns a refusal WeChat repeats after the heal unchanged, and makes no second retry", async () => {
	const app = next("classic");
	const token = await tokenOf(app);
	// WeChat refuses the call, the object's probe of the token (also getcallbackip), and the retry with the new one.
	await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "errcode", errcode: 40001, times: 3 });
	try {
		const before = await sim.calls(app);
		expectWeChatError(await gw(ipList(token)), 40001);
		const after = await sim.calls(app);
		expect(after.getcallbackip - before.getcallbackip).toBe(3);
		expect(after.token - before.token).toBe(1);
	} finally {
		await sim.clearFaults();
	}
});

it("passes an upstream HTTP error page through with its status and content type", async () => {
	const app = next("stable");
	const token = await tokenOf(app);
	await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "http", status: 503 });
	try {
		const res = await gw(ipList(token));
		expect(res.status).toBe(503);
		expect(res.headers.get("content-type")).toMatch(/text\/html/);
		expect(new TextDecoder().decode(res.bytes)).toMatch(/503/);
	} finally {
		await sim.clearFaults();
	}
});

it("answers -1 (system error) in WeChat's shape when WeChat cannot be reached", async () => {
	const app = next("classic");
	const token = await tokenOf(app);
	await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "reset" });
	try {
		const res = await gw(ipList(token));
		expectWeChatError(res, -1);
		expect(res.json!.errmsg).toMatch(/could not reach WeChat/);
	} finally {
		await sim.clearFaults();
	}
});

it("knows its tokens from the issued-token index alone: a token whose entry is gone is refused, never looked for in every app's copy", async () => {
	const app = next("classic");
	const token = await tokenOf(app);
	await env.TOKEN_CACHE.delete(issuedKey(await tokenDigest(token)));
	await travel(11); // the removed fallback re-read every app's copy each 10 s, and recognised the token then
	const res = await gw(ipList(token));
	expectWeChatError(res, 40001);
	expect(await sim.calls(app)).toMatchObject({ getcallbackip: 0 }); // never reached WeChat
});

it("counts gateway calls per app in /status, and logs no query string", async () => {
	const app = next("stable");
	const token = await tokenOf(app);
	for (let i = 0; i < 3; i++) await gw(ipList(token));
	expect(await gatewayStatus(app)).toEqual({ calls_today: 3, heals_today: 0 });
	expect(logLines.filter((line) => /access_token=|secret=/.test(line))).toEqual([]);
	// Like the token quotas, the counts are per WeChat day (midnight China time).
	await travel(Math.ceil((nextQuotaReset(Date.now()) - Date.now()) / 1_000) + 1);
	await gw(ipList(await tokenOf(app)));
	expect(await gatewayStatus(app)).toEqual({ calls_today: 1, heals_today: 0 });
});
