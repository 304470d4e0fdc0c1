/**
 * The gateway's paths: what the broker answers itself, what it forwards, what it refuses. Everything
 * under these paths answers in WeChat's shape (wechat-errors.ts), because an SDK is on the other end.
 *
 * - ANSWERED: WeChat endpoints the broker serves from its own credentials: the token endpoints
 *   (token-endpoints.ts), WeCom's gettoken (wecom-token.ts), and the JS-SDK ticket endpoints
 *   (ticket-endpoints.ts), which would otherwise spend WeChat's scarce getticket quota on every SDK's cache.
 * - FORWARDED_PREFIXES: WeChat server-API families that take an access_token. Every one is forwarded
 *   only with a token this broker issued, so a wider list costs no safety; anything outside it is not a
 *   WeChat API the broker knows and gets the broker's own 404.
 * - /sns/*: users' OAuth tokens and the mini program login (jscode2session, which needs the real
 *   AppSecret): not the broker's tokens, refused with a message.
 */
import type { Handler, Hono } from "hono";
import type { AuthVariables } from "../access/auth";
import type { AppEnv } from "../env";
import { forward } from "./forward";
import { officialTicketEndpoint, weComAgentTicketEndpoint, weComCorpTicketEndpoint } from "./ticket-endpoints";
import { classicTokenEndpoint, stableTokenEndpoint } from "./token-endpoints";
import { weComTokenEndpoint } from "./wecom-token";
import { ERRCODE, WeChatError } from "./wechat-errors";

type GatewayEnv = { Bindings: AppEnv; Variables: AuthVariables };

const ANSWERED: Readonly<Record<string, Handler<GatewayEnv>>> = {
	"/cgi-bin/token": classicTokenEndpoint,
	"/cgi-bin/stable_token": stableTokenEndpoint,
	"/cgi-bin/ticket/getticket": officialTicketEndpoint,
	// WeCom (qyapi.weixin.qq.com): its paths live beside WeChat's under /cgi-bin/ and never collide with them.
	"/cgi-bin/gettoken": weComTokenEndpoint,
	"/cgi-bin/get_jsapi_ticket": weComCorpTicketEndpoint,
	"/cgi-bin/ticket/get": weComAgentTicketEndpoint,
};

export const FORWARDED_PREFIXES = [
	"/cgi-bin/", // official accounts and most mini program server APIs (messages, media, menus, users, tickets…)
	"/wxa/", // mini programs: codes, security checks, phone numbers, subscribe messages
	"/wxaapi/", // mini program subscribe-message templates
	"/datacube/", // analytics
	"/card/", // cards and coupons
	"/customservice/", // customer-service accounts and sessions
	"/merchant/", // the WeChat store
	"/semantic/", // semantic understanding
	"/shop/", // mini program transaction components
	"/product/", // mini program shop products
	"/union/", // promotion union
	"/wxopen/", // mini program template library
	"/tcb/", // cloud development (cloud functions, database)
	"/channels/", // channels (视频号) e-commerce
] as const;

const REFUSED_PREFIX = "/sns/";
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
