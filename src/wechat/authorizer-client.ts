/**
 * The open platform's calls for the accounts that authorise a component (OPEN-PLATFORM.md §5–§7): the
 * authorisation code's exchange (api_query_auth), an authorizer's token (api_authorizer_token) and the
 * authorisation link's pre_auth_code. Each takes the component's current component_access_token. Like
 * client.ts, it never throws for an upstream problem and never logs or returns a request body (it carries the
 * authorizer_refresh_token).
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import { parseCredential, type Fetched } from "./client";
import { upstreamJson, type UpstreamResult } from "./upstream";

type Upstream = Pick<BrokerConfig, "apiBase" | "upstreamTimeoutMs" | "relayHeaders">;

/** 61023: the refresh token is invalid (superseded, wiped); 61003: the account no longer authorises the component. */
export const REAUTHORISE_ERRCODES: ReadonlySet<number> = new Set([61023, 61003]);
/** Refresh tokens and codes run to a few hundred characters; anything longer is not one. */
const MAX_SECRET_CHARS = 1024;

const ADVICE: ReadonlyMap<number, string> = new Map([
	[61023, "the authorizer_refresh_token is no longer valid: the account must authorise the component again (POST /open/<component_appid>/auth-url), or POST /open/<component_appid>/authorizers/sync may recover it"],
	[61003, "the account no longer authorises the component: it must authorise again (POST /open/<component_appid>/auth-url)"],
	[61009, "the authorization code is unknown or was already used: codes are single use; start the authorisation again"],
	[61010, "the authorization code has expired (they live ~10 min): start the authorisation again"],
]);

function options(config: Upstream) {
	return { timeoutMs: config.upstreamTimeoutMs, relayHeaders: config.relayHeaders, baseName: "WECHAT_API_BASE" };
}

function post(config: Upstream, endpoint: string, componentToken: string, body: Record<string, unknown>) {
	return upstreamJson(`${config.apiBase}/cgi-bin/component/${endpoint}?component_access_token=${encodeURIComponent(componentToken)}`, {
		method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
	}, options(config));
}

/**
 * A refusal with the advice for the open platform's own errcodes, naming the component's own routes;
 * everything else as client.ts words it.
 */
function advised<T>(body: Record<string, unknown>, componentAppid: string): UpstreamResult<T> | null {
	const { errcode } = body;
	if (typeof errcode !== "number" || errcode === 0) return null;
	const advice = ADVICE.get(errcode);
	const parsed = parseCredential(body, "authorizer_access_token", "wechat", false);
	if (parsed.ok) return null;
	return { ok: false, failure: { ...parsed.failure, class: advice ? "fatal" : parsed.failure.class, ...(advice && { message: `WeChat errcode ${errcode}: ${advice.replaceAll("<component_appid>", componentAppid)}` }) } };
}

function secretText(value: unknown): string | null {
	return typeof value === "string" && value !== "" && value.length <= MAX_SECRET_CHARS ? value : null;
}

export interface Authorization {
	readonly authorizerAppid: string;
	readonly accessToken: Fetched;
	readonly refreshToken: string;
	/** The permission sets granted (funcscope_category ids). */
	readonly funcInfo: readonly number[];
}

/** api_query_auth: the authorisation code exchanged (single use) for the authorizer's first token and its refresh token. */
export async function queryAuth(componentAppid: string, componentToken: string, code: string, config: Upstream): Promise<UpstreamResult<Authorization>> {
	const answer = await post(config, "api_query_auth", componentToken, { component_appid: componentAppid, authorization_code: code });
	if (!answer.ok) return answer;
	const refused = advised<Authorization>(answer.value, componentAppid);
	if (refused) return refused;
	const info = answer.value.authorization_info as Record<string, unknown> | undefined;
	const token = info && parseCredential(info, "authorizer_access_token", "wechat", false);
	const refreshToken = info && secretText(info.authorizer_refresh_token);
	const authorizerAppid = info && typeof info.authorizer_appid === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(info.authorizer_appid) ? info.authorizer_appid : null;
	if (!token?.ok || !refreshToken || !authorizerAppid) {
		return { ok: false, failure: { kind: "unreachable", class: "retryable", message: "WeChat's api_query_auth answer had no usable authorization_info" } };
	}
	const funcInfo = Array.isArray(info.func_info)
		? info.func_info.flatMap((f) => {
			const id = (f as { funcscope_category?: { id?: unknown } })?.funcscope_category?.id;
			return typeof id === "number" ? [id] : [];
		})
		: [];
	return { ok: true, value: { authorizerAppid, accessToken: token.value, refreshToken, funcInfo } };
}

/**
 * api_authorizer_token: the authorizer's new token, with the refresh token the answer carries (WeChat may
 * send a new one; it replaces the stored one). `authorizer.secret` is the stored refresh token.
 */
export async function fetchAuthorizerToken(authorizer: AppConfig, config: Upstream, componentToken: string): Promise<UpstreamResult<Fetched>> {
	const answer = await post(config, "api_authorizer_token", componentToken, {
		component_appid: authorizer.componentAppid, authorizer_appid: authorizer.appid, authorizer_refresh_token: authorizer.secret,
	});
	if (!answer.ok) return answer;
	const refused = advised<Fetched>(answer.value, authorizer.componentAppid ?? "<component_appid>");
	if (refused) return refused;
	const parsed = parseCredential(answer.value, "authorizer_access_token", "wechat", false);
	if (!parsed.ok) return parsed;
	const refreshToken = secretText(answer.value.authorizer_refresh_token);
	return { ok: true, value: { ...parsed.value, ...(refreshToken && { refreshToken }) } };
}

/** api_create_preauthcode: a fresh pre_auth_code for the authorisation link. */
export async function createPreAuthCode(componentAppid: string, componentToken: string, config: Upstream): Promise<UpstreamResult<{ code: string; expiresInS: number }>> {
	const answer = await post(config, "api_create_preauthcode", componentToken, { component_appid: componentAppid });
	if (!answer.ok) return answer;
	const refused = advised<{ code: string; expiresInS: number }>(answer.value, componentAppid);
	if (refused) return refused;
	const code = secretText(answer.value.pre_auth_code);
	const expiresIn = answer.value.expires_in;
	if (!code || typeof expiresIn !== "number") return { ok: false, failure: { kind: "unreachable", class: "retryable", message: "WeChat's api_create_preauthcode answer had no pre_auth_code" } };
	return { ok: true, value: { code, expiresInS: Math.floor(expiresIn) } };
}

/** api_get_authorizer_list pages hold at most 500 (OPEN-PLATFORM.md §7, D-list). */
export const MAX_AUTHORIZER_PAGE = 500;

export interface AuthorizerListPage {
	readonly totalCount: number;
	/** Each authorizer with the refresh token the list carries, or null where WeChat sent none. */
	readonly list: readonly { readonly appid: string; readonly refreshToken: string | null }[];
}

/** api_get_authorizer_list: one page of the accounts that authorise the component, with their refresh tokens. */
export async function getAuthorizerList(componentAppid: string, componentToken: string, offset: number, count: number, config: Upstream): Promise<UpstreamResult<AuthorizerListPage>> {
	const answer = await post(config, "api_get_authorizer_list", componentToken, { component_appid: componentAppid, offset, count: Math.min(count, MAX_AUTHORIZER_PAGE) });
	if (!answer.ok) return answer;
	const refused = advised<AuthorizerListPage>(answer.value, componentAppid);
	if (refused) return refused;
	const { total_count: total, list } = answer.value;
	if (typeof total !== "number" || !Array.isArray(list)) return { ok: false, failure: { kind: "unreachable", class: "retryable", message: "WeChat's api_get_authorizer_list answer had no total_count or list" } };
	return {
		ok: true,
		value: {
			totalCount: total,
			list: list.flatMap((entry) => {
				const { authorizer_appid: appid, refresh_token: token } = (entry ?? {}) as Record<string, unknown>;
				return typeof appid === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(appid) ? [{ appid, refreshToken: secretText(token) }] : [];
			}),
		},
	};
}
