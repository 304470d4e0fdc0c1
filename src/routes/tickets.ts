/**
 * JS-SDK tickets and signatures (DESIGN.md, "Credentials beyond the access_token"):
 *   GET  /ticket?appid=&type=jsapi|wx_card|agent_config  → {"ticket", "expires_in"}
 *   POST /jssdk/config {"appid", "url"}                  → {"appId", "timestamp", "nonceStr", "signature"}
 *                                                          (+ "agentConfig" for a WeCom app with an agentid)
 *   POST /ticket/refresh?appid=&type=                    → a new ticket now (admin)
 * Same key scopes as /token. A page's signature is made here, so the ticket itself never has to reach it.
 */
import type { Context, Hono } from "hono";
import { requireAdmin, requireApp } from "../access/auth";
import type { AppProfile } from "../config/config";
import { hasKind, kindsOf } from "../engine/kinds";
import type { CredentialType } from "../core/credentials";
import { BrokerError } from "../core/errors";
import { forceRefreshHere, readCredential, readJsonObject, resolveApp, unwrap, type BrokerEnv } from "../access/reads";
import { pageUrlProblem, signPage } from "./jssdk";
import { expiresInS, type CredentialRecord } from "../core/lifetime";

const TICKET_TYPES = ["jsapi", "wx_card", "agent_config"] as const;
const CONFIG_HINT = 'The body must be JSON like {"appid": "wx…", "url": "https://example.com/page?x=1"} (the page\'s location.href without #…).';

function ticketType(c: Context<BrokerEnv>, app: AppProfile): CredentialType {
	const type = c.req.query("type") ?? "jsapi";
	if (!(TICKET_TYPES as readonly string[]).includes(type)) {
		throw new BrokerError("bad_request", `type must be one of ${TICKET_TYPES.join(", ")} (jsapi is the default).`);
	}
	if (!hasKind(app, type as CredentialType)) {
		const has = kindsOf(app).filter((k) => k !== "token").join(", ");
		const why = type === "agent_config" && app.platform === "wecom"
			? `it has no agentid (agent_config is per WeCom app; add "agentid" to its entry in WECHAT_APPS)`
			: `it is ${app.platform === "wecom" ? "a WeCom app" : "an official account"}`;
		throw new BrokerError("bad_request", `App ${app.appid} has no ${type} ticket: ${why}. Its tickets: ${has}.`);
	}
	return type as CredentialType;
}

function ticketResponse(c: Context<BrokerEnv>, record: CredentialRecord): Response {
	return c.json({ ticket: record.value, expires_in: expiresInS(record, Date.now()) });
}

export function mountTicketRoutes(app: Hono<BrokerEnv>): void {
	app.get("/ticket", async (c) => {
		const app = await resolveApp(c, c.req.query("appid"));
		requireApp(c.get("principal"), app);
		const type = ticketType(c, app);
		return ticketResponse(c, await readCredential(c.env, app.appid, type));
	});

	app.post("/ticket/refresh", async (c) => {
		const app = await resolveApp(c, c.req.query("appid"));
		requireApp(c.get("principal"), app);
		requireAdmin(c.get("principal"));
		const type = ticketType(c, app);
		return ticketResponse(c, unwrap(await forceRefreshHere(c.env, app.appid, type)));
	});

	app.post("/jssdk/config", async (c) => {
		const { appid: rawAppid, url } = await readJsonObject(c, CONFIG_HINT);
		if (rawAppid !== undefined && typeof rawAppid !== "string") throw new BrokerError("bad_request", "appid must be a string.");
		const app = await resolveApp(c, rawAppid);
		const { appid } = app;
		requireApp(c.get("principal"), app);
		const problem = pageUrlProblem(url);
		if (problem) throw new BrokerError("bad_request", problem);
		const now = Date.now();
		const ticket = await readCredential(c.env, appid, "jsapi");
		// wx.config's appId is the CorpID for a WeCom app.
		const signed = { appId: app.corpid ?? app.appid, ...await signPage(ticket.value, url as string, now) };
		if (!app.agentid) return c.json(signed);
		const agentTicket = await readCredential(c.env, appid, "agent_config");
		const agentConfig = { corpid: app.corpid!, agentid: app.agentid, ...await signPage(agentTicket.value, url as string, now) };
		return c.json({ ...signed, agentConfig });
	});
}
