/**
 * JS-SDK tickets and signatures (issue 8): the official vectors, the ticket's guarantees (one call for a
 * stampede, refreshed by the cron with no traffic, healed when its token is bad, correct whether WeChat
 * re-issues the same ticket or a new one), /jssdk/config checked the way wx.config checks it, and bad input.
 */
import { describe, expect, it } from "vitest";
import { cardSignature, jsapiSignature } from "../../src/routes/jssdk";
import { nextQuotaReset } from "../../src/core/usage";
import { appsFor, KEYS, type TestApp } from "./fixtures";
import { call, getToken, runCron, sim, statusOf, travel } from "./helpers";

const next = appsFor("tickets");

function ticket(app: TestApp, type = "jsapi") {
	return call(`/ticket?appid=${app.appid}&type=${type}`);
}

function jssdkConfig(appid: string, url: unknown, key: string = KEYS.all) {
	return call("/jssdk/config", { method: "POST", key, body: { appid, url } });
}

describe("signatures: WeChat's official vectors", () => {
	const vector = { ticket: "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg", nonce: "Wm3WZYTPz0wzccnW", timestamp: 1414587457 };

	it("signs wx.config as the JS-SDK documentation's two examples do", async () => {
		expect(await jsapiSignature(vector.ticket, vector.nonce, vector.timestamp, "http://mp.weixin.qq.com?params=value")).toBe("0f9de62fce790f9a083d5c99e95740ceb90c27ed");
		expect(await jsapiSignature(vector.ticket, vector.nonce, vector.timestamp, "http://mp.weixin.qq.com")).toBe("f4d90daf4b3bca3078ab155816175ba34c443a7b");
	});

	it("drops the #fragment before signing", async () => {
		expect(await jsapiSignature(vector.ticket, vector.nonce, vector.timestamp, "http://mp.weixin.qq.com?params=value#/route")).toBe("0f9de62fce790f9a083d5c99e95740ceb90c27ed");
	});

	it("signs a card's cardExt as the card documentation's example does", async () => {
		expect(await cardSignature(["ojZ8YtyVyr30HheH3CM73y7h4jJE", "1404896688", "pjZ8Yt1XGILfi-FUsewpnnolGgZk", "1434008071", "", "123"]))
			.toBe("f137ab68b7f8112d20ee528ab6074564e2796250");
	});
});

describe.each(["stable", "classic"] as const)("%s app: the jsapi ticket", (mode) => {
	it("turns 50 concurrent cold readers into one getticket call and one ticket", async () => {
		const app = next(mode);
		const answers = await Promise.all(Array.from({ length: 50 }, () => ticket(app)));
		expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
		expect(new Set(answers.map((a) => a.body.ticket)).size).toBe(1);
		expect(answers[0]!.body.expires_in).toBeGreaterThan(7000);
		const calls = await sim.calls(app);
		expect(calls.getticket).toBe(1);
		expect(await sim.tokenCalls(app)).toBe(1); // the token the ticket was asked with
	});

	it("is refreshed by the cron with no traffic once due, and never before", async () => {
		const app = next(mode);
		await sim.configure(app, { ticket_refetch: "new" });
		const first = (await ticket(app)).body.ticket as string;
		await travel(7200 - 901);
		await runCron([app]);
		expect((await sim.calls(app)).getticket).toBe(1);
		await travel(2);
		await runCron([app]);
		expect((await sim.calls(app)).getticket).toBe(2);
		const second = (await ticket(app)).body.ticket as string;
		expect(second).not.toBe(first);
	});

	it("heals the token when getticket refuses it, then gets the ticket with the new one", async () => {
		const app = next(mode);
		const token = (await getToken(app)).body.access_token as string;
		await sim.revoke(app); // behind the broker's back
		expect(await sim.check(token)).not.toBe(0);
		const res = await ticket(app);
		expect(res.status).toBe(200);
		const healed = (await getToken(app)).body.access_token as string;
		expect(healed).not.toBe(token);
		expect(await sim.check(healed)).toBe(0);
		expect((await sim.calls(app)).getticket).toBe(2); // refused once, then the retry with the new token
		const signed = await jssdkConfig(app.appid, "https://example.com/page?x=1");
		expect(await sim.verify({ appid: app.appid, url: "https://example.com/page?x=1", ...pick(signed.body) })).toEqual({ ok: true });
	});
});

it("WeChat re-issuing the same ticket: no early refetch loop, a new ticket once the old one expires", async () => {
	const app = next("stable");
	await sim.configure(app, { ticket_refetch: "same" });
	const first = (await ticket(app)).body.ticket as string;
	await travel(7200 - 899); // due
	await runCron([app]);
	expect((await sim.calls(app)).getticket).toBe(2); // WeChat answered the same ticket, with what is left of it
	for (let i = 0; i < 5; i++) {
		await travel(120);
		await runCron([app]);
	}
	expect((await sim.calls(app)).getticket).toBe(2); // not asked again while the same ticket would come back
	expect((await ticket(app)).body.ticket).toBe(first);
	await travel(300);
	const after = await ticket(app);
	expect(after.status).toBe(200);
	expect(after.body.ticket).not.toBe(first);
	expect((await sim.calls(app)).getticket).toBe(3);
});

describe("POST /jssdk/config", () => {
	const app = next("stable");

	it("answers a config wx.config accepts, with appId, timestamp and nonceStr, and no ticket", async () => {
		const url = "https://shop.example.com/pay?order=42#/confirm";
		const res = await jssdkConfig(app.appid, url);
		expect(res.status).toBe(200);
		expect(Object.keys(res.body).sort()).toEqual(["appId", "nonceStr", "signature", "timestamp"]);
		expect(res.body.appId).toBe(app.appid);
		expect(Math.abs((res.body.timestamp as number) - Date.now() / 1_000)).toBeLessThan(2);
		expect(await sim.verify({ appid: app.appid, url, ...pick(res.body) })).toEqual({ ok: true });
		expect(await sim.verify({ appid: app.appid, url: "https://shop.example.com/other", ...pick(res.body) })).toMatchObject({ ok: false });
	});

	it.each([
		[undefined, /url is required/],
		["/relative/page", /absolute http\(s\) URL/],
		["ftp://example.com/file", /absolute http\(s\) URL/],
		[`https://example.com/${"a".repeat(2100)}`, /longer than 2048/],
		[42, /url is required/],
	])("refuses url %s with 400 and what to send", async (url, message) => {
		const before = (await sim.calls(app)).getticket ?? 0;
		const res = await jssdkConfig(app.appid, url);
		expect(res.status).toBe(400);
		expect(res.body.message).toMatch(message);
		expect((await sim.calls(app)).getticket ?? 0).toBe(before);
	});
});

describe("bad requests for tickets", () => {
	const app = next("classic");

	it("refuses an unknown type, listing the types", async () => {
		const res = await ticket(app, "card");
		expect(res.status).toBe(400);
		expect(res.body.message).toMatch(/jsapi, wx_card, agent_config/);
	});

	it("refuses agent_config for an official account, naming its tickets", async () => {
		const res = await ticket(app, "agent_config");
		expect(res.status).toBe(400);
		expect(res.body.message).toMatch(/official account.*jsapi, wx_card/);
	});

	it("needs an admin key to force a ticket", async () => {
		expect((await call(`/ticket/refresh?appid=${app.appid}&type=jsapi`, { method: "POST" })).status).toBe(403);
		const forced = await call(`/ticket/refresh?appid=${app.appid}&type=wx_card`, { method: "POST", key: KEYS.admin });
		expect(forced.status).toBe(200);
		expect(typeof forced.body.ticket).toBe("string");
	});
});

it("/status lists every credential with masked values and its calls today", async () => {
	const app = next("stable");
	const full = (await ticket(app, "wx_card")).body.ticket as string;
	const status = await statusOf(app);
	const credentials = status.credentials as Array<Record<string, any>>;
	expect(credentials.map((c) => c.type)).toEqual(["token", "jsapi", "wx_card"]);
	const card = credentials.find((c) => c.type === "wx_card")!;
	expect(card.value).toMatch(/…\(\d+ chars\)$/);
	expect(card.value).not.toContain(full);
	expect(card.calls_today).toBe(1);
	expect(card.expires_in).toBeGreaterThan(7000);
	expect(credentials.find((c) => c.type === "jsapi")!.value).toBeNull(); // never asked for: not fetched
});

function pick(body: Record<string, unknown>) {
	return { timestamp: body.timestamp, nonceStr: body.nonceStr, signature: body.signature };
}

it("an admin may force a ticket of a stable app whose 20 daily token forces are spent", async () => {
	const app = next("stable");
	await travel(Math.ceil((nextQuotaReset(Date.now()) - Date.now()) / 1_000) + 1); // one WeChat day
	await getToken(app);
	for (let i = 0; i < 20; i++) {
		expect((await call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: KEYS.admin })).status).toBe(200);
		await travel(31);
	}
	expect((await call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: KEYS.admin })).status).toBe(429);
	const forced = await call(`/ticket/refresh?appid=${app.appid}&type=jsapi`, { method: "POST", key: KEYS.admin });
	expect(forced.status).toBe(200);
	expect(typeof forced.body.ticket).toBe("string");
});
