/**
 * The authorisation flow of a component (DESIGN.md, "The open platform"), for admin keys allowed the
 * component (`component:<id>`):
 *   POST /open/{component_appid}/auth-url        {"redirect_uri", "auth_type"?, "biz_appid"?, "mobile"?}
 *        → {"url", "expires_in"}: WeChat's authorisation page with a fresh pre_auth_code
 *   POST /open/{component_appid}/authorizations  {"auth_code"} → {"authorizer_appid", "func_info", "expires_in"}:
 *        the code the browser brought back to the vendor's redirect page, exchanged once (the same code
 *        pushed as `authorized` is not exchanged again: authority/authorizations.ts)
 *   GET  /open/{component_appid}/authorizers?limit=&cursor=  each authorizer, its state and times (never a token)
 *   POST /open/{component_appid}/authorizers/sync  api_get_authorizer_list paged through: refresh tokens stored
 *        for the authorizers the broker lacks or whose refresh token WeChat refused
 */
import type { Context, Hono } from "hono";
import type { BrokerEnv } from "../access/reads";
import { componentAuthority } from "../authority/stub";
import { APPID_PATTERN } from "../config/config";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import { findComponent } from "../registry/lookup";
import { decodeCursor, encodeCursor, ownerParam, pageLimit, readAdminBody } from "./admin-input";
import { registry } from "../registry/registry";
import type { AppRow } from "../registry/registry";

/** WeChat's PC authorisation page, and the mobile one (opened inside WeChat). OPEN-PLATFORM.md §5. */
const PC_PAGE = "https://mp.weixin.qq.com/cgi-bin/componentloginpage";
const MOBILE_PAGE = "https://open.weixin.qq.com/wxaopen/safe/bindcomponent";
/** 1: official accounts only, 2: mini programs only, 3: both (WeChat's default). */
const AUTH_TYPES = new Set([1, 2, 3]);
const MAX_REDIRECT_CHARS = 2048;
const MAX_CODE_CHARS = 1024;
/** An authorizer page: one indexed range query in the Registry. */
const DEFAULT_PAGE = 100;
const MAX_PAGE = 500;

function iso(ms: number): string {
	return new Date(ms).toISOString();
}

/** What the listing shows of an authorizer: its state and times, never a token. */
function publicAuthorizer(row: AppRow): Record<string, unknown> {
	const { profile } = row;
	const state = profile.revokedAt !== undefined ? "revoked" : profile.reauthoriseSince !== undefined ? "needs_reauthorisation" : "serving";
	return {
		authorizer_appid: profile.appid, state, authorised_at: iso(row.created_at), updated_at: iso(row.updated_at),
		...(profile.revokedAt !== undefined && { revoked_at: iso(profile.revokedAt) }),
		...(profile.reauthoriseSince !== undefined && { needs_reauthorisation_since: iso(profile.reauthoriseSince) }),
	};
}

const AUTH_URL_EXAMPLE = '{"redirect_uri": "https://vendor.example/authorised", "auth_type": 3}';

function componentParam(c: Context<BrokerEnv>): Promise<string> {
	return ownerParam(c, "component_appid", "component", (id) => findComponent(c.env, c.get("config"), id),
		(id) => `Component ${id} is not configured on this broker; add it to WECHAT_COMPONENTS or PUT /admin/components/${id}.`);
}

/** Where a redirect_uri must point, in the words of its platform (the open platform's, or a WeCom suite's). */
export interface RedirectRule {
	readonly platform: string;
	readonly example: string;
	readonly domain: string;
}

const COMPONENT_REDIRECT: RedirectRule = { platform: "WeChat", example: AUTH_URL_EXAMPLE, domain: "the component's 授权回调域 / authorisation callback domain" };

export function redirectUri(value: unknown, rule: RedirectRule = COMPONENT_REDIRECT): string {
	if (typeof value !== "string" || value.length > MAX_REDIRECT_CHARS) throw new BrokerError("bad_request", `redirect_uri is required: the https page of yours that ${rule.platform} sends the browser back to, e.g. ${rule.example}.`);
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw new BrokerError("bad_request", `redirect_uri must be an absolute https URL (on ${rule.domain}).`);
	}
	if (url.protocol !== "https:" && url.protocol !== "http:") throw new BrokerError("bad_request", `redirect_uri must be an http(s) URL on ${rule.domain}.`);
	return value;
}

export function mountOpenAuthorizations(app: Hono<BrokerEnv>): void {
	app.post("/open/:component_appid/auth-url", async (c) => {
		const id = await componentParam(c);
		const body = await readAdminBody(c, ["redirect_uri", "auth_type", "biz_appid", "mobile"], AUTH_URL_EXAMPLE);
		const redirect = redirectUri(body.redirect_uri);
		const { auth_type: authType, biz_appid: bizAppid, mobile = false } = body;
		if (authType !== undefined && !AUTH_TYPES.has(authType as number)) throw new BrokerError("bad_request", "auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both).");
		if (bizAppid !== undefined && (typeof bizAppid !== "string" || !APPID_PATTERN.test(bizAppid))) throw new BrokerError("bad_request", "biz_appid must be the appid of the one account that may authorise (wx…).");
		if (bizAppid !== undefined && authType !== undefined) throw new BrokerError("bad_request", "Give auth_type or biz_appid, not both: WeChat ignores auth_type when one account is named.");
		if (typeof mobile !== "boolean") throw new BrokerError("bad_request", "mobile must be true (the link opened inside WeChat) or false (the PC page).");
		const code = await componentAuthority(c.env, id).preAuthCode(id);
		if (!code.ok) throw new BrokerError(code.failure.code, code.failure.message, code.failure.wechatErrcode !== undefined ? { wechatErrcode: code.failure.wechatErrcode } : {});
		const query = new URLSearchParams({ component_appid: id, pre_auth_code: code.code, redirect_uri: redirect });
		if (authType !== undefined) query.set("auth_type", String(authType));
		if (bizAppid !== undefined) query.set("biz_appid", bizAppid as string);
		const url = mobile
			? `${MOBILE_PAGE}?action=bindcomponent&no_scan=1&${query.toString()}#wechat_redirect`
			: `${PC_PAGE}?${query.toString()}`;
		log("info", "auth_url_made", { component_appid: id, key: c.get("principal")?.name ?? null, mobile });
		return c.json({ url, expires_in: code.expiresIn });
	});

	app.post("/open/:component_appid/authorizations", async (c) => {
		const id = await componentParam(c);
		const body = await readAdminBody(c, ["auth_code"], '{"auth_code": "<the auth_code your redirect page received>"}');
		const code = body.auth_code;
		if (typeof code !== "string" || code === "" || code.length > MAX_CODE_CHARS) {
			throw new BrokerError("bad_request", "auth_code is required: the auth_code query parameter WeChat appended to your redirect_uri.");
		}
		const outcome = await componentAuthority(c.env, id).exchangeAuthorization(id, code);
		if (!outcome.ok) throw new BrokerError(outcome.failure.code, outcome.failure.message, outcome.failure.wechatErrcode !== undefined ? { wechatErrcode: outcome.failure.wechatErrcode } : {});
		return c.json({ authorizer_appid: outcome.authorizerAppid, func_info: outcome.funcInfo, expires_in: outcome.expiresIn });
	});

	app.get("/open/:component_appid/authorizers", async (c) => {
		const id = await componentParam(c);
		const limit = pageLimit(c.req.query("limit"), DEFAULT_PAGE, MAX_PAGE);
		const after = decodeCursor(c.req.query("cursor"), APPID_PATTERN);
		const rows = await registry(c.env).listAuthorizers(id, after, limit + 1);
		const page = rows.slice(0, limit);
		return c.json({ authorizers: page.map(publicAuthorizer), next_cursor: rows.length > limit ? encodeCursor(page.at(-1)!.profile.appid) : null });
	});

	app.post("/open/:component_appid/authorizers/sync", async (c) => {
		const id = await componentParam(c);
		const outcome = await componentAuthority(c.env, id).syncAuthorizers(id);
		if (!outcome.ok) throw new BrokerError(outcome.failure.code, outcome.failure.message, outcome.failure.wechatErrcode !== undefined ? { wechatErrcode: outcome.failure.wechatErrcode } : {});
		const { ok: _ok, ...counts } = outcome;
		log("info", "authorizers_sync_requested", { component_appid: id, key: c.get("principal")?.name ?? null });
		return c.json(counts);
	});
}
