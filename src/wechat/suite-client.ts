/**
 * WeCom's service-provider token calls (OPEN-PLATFORM.md §10): get_suite_token with the newest pushed
 * suite_ticket, in a suite's object, and get_provider_token, in the provider's. Like client.ts, it never
 * throws for an upstream problem and never logs or returns a request body (it carries the suite Secret, the
 * provider secret and the ticket).
 *
 * Both tokens come back unchanged when asked for again inside their validity (W-97162 ops answer, W-96237),
 * and whether expires_in then shows the remaining time or 7200 again is unconfirmed; so a short expires_in
 * is an answer here, not a broken relay, and the engine never lets a reused token's promise run past the
 * deadline its first fetch set (core/lifetime.ts, sameValueAgain).
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import { parseCredential, REUSED_MIN_EXPIRES_IN_S, type Fetched } from "./client";
import { classifyErrcode } from "./errcodes";
import { upstreamJson, type UpstreamFailure, type UpstreamResult } from "./upstream";

type Upstream = Pick<BrokerConfig, "weComBase" | "upstreamTimeoutMs" | "relayHeaders">;

const IP_ADVICE = "WeCom refuses this egress IP for the service provider: add it to the provider's IP allowlist (服务商管理后台 → 应用管理 → IP白名单), or set WECOM_API_BASE to a fixed-IP relay that is on it";
const TICKET_ADVICE = "check that the suite's 指令回调URL is /wecom-suite/<suite_id>/events on this broker and answers `success` (WeCom pushes a suite_ticket every ~10 min, each valid 30 min; 刷新ticket in the provider console pushes one at once)";

/** What to check, per errcode of get_suite_token; the rest as errcodes.ts classifies WeCom's. */
const SUITE_ADVICE: ReadonlyMap<number, string> = new Map([
	[40085, `WeCom does not accept the suite_ticket (expired, or another suite's): ${TICKET_ADVICE}`],
	[41023, `WeCom got no suite_ticket: ${TICKET_ADVICE}`],
	[40080, "WeCom rejected the suite's Secret: update it (WECOM_SUITES, or PUT /admin/suites/{suite_id})"],
	[40083, "WeCom does not know this suite_id: check the suite's SuiteID (WECOM_SUITES, or PUT /admin/suites/{suite_id})"],
	[60020, IP_ADVICE],
]);

/** What to check, per errcode of get_provider_token. */
const PROVIDER_ADVICE: ReadonlyMap<number, string> = new Map([
	[40001, "WeCom rejected the provider secret (ProviderSecret): update provider_secret (WECOM_SUITES, or PUT /admin/suites/{suite_id})"],
	[40013, "WeCom does not know this provider CorpID: check provider_corpid (WECOM_SUITES, or PUT /admin/suites/{suite_id})"],
	[60020, IP_ADVICE],
]);

/** Errcodes that say the suite_ticket is the trouble: the incident names the instruction URL (pushed-ticket.ts). */
export const SUITE_TICKET_ERRCODES: ReadonlySet<number> = new Set([40085, 41023]);

/**
 * Answers to a call made with a suite_access_token (or provider_access_token) that say the token is bad:
 * 40082 invalid, 42009 expired (OPEN-PLATFORM.md §10). get_corp_token also answers 40082 when the suite has
 * no install in that corp, so a caller there compares before it heals (compare-and-refresh costs nothing
 * then: WeCom hands back the same live token): engine/attempt.ts withParentToken, kinds.ts parentRefused.
 */
export const SUITE_TOKEN_INVALID: ReadonlySet<number> = new Set([40082, 42009]);

/** The refusal of a suite token fetch that had no ticket to send (nothing is sent: attempt.ts). */
export const NO_SUITE_TICKET: UpstreamFailure = {
	kind: "wechat", class: "fatal",
	message: "no suite_ticket has been pushed to this broker yet: point the suite's 指令回调URL at /wecom-suite/<suite_id>/events and check that it answers `success` (刷新ticket in the provider console pushes one at once)",
};

function options(config: Upstream) {
	return { timeoutMs: config.upstreamTimeoutMs, relayHeaders: config.relayHeaders, baseName: "WECOM_API_BASE" };
}

async function post(url: string, body: Record<string, string>, field: "suite_access_token" | "provider_access_token", advice: ReadonlyMap<number, string>, config: Upstream): Promise<UpstreamResult<Fetched>> {
	const answer = await upstreamJson(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }, options(config));
	if (!answer.ok) return answer;
	const parsed = parseCredential(answer.value, field, "wecom", false, REUSED_MIN_EXPIRES_IN_S);
	if (parsed.ok || parsed.failure.errcode === undefined) return parsed;
	const said = advice.get(parsed.failure.errcode);
	if (!said) return parsed;
	return { ok: false, failure: { ...parsed.failure, class: classifyErrcode(parsed.failure.errcode, "wecom").class, message: `WeCom errcode ${parsed.failure.errcode}: ${said}` } };
}

/** get_suite_token {suite_id, suite_secret, suite_ticket}: the suite's token (the same one inside its validity). */
export function fetchSuiteToken(suite: AppConfig, config: Upstream, ticket: string): Promise<UpstreamResult<Fetched>> {
	return post(`${config.weComBase}/cgi-bin/service/get_suite_token`, { suite_id: suite.suiteId!, suite_secret: suite.secret, suite_ticket: ticket }, "suite_access_token", SUITE_ADVICE, config);
}

/** get_provider_token {corpid, provider_secret}: the provider's token (the same one inside its validity). */
export function fetchProviderToken(provider: AppConfig, config: Upstream): Promise<UpstreamResult<Fetched>> {
	return post(`${config.weComBase}/cgi-bin/service/get_provider_token`, { corpid: provider.corpid!, provider_secret: provider.secret }, "provider_access_token", PROVIDER_ADVICE, config);
}
