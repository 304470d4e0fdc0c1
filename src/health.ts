/**
 * When an app needs a person: its refreshes fail in a way that waiting will not fix, or keep failing, or
 * its daily quota is nearly spent. Pure, so the rule can be read (and tested) apart from the object.
 */
import type { AppConfig } from "./config";
import { isUsable, type TokenRecord } from "./lifetime";
import { usageToday, type DailyUsage } from "./usage";
import { endpointFor, type UpstreamFailure } from "./wechat/client";

/** A transient failure is only news when it repeats: one blip that the next refresh fixes is not. */
export const ALERT_AFTER_TRANSIENT_FAILURES = 2;

export interface HealthInputs {
	readonly current: TokenRecord | null;
	readonly usage: DailyUsage;
	readonly consecutiveFailures: number;
	readonly lastError: { readonly failure: UpstreamFailure } | null;
}

/** What is wrong, in words for the alert, or null when the app is healthy. */
export function healthProblem(app: AppConfig, state: HealthInputs, quotaGuardShare: number, now: number): string | null {
	const { lastError, consecutiveFailures } = state;
	if (lastError && consecutiveFailures > 0) {
		const { failure } = lastError;
		const repeated = consecutiveFailures >= ALERT_AFTER_TRANSIENT_FAILURES || !isUsable(state.current, now);
		if (failure.class !== "retryable" || repeated) {
			return `token refresh failing (${consecutiveFailures} in a row): ${failure.message}`;
		}
	}
	const used = usageToday(state.usage, now).calls[endpointFor(app)];
	const guard = Math.floor(app.dailyQuota * quotaGuardShare);
	if (used >= guard) {
		return `daily quota nearly spent: ${used} of ${app.dailyQuota} ${endpointFor(app)} calls today; forced refreshes are refused until 00:00 China time`;
	}
	return null;
}
