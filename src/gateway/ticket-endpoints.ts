/**
 * The JS-SDK ticket endpoints, answered by the broker from the tickets it keeps instead of forwarded: each
 * forwarded getticket would spend WeChat's "very limited" getticket quota (and WeCom's 400 / 100 an hour),
 * and a fleet of SDKs each caching its own ticket is exactly the stampede the broker exists to prevent.
 *
 *   GET /cgi-bin/ticket/getticket?access_token=&type=jsapi|wx_card   official accounts
 *   GET /cgi-bin/get_jsapi_ticket?access_token=                      WeCom: the corp ticket (wx.config)
 *   GET /cgi-bin/ticket/get?access_token=&type=agent_config          WeCom: the agent ticket (wx.agentConfig)
 *
 * The access_token is the credential, as at WeChat: it must be one this broker issued (requestOwner, the
 * rule forwarding uses), and it names the app. The answer is WeChat's own success shape,
 * `{"errcode":0,"errmsg":"ok","ticket","expires_in"}`, with expires_in the time the ticket will still be
 * accepted given the broker's own refresh plan (as for GET /ticket).
 */
import type { Context } from "hono";
import type { AuthVariables } from "../access/auth";
import type { AppProfile } from "../config/config";
import { hasKind } from "../engine/kinds";
import type { CredentialType } from "../core/credentials";
import type { AppEnv } from "../env";
import { expiresInS } from "../core/lifetime";
import { requestOwner } from "./forward";
import { credentialFor, ERRCODE, WECOM_ERRCODE, WeChatError, type Platform } from "./wechat-errors";

type GatewayContext = Context<{ Bindings: AppEnv; Variables: AuthVariables }>;

const OFFICIAL_TYPES: readonly string[] = ["jsapi", "wx_card"];

/** `/cgi-bin/ticket/getticket`: an official account's jsapi or wx_card ticket. */
export async function officialTicketEndpoint(c: GatewayContext): Promise<Response> {
	requireGet(c, "wechat");
	const app = await appOf(c, "wechat");
	const type = c.req.query("type");
	if (type === undefined || !OFFICIAL_TYPES.includes(type)) {
		throw new WeChatError(ERRCODE.invalidTicketType, `invalid args (wx-token-broker: type must be jsapi or wx_card, got ${type === undefined ? "none" : JSON.stringify(type.slice(0, 32))})`);
	}
	return ticketAnswer(c, app, type as CredentialType, "wechat");
}

/** `/cgi-bin/get_jsapi_ticket`: a WeCom corp's jsapi ticket (wx.config, appId = corpid). */
export async function weComCorpTicketEndpoint(c: GatewayContext): Promise<Response> {
	requireGet(c, "wecom");
	return ticketAnswer(c, await appOf(c, "wecom"), "jsapi", "wecom");
}

/** `/cgi-bin/ticket/get?type=agent_config`: a WeCom agent's ticket (wx.agentConfig). */
export async function weComAgentTicketEndpoint(c: GatewayContext): Promise<Response> {
	requireGet(c, "wecom");
	const app = await appOf(c, "wecom");
	const type = c.req.query("type");
	if (type !== "agent_config") {
		throw new WeChatError(WECOM_ERRCODE.invalidParameter, "invalid parameter (wx-token-broker: type must be agent_config)", 200, "wecom");
	}
	if (!hasKind(app, "agent_config")) {
		throw new WeChatError(WECOM_ERRCODE.invalidParameter, `invalid parameter (wx-token-broker: ${app.appid} has no agentid, so it has no agent_config ticket; use the token of the agent's own entry, or ask the operator to add "agentid" to this entry in WECHAT_APPS)`, 200, "wecom");
	}
	return ticketAnswer(c, app, "agent_config", "wecom");
}

function requireGet(c: GatewayContext, platform: Platform): void {
	if (c.req.method !== "GET") throw new WeChatError(ERRCODE.requireGet, `require GET method (wx-token-broker: ${c.req.path} is a GET)`, 200, platform);
}

/** The app whose token the request carries, when it is of the platform the path belongs to. */
async function appOf(c: GatewayContext, platform: Platform): Promise<AppProfile> {
	const { app } = await requestOwner(c, platform);
	if (app.platform === platform) return app;
	if (platform === "wecom") {
		throw new WeChatError(ERRCODE.invalidTicketType, "invalid args (wx-token-broker: this is an official account's token; its tickets are at /cgi-bin/ticket/getticket?type=jsapi|wx_card)");
	}
	throw new WeChatError(WECOM_ERRCODE.invalidParameter, "invalid parameter (wx-token-broker: this is a WeCom token; its tickets are at /cgi-bin/get_jsapi_ticket and /cgi-bin/ticket/get?type=agent_config)", 200, "wecom");
}

async function ticketAnswer(c: GatewayContext, app: AppProfile, type: CredentialType, platform: Platform): Promise<Response> {
	const record = await credentialFor(c.env, app.appid, type, platform);
	return c.json({ errcode: 0, errmsg: "ok", ticket: record.value, expires_in: expiresInS(record, Date.now()) });
}
