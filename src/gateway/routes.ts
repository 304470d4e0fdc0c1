/**
 * The gateway's paths: what the broker answers itself, what it forwards, what it refuses. Everything
 * under these paths answers in WeChat's shape (wechat-errors.ts), because an SDK is on the other end.
 *
 * - ANSWERED (paths.ts lists the paths): WeChat endpoints the broker serves from its own credentials: the
 *   token endpoints (token-endpoints.ts), WeCom's gettoken (wecom-token.ts), and the JS-SDK ticket endpoints
 *   (ticket-endpoints.ts), which would otherwise spend WeChat's scarce getticket quota on every SDK's cache.
 * - FORWARDED_PREFIXES (paths.ts): WeChat server-API families that take an access_token, forwarded only with
 *   a token this broker issued.
 * - /sns/*: users' OAuth tokens and the mini program login (jscode2session, which needs the real
 *   AppSecret): not the broker's tokens, refused with a message.
 */
import type { Handler, Hono } from "hono";
import type { AuthVariables } from "../access/auth";
import type { AppEnv } from "../env";
import { forward } from "./forward";
import { componentTokenEndpoint } from "./component-token-endpoint";
import { suiteTokenEndpoint } from "./suite-token-endpoint";
import { FORWARDED_PREFIXES, REFUSED_PREFIX, type AnsweredPath } from "./paths";
import { officialTicketEndpoint, weComAgentTicketEndpoint, weComCorpTicketEndpoint } from "./ticket-endpoints";
import { classicTokenEndpoint, stableTokenEndpoint } from "./token-endpoints";
import { weComTokenEndpoint } from "./wecom-token";
import { ERRCODE, WeChatError } from "./wechat-errors";

type GatewayEnv = { Bindings: AppEnv; Variables: AuthVariables };

/** Every path of ANSWERED_PATHS, and no other: the type makes a path listed there without a handler an error. */
const ANSWERED: Readonly<Record<AnsweredPath, Handler<GatewayEnv>>> = {
	"/cgi-bin/token": classicTokenEndpoint,
	"/cgi-bin/stable_token": stableTokenEndpoint,
	"/cgi-bin/ticket/getticket": officialTicketEndpoint,
	"/cgi-bin/gettoken": weComTokenEndpoint,
	"/cgi-bin/get_jsapi_ticket": weComCorpTicketEndpoint,
	"/cgi-bin/ticket/get": weComAgentTicketEndpoint,
	"/cgi-bin/component/api_component_token": componentTokenEndpoint,
	"/cgi-bin/service/get_suite_token": suiteTokenEndpoint,
};

export { FORWARDED_PREFIXES };

/** WeChat's API paths are letters, digits, `_`, `-`, `.` and `/` (no escapes, no dot segments); anything else is not one. */
const API_PATH = /^\/[A-Za-z0-9_\-/.]*$/;

export function isGatewayPath(path: string): boolean {
	return path in ANSWERED || path.startsWith(REFUSED_PREFIX) || FORWARDED_PREFIXES.some((prefix) => path.startsWith(prefix));
}

/** Registers the gateway on the broker's app: after the IP allowlist, before its own body limit. */
export function mountGateway(app: Hono<GatewayEnv>): void {
	for (const [path, handler] of Object.entries(ANSWERED)) app.all(path, handler);
	app.all(`${REFUSED_PREFIX}*`, () => {
		throw new WeChatError(ERRCODE.apiUnauthorized, "api unauthorized (wx-token-broker: /sns/* works with users' OAuth tokens or the real AppSecret, neither of which this broker hands out; call WeChat directly for these)");
	});
	for (const prefix of FORWARDED_PREFIXES) {
		app.all(`${prefix}*`, (c) => {
			if (!API_PATH.test(c.req.path) || c.req.path.includes("//") || c.req.path.includes("/.")) {
				throw new WeChatError(ERRCODE.apiUnauthorized, "api unauthorized (wx-token-broker: this is not a WeChat API path the gateway forwards)");
			}
			return forward(c);
		});
	}
}
