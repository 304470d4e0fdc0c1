/**
 * Upstream calls per WeChat day, and per clock hour where WeChat limits by the hour (WeCom tickets).
 * WeChat's daily quotas (2000 /cgi-bin/token calls, 20 forced stable refreshes, getticket) reset at
 * midnight China time (UTC+8), not UTC.
 */
export type CountedCall =
	| "token" | "stable_token" | "stable_token_force"
	/** The probes that check a reported token before a refresh that would revoke tokens. */
	| "getcallbackip"
	| "getticket"
	| "gettoken" | "get_jsapi_ticket" | "ticket_get"
	/** The open platform: the component token, the ticket push restart, and the component token's probe. */
	| "api_component_token" | "api_start_push_ticket" | "api_get_authorizer_list"
	/** The open platform's authorizers: the code exchange, their token, and the authorisation link's code. */
	| "api_query_auth" | "api_authorizer_token" | "api_create_preauthcode"
	/** WeCom's service providers: a suite's token, and the provider's. */
	| "get_suite_token" | "get_provider_token"
	/** WeCom's installed companies: the install code's exchange, the install link, a company's grant and its token. */
	| "get_permanent_code" | "get_pre_auth_code" | "get_auth_info" | "get_corp_token";

export type CallCounts = Readonly<Partial<Record<CountedCall, number>>>;

export interface Usage {
	/** Days since the epoch in China time. */
	readonly day: number;
	readonly calls: CallCounts;
	/** Hours since the epoch. */
	readonly hour: number;
	readonly hourly: CallCounts;
}

const CHINA_UTC_OFFSET_MS = 8 * 3_600_000;
const MS_PER_DAY = 86_400_000;
const MS_PER_HOUR = 3_600_000;

export function wechatDay(now: number): number {
	return Math.floor((now + CHINA_UTC_OFFSET_MS) / MS_PER_DAY);
}

function clockHour(now: number): number {
	return Math.floor(now / MS_PER_HOUR);
}

/** ms since epoch of the next midnight in China time: when WeChat's daily quotas reset. */
export function nextQuotaReset(now: number): number {
	return (wechatDay(now) + 1) * MS_PER_DAY - CHINA_UTC_OFFSET_MS;
}

export function nextHour(now: number): number {
	return (clockHour(now) + 1) * MS_PER_HOUR;
}

export function emptyUsage(now: number): Usage {
	return { day: wechatDay(now), calls: {}, hour: clockHour(now), hourly: {} };
}

/** Today's and this hour's counts: older windows are dropped once they end. */
export function usageNow(usage: Usage, now: number): Usage {
	const day = wechatDay(now);
	const hour = clockHour(now);
	return {
		day, calls: usage.day === day ? usage.calls : {},
		hour, hourly: usage.hour === hour ? usage.hourly ?? {} : {},
	};
}

export function callsToday(usage: Usage, call: CountedCall, now: number): number {
	return usageNow(usage, now).calls[call] ?? 0;
}

export function callsThisHour(usage: Usage, call: CountedCall, now: number): number {
	return usageNow(usage, now).hourly[call] ?? 0;
}

export function countCall(usage: Usage, call: CountedCall, now: number): Usage {
	const current = usageNow(usage, now);
	return {
		...current,
		calls: { ...current.calls, [call]: (current.calls[call] ?? 0) + 1 },
		hourly: { ...current.hourly, [call]: (current.hourly[call] ?? 0) + 1 },
	};
}
