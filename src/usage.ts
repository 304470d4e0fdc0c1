/**
 * Upstream calls per WeChat day. WeChat's daily quotas (2000 /cgi-bin/token calls, 20 forced stable
 * refreshes) reset at midnight China time (UTC+8), not UTC.
 */
/** `getcallbackip`: the probes that check a reported token before a refresh that would revoke tokens. */
export type CountedCall = "token" | "stable_token" | "stable_token_force" | "getcallbackip";

export interface DailyUsage {
	/** Days since the epoch in China time. */
	readonly day: number;
	readonly calls: Readonly<Record<CountedCall, number>>;
}

const CHINA_UTC_OFFSET_MS = 8 * 3_600_000;
const MS_PER_DAY = 86_400_000;

export function wechatDay(now: number): number {
	return Math.floor((now + CHINA_UTC_OFFSET_MS) / MS_PER_DAY);
}

/** ms since epoch of the next midnight in China time: when WeChat's daily quotas reset. */
export function nextQuotaReset(now: number): number {
	return (wechatDay(now) + 1) * MS_PER_DAY - CHINA_UTC_OFFSET_MS;
}

export function emptyUsage(now: number): DailyUsage {
	return { day: wechatDay(now), calls: { token: 0, stable_token: 0, stable_token_force: 0, getcallbackip: 0 } };
}

/** Today's usage: yesterday's counts are dropped once the WeChat day turns. */
export function usageToday(usage: DailyUsage, now: number): DailyUsage {
	return usage.day === wechatDay(now) ? usage : emptyUsage(now);
}

export function countCall(usage: DailyUsage, call: CountedCall, now: number): DailyUsage {
	const today = usageToday(usage, now);
	// `?? 0`: a state stored before a call kind existed has no count for it.
	return { day: today.day, calls: { ...today.calls, [call]: (today.calls[call] ?? 0) + 1 } };
}
