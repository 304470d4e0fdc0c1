/**
 * WeCom's calls for the companies that install a suite (OPEN-PLATFORM.md §10): the install link's
 * pre_auth_code (and its session: a test install or a normal one), the temporary auth code's exchange for the
 * permanent code (get_permanent_code), what a company grants now (get_auth_info), and an installed company's
 * access_token (get_corp_token). Each takes the suite's current suite_access_token. Like client.ts, it never
 * throws for an upstream problem and never logs or returns a request body (it carries the permanent code).
 *
 * Successes carry no errcode "for historical reasons" (W-97162), or errcode 0; failures a non-zero one.
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import { parseCredential, REUSED_MIN_EXPIRES_IN_S, type Fetched } from "./client";
import { classifyErrcode } from "./errcodes";
import { SUITE_TOKEN_INVALID } from "./suite-client";
import { unreachable, upstreamJson, type UpstreamResult } from "./upstream";

type Upstream = Pick<BrokerConfig, "weComBase" | "upstreamTimeoutMs" | "relayHeaders">;

/**
 * 40084: the permanent code is invalid (the company uninstalled, or a 代开发 reset replaced it); 40082 on
 * get_corp_token: the suite has no install in that company. Either way the company must install again: no
 * call helps before it does. (40082 also names an invalid suite token; the suite's object serves only tokens
 * WeCom gave it within their validity, so on get_corp_token it is read as the install's absence.)
 */
export const REINSTALL_ERRCODES: ReadonlySet<number> = new Set([40084, 40082]);
/**
 * Of those, the one that also says the company's tokens are gone: 40084, its permanent code is dead (it
 * uninstalled, and WeCom stops its tokens with the install). 40082 may instead be a suite token WeCom no
 * longer takes, under which the corp token held is still good: that one is kept to its own expiry.
 */
export const UNINSTALLED_ERRCODES: ReadonlySet<number> = new Set([40084]);
/** 40078: the auth code is unknown, used or expired (single use, 10 min); 40058: it is not one (too short). */
export const DEAD_AUTH_CODE_ERRCODES: ReadonlySet<number> = new Set([40078, 40058]);
/** Permanent codes are at most 512 bytes (W-90603); auth and pre-auth codes shorter. */
const MAX_SECRET_CHARS = 1024;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const ADVICE: ReadonlyMap<number, string> = new Map([
	[40084, "the permanent code is no longer valid (the company uninstalled the app, or its permanent code was reset): it must install again (POST /wecom-suite/<suite_id>/install-url)"],
	[40082, "the suite has no install in this company (or the suite token is invalid): it must install again (POST /wecom-suite/<suite_id>/install-url)"],
	[40078, "the auth code is unknown, used or expired: auth codes are single use and live 10 min; install again"],
	[40058, "the auth code is not one WeCom issued (at least 64 characters): pass the auth_code of the redirect unchanged"],
	[40077, "the pre_auth_code is unknown: make a new install link"],
	[42007, "the pre_auth_code expired (they live 20 min): make a new install link"],
	[42009, "the suite_access_token expired; the broker fetches a new one"],
]);

function options(config: Upstream) {
	return { timeoutMs: config.upstreamTimeoutMs, relayHeaders: config.relayHeaders, baseName: "WECOM_API_BASE" };
}

function call(config: Upstream, endpoint: string, suiteToken: string, body?: Record<string, unknown>) {
	const url = `${config.weComBase}/cgi-bin/service/${endpoint}?suite_access_token=${encodeURIComponent(suiteToken)}`;
	return upstreamJson(url, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }, options(config));
}

/** The refusal in an answer, worded with this module's advice where it has one; null for a success. */
function refusal(body: Record<string, unknown>): { ok: false; failure: { kind: "wechat"; class: "fatal" | "retryable" | "quota"; errcode: number; message: string } } | null {
	const { errcode } = body;
	if (errcode === undefined || errcode === 0) return null;
	if (typeof errcode !== "number") return { ok: false, failure: { kind: "wechat", class: "retryable", errcode: -1, message: "WeCom's answer had a non-numeric errcode" } };
	const advice = ADVICE.get(errcode);
	const info = classifyErrcode(errcode, "wecom");
	return { ok: false, failure: { kind: "wechat", class: errcode === 42009 ? "retryable" : advice ? "fatal" : info.class, errcode, message: `WeCom errcode ${errcode}: ${advice ?? info.advice}` } };
}

function secretText(value: unknown): string | null {
	return typeof value === "string" && value !== "" && value.length <= MAX_SECRET_CHARS ? value : null;
}

/** What an install grants: the company, and the agent (the suite's app in that company). */
export interface InstallInfo {
	readonly corpid: string;
	readonly corpName: string;
	/** The suite's app in the company; null where the answer lists none (a company-level grant). */
	readonly agentid: string | null;
}

export interface Installation extends InstallInfo {
	readonly permanentCode: string;
}

function installInfo(body: Record<string, unknown>): InstallInfo | null {
	const corp = body.auth_corp_info as Record<string, unknown> | undefined;
	const corpid = corp && typeof corp.corpid === "string" && ID_PATTERN.test(corp.corpid) ? corp.corpid : null;
	if (!corp || !corpid) return null;
	const agents = (body.auth_info as { agent?: unknown } | undefined)?.agent;
	const first = Array.isArray(agents) ? (agents[0] as { agentid?: unknown } | undefined) : undefined;
	const agentid = typeof first?.agentid === "number" || (typeof first?.agentid === "string" && /^[0-9]{1,12}$/.test(first.agentid)) ? String(first.agentid) : null;
	const corpName = typeof corp.corp_name === "string" ? corp.corp_name.slice(0, 128) : "";
	return { corpid, corpName, agentid };
}

/**
 * get_permanent_code, v1 (W-90603), not v2 (W-100776): v1's answer lists the agents the install granted, and
 * the agentid names the company's app (`<corpid>-<agentid>`) with no second call; v2 has no agent list (a
 * get_auth_info would have to follow, and a failure between the two would leave a permanent code — single
 * use to obtain — with no app to keep it in). v1 also carries a corp access_token, which is not kept: the
 * company's own object fetches its token with get_corp_token, on its own plan.
 */
export async function getPermanentCode(suiteToken: string, authCode: string, config: Upstream): Promise<UpstreamResult<Installation>> {
	const answer = await call(config, "get_permanent_code", suiteToken, { auth_code: authCode });
	if (!answer.ok) return answer;
	const refused = refusal(answer.value);
	if (refused) return refused;
	const permanentCode = secretText(answer.value.permanent_code);
	const info = installInfo(answer.value);
	if (!permanentCode || !info) return unreachable("WeCom's get_permanent_code answer had no permanent_code or auth_corp_info");
	return { ok: true, value: { ...info, permanentCode } };
}

/** get_auth_info: what the company grants now (after change_auth). */
export async function getAuthInfo(suiteToken: string, corpid: string, permanentCode: string, config: Upstream): Promise<UpstreamResult<InstallInfo>> {
	const answer = await call(config, "get_auth_info", suiteToken, { auth_corpid: corpid, permanent_code: permanentCode });
	if (!answer.ok) return answer;
	const refused = refusal(answer.value);
	if (refused) return refused;
	const info = installInfo(answer.value);
	return info ? { ok: true, value: info } : unreachable("WeCom's get_auth_info answer had no auth_corp_info");
}

/** get_corp_token: an installed company's access_token; `corp.secret` is its permanent code. */
export async function fetchCorpToken(corp: AppConfig, config: Upstream, suiteToken: string): Promise<UpstreamResult<Fetched>> {
	const answer = await call(config, "get_corp_token", suiteToken, { auth_corpid: corp.corpid, permanent_code: corp.secret });
	if (!answer.ok) return answer;
	const refused = refusal(answer.value);
	if (refused) {
		// The advice names the company's own suite's install-url route, not a placeholder. 40082 / 42009 may
		// refuse the suite token it was asked with: no retry with that token (withRetry), the engine heals it.
		const message = corp.suiteId === undefined ? refused.failure.message : refused.failure.message.replaceAll("<suite_id>", corp.suiteId);
		return { ...refused, failure: { ...refused.failure, message, ...(SUITE_TOKEN_INVALID.has(refused.failure.errcode) && { tokenRefused: true }) } };
	}
	// A re-fetch inside the validity may hand back the live token with what is left of it (unconfirmed, §10).
	return parseCredential(answer.value, "access_token", "wecom", false, REUSED_MIN_EXPIRES_IN_S);
}

/** get_pre_auth_code, then set_session_info when `authType` is given (1: a test install, 0: a normal one). */
export async function getPreAuthCode(suiteToken: string, authType: 0 | 1 | undefined, config: Upstream): Promise<UpstreamResult<{ code: string; expiresInS: number }>> {
	const answer = await call(config, "get_pre_auth_code", suiteToken);
	if (!answer.ok) return answer;
	const refused = refusal(answer.value);
	if (refused) return refused;
	const code = secretText(answer.value.pre_auth_code);
	const expiresIn = answer.value.expires_in;
	if (!code || typeof expiresIn !== "number") return unreachable("WeCom's get_pre_auth_code answer had no pre_auth_code");
	if (authType !== undefined) {
		const session = await call(config, "set_session_info", suiteToken, { pre_auth_code: code, session_info: { auth_type: authType } });
		if (!session.ok) return session;
		const sessionRefused = refusal(session.value);
		if (sessionRefused) return sessionRefused;
	}
	return { ok: true, value: { code, expiresInS: Math.floor(expiresIn) } };
}
