/**
 * The gateway's JS-SDK ticket endpoints, answered by the broker from the tickets it keeps (never forwarded):
 * official getticket (jsapi, wx_card), WeCom get_jsapi_ticket and ticket/get?type=agent_config, in WeChat's
 * shapes, authorised by a token this broker issued, a stampede of SDK calls costing one upstream getticket.
 */
import { describe, expect, it } from "vitest";
import { appsFor, WECOM_GATEWAY_CORP, type TestApp } from "./fixtures";
import { expectWeChatError, expectWeComError, gw, unknownTokenCalls, type GatewayResponse } from "./gateway-helpers";
import { call, getToken, sim } from "./helpers";

const next = appsFor("gwticket");
const agent = `${WECOM_GATEWAY_CORP}-1000004`;
const contacts = `${WECOM_GATEWAY_CORP}-contacts`;
const SUCCESS_KEYS = ["errcode", "errmsg", "expires_in", "ticket"];

const getticket = (token: string, type?: string) => gw(`/cgi-bin/ticket/getticket?access_token=${encodeURIComponent(token)}${type === undefined ? "" : `&type=${type}`}`);
const corpTicket = (token: string) => gw(`/cgi-bin/get_jsapi_ticket?access_token=${encodeURIComponent(token)}`);
const agentTicket = (token: string, type = "agent_config") => gw(`/cgi-bin/ticket/get?access_token=${encodeURIComponent(token)}&type=${type}`);

async function tokenOf(appid: string): Promise<string> {
	const res = await call(`/token?appid=${appid}`);
	expect(res.status).toBe(200);
	return res.body.access_token as string;
}

async function brokerTicket(appid: string, type: string): Promise<string> {
	const res = await call(`/ticket?appid=${appid}&type=${type}`);
	expect(res.status).toBe(200);
	return res.body.ticket as string;
}

function expectTicket(res: GatewayResponse): string {
	expect(res.status).toBe(200);
	expect(Object.keys(res.json ?? {}).sort(), JSON.stringify(res.json)).toEqual(SUCCESS_KEYS);
	expect(res.json).toMatchObject({ errcode: 0, errmsg: "ok" });
	expect(res.json!.expires_in).toBeGreaterThan(7000);
	return res.json!.ticket as string;
}

describe.each(["stable", "classic"] as const)("%s app: /cgi-bin/ticket/getticket", (mode) => {
	it("turns 50 concurrent SDK getticket calls into one upstream getticket, and answers the broker's own ticket", async () => {
		const app = next(mode);
		const token = (await getToken(app)).body.access_token as string;
		const answers = await Promise.all(Array.from({ length: 50 }, () => getticket(token, "jsapi")));
		const tickets = new Set(answers.map(expectTicket));
		expect(tickets.size).toBe(1);
		expect((await sim.calls(app)).getticket).toBe(1);
		// Later calls, and GET /ticket, are the same kept ticket: still one call.
		for (let i = 0; i < 5; i++) expect(expectTicket(await getticket(token, "jsapi"))).toBe([...tickets][0]);
		expect(await brokerTicket(app.appid, "jsapi")).toBe([...tickets][0]);
		expect((await sim.calls(app)).getticket).toBe(1);
	});

	it("answers the wx_card ticket as its own kind", async () => {
		const app = next(mode);
		const token = (await getToken(app)).body.access_token as string;
		const card = expectTicket(await getticket(token, "wx_card"));
		expect(card).toBe(await brokerTicket(app.appid, "wx_card"));
		expect(expectTicket(await getticket(token, "jsapi"))).not.toBe(card);
		expect(await sim.calls(app)).toMatchObject({ getticket: 2, getticket_jsapi: 1, getticket_wx_card: 1 });
	});
});

describe("getticket refusals, none of which reaches WeChat", () => {
	const app: TestApp = next("stable");

	it.each([
		["no type", undefined],
		["an unknown type", "card"],
		["agent_config (WeCom's)", "agent_config"],
	])("answers 40097 invalid args for %s", async (_name, type) => {
		const token = (await getToken(app)).body.access_token as string;
		const res = await getticket(token, type);
		expectWeChatError(res, 40097);
		expect(res.json!.errmsg).toMatch(/type must be jsapi or wx_card/);
		expect((await sim.calls(app)).getticket ?? 0).toBe(0);
	});

	it("answers 40001 for a token this broker did not issue, and 41001 for none", async () => {
		const before = await unknownTokenCalls();
		expectWeChatError(await getticket("forged-0123456789abcdef0123456789abcdef", "jsapi"), 40001);
		expectWeChatError(await gw("/cgi-bin/ticket/getticket?type=jsapi"), 41001);
		expect(await unknownTokenCalls()).toEqual(before);
	});

	it("is a GET", async () => {
		const token = (await getToken(app)).body.access_token as string;
		expectWeChatError(await gw(`/cgi-bin/ticket/getticket?access_token=${token}&type=jsapi`, { method: "POST" }), 43001);
	});

	it("sends a WeCom token to WeCom's ticket paths", async () => {
		expectWeComError(await getticket(await tokenOf(agent), "jsapi"), 40058, /WeCom token.*\/cgi-bin\/get_jsapi_ticket/);
	});
});

describe("WeCom: /cgi-bin/get_jsapi_ticket and /cgi-bin/ticket/get", () => {
	it("answers the corp ticket and the agent ticket from the broker, one WeCom call each for a stampede", async () => {
		const token = await tokenOf(agent);
		const before = await sim.wecomCalls(WECOM_GATEWAY_CORP);
		const corp = await Promise.all(Array.from({ length: 20 }, () => corpTicket(token)));
		const agents = await Promise.all(Array.from({ length: 20 }, () => agentTicket(token)));
		const corpTickets = new Set(corp.map(expectTicket));
		const agentTickets = new Set(agents.map(expectTicket));
		expect([corpTickets.size, agentTickets.size]).toEqual([1, 1]);
		expect([...corpTickets][0]).toBe(await brokerTicket(agent, "jsapi"));
		expect([...agentTickets][0]).toBe(await brokerTicket(agent, "agent_config"));
		const after = await sim.wecomCalls(WECOM_GATEWAY_CORP);
		expect((after.get_jsapi_ticket ?? 0) - (before.get_jsapi_ticket ?? 0)).toBe(1);
		expect((after.ticket_get ?? 0) - (before.ticket_get ?? 0)).toBe(1);
	});

	it("answers WeCom's 40058 for another type, and for an entry without an agentid, saying what to do", async () => {
		const before = await sim.wecomCalls(WECOM_GATEWAY_CORP);
		expectWeComError(await agentTicket(await tokenOf(agent), "jsapi"), 40058, /type must be agent_config/);
		expectWeComError(await agentTicket(await tokenOf(contacts)), 40058, /has no agentid.*"agentid"/);
		expect((await sim.wecomCalls(WECOM_GATEWAY_CORP)).ticket_get ?? 0).toBe(before.ticket_get ?? 0);
	});

	it("answers WeCom's 40014 for a token this broker did not issue, and sends official tokens to getticket", async () => {
		const before = await unknownTokenCalls();
		expectWeComError(await corpTicket("forged-0123456789abcdef0123456789abcdef"), 40014, /did not issue this token.*\/cgi-bin\/gettoken/);
		expectWeComError(await agentTicket("forged-0123456789abcdef0123456789abcdef"), 40014, /did not issue/);
		expect(await unknownTokenCalls()).toEqual(before);
		const official = (await getToken(next("classic"))).body.access_token as string;
		const res = await corpTicket(official);
		expectWeChatError(res, 40097);
		expect(res.json!.errmsg).toMatch(/official account's token.*\/cgi-bin\/ticket\/getticket/);
	});
});
