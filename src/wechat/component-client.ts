/**
 * The open platform's calls a component's object makes (OPEN-PLATFORM.md §2, §4): api_component_token with
 * the newest component_verify_ticket, api_start_push_ticket when pushes have stopped, and the probe of a
 * reported component token. Like client.ts, it never throws for an upstream problem and never logs or
 * returns a request body (it carries the AppSecret and the ticket).
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import { parseCredential, type Fetched, type ProbeVerdict } from "./client";
import { classifyErrcode, TOKEN_INVALID } from "./errcodes";
import { upstreamJson, type UpstreamFailure, type UpstreamResult } from "./upstream";

type Upstream = Pick<BrokerConfig, "apiBase" | "upstreamTimeoutMs" | "relayHeaders">;

/** What to check, per errcode of the component endpoints; the rest as client.ts classifies them. */
const COMPONENT_ADVICE: ReadonlyMap<number, string> = new Map([
	[61004, "WeChat refuses this egress IP for the component: add it to the component's IP allowlist (第三方平台 → 开发配置 → 白名单IP), or set WECHAT_API_BASE to a fixed-IP relay that is on it"],
	[61005, "the component_verify_ticket has expired: WeChat's pushes are not arriving; check that the component's 授权事件接收URL is /open/<component_appid>/events on this broker and answers `success` (a 61005 has also been seen for a blocked egress IP: check the allowlist too)"],
	[61006, "WeChat does not accept the component_verify_ticket: check that the component's 授权事件接收URL is /open/<component_appid>/events on this broker and answers `success`, and that no other server receives this component's pushes"],
	[61011, "WeChat says this is not a component: check the component_appid and its AppSecret (WECHAT_COMPONENTS, or PUT /admin/components/{component_appid})"],
	[40001, "WeChat rejected the component's AppSecret: update it (WECHAT_COMPONENTS, or PUT /admin/components/{component_appid})"],
	[40125, "the component's AppSecret is wrong (was it reset?): update it (WECHAT_COMPONENTS, or PUT /admin/components/{component_appid})"],
]);

/** Errcodes that say the ticket is the trouble: the incident names the event URL, and pushes are restarted. */
export const TICKET_ERRCODES: ReadonlySet<number> = new Set([61005, 61006]);

/** The refusal of a component token fetch that had no ticket to send (nothing is sent: attempt.ts). */
export const NO_COMPONENT_TICKET: UpstreamFailure = {
	kind: "wechat", class: "fatal",
	message: "no component_verify_ticket has been pushed to this broker yet: point the component's 授权事件接收URL at /open/<component_appid>/events and check that it answers `success` (the broker asks WeChat to restart its pushes once per incident)",
};

function options(config: Upstream) {
	return { timeoutMs: config.upstreamTimeoutMs, relayHeaders: config.relayHeaders, baseName: "WECHAT_API_BASE" };
}

/** api_component_token: a new component_access_token (every call mints one). */
export async function fetchComponentToken(component: AppConfig, config: Upstream, ticket: string): Promise<UpstreamResult<Fetched>> {
	const answer = await upstreamJson(`${config.apiBase}/cgi-bin/component/api_component_token`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ component_appid: component.componentAppid, component_appsecret: component.secret, component_verify_ticket: ticket }),
	}, options(config));
	if (!answer.ok) return answer;
	const parsed = parseCredential(answer.value, "component_access_token", "wechat", false);
	if (parsed.ok || parsed.failure.errcode === undefined) return parsed;
	const advice = COMPONENT_ADVICE.get(parsed.failure.errcode);
	if (!advice) return parsed;
	return { ok: false, failure: { ...parsed.failure, class: classifyErrcode(parsed.failure.errcode).class, message: `WeChat errcode ${parsed.failure.errcode}: ${advice}` } };
}

/**
 * api_start_push_ticket {component_appid, component_secret} (`component_secret`, not `component_appsecret`:
 * D-push): asks WeChat to start pushing tickets again. "ok": it was stopped; "in a normal state": it runs.
 */
export async function startPushTicket(component: AppConfig, config: Upstream): Promise<{ ok: true; errmsg: string } | { ok: false; message: string }> {
	const answer = await upstreamJson(`${config.apiBase}/cgi-bin/component/api_start_push_ticket`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ component_appid: component.componentAppid, component_secret: component.secret }),
	}, options(config));
	if (!answer.ok) return { ok: false, message: answer.failure.message };
	const { errcode, errmsg } = answer.value;
	if (errcode !== undefined && errcode !== 0) return { ok: false, message: `WeChat errcode ${String(errcode)}` };
	return { ok: true, errmsg: typeof errmsg === "string" ? errmsg.slice(0, 64) : "" };
}

/**
 * Whether WeChat accepts a reported component token, with the cheapest read-only call that takes one:
 * api_get_authorizer_list for one entry (getcallbackip's acceptance of component tokens is not confirmed).
 */
export async function probeComponentToken(component: AppConfig, token: string, config: Upstream): Promise<ProbeVerdict> {
	const answer = await upstreamJson(`${config.apiBase}/cgi-bin/component/api_get_authorizer_list?component_access_token=${encodeURIComponent(token)}`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ component_appid: component.componentAppid, offset: 0, count: 1 }),
	}, options(config));
	if (!answer.ok) return "unknown";
	const { errcode, total_count } = answer.value;
	if (errcode === undefined || errcode === 0) return typeof total_count === "number" ? "accepted" : "unknown";
	return typeof errcode === "number" && TOKEN_INVALID.wechat.has(errcode) ? "refused" : "unknown";
}
