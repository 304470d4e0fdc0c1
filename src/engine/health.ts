/**
 * When an app needs a person: a credential's refreshes fail in a way that waiting will not fix, or keep
 * failing, or a daily quota is nearly spent. Pure, so the rule can be read (and tested) apart from the object.
 */
import type { CredentialKind } from "./kinds";
import type { SlotState } from "./state";
import { isUsable } from "../core/lifetime";
import { quotaGuardLimit } from "./refresh-limits";
import { callsToday, type Usage } from "../core/usage";

/** A transient failure is only news when it repeats: one blip that the next refresh fixes is not. */
export const ALERT_AFTER_TRANSIENT_FAILURES = 2;

/** What is wrong, in words for the alert (naming the credential), or null when the app is healthy. */
export function healthProblem(slots: readonly { kind: CredentialKind; slot: SlotState }[], usage: Usage, quotaGuardShare: number, now: number): string | null {
	for (const { kind, slot } of slots) {
		const { lastError, consecutiveFailures } = slot;
		if (!lastError || consecutiveFailures === 0) continue;
		const repeated = consecutiveFailures >= ALERT_AFTER_TRANSIENT_FAILURES || !isUsable(slot.current, now);
		if (lastError.failure.class !== "retryable" || repeated) {
			return `${kind.label} refresh failing (${consecutiveFailures} in a row): ${lastError.failure.message}`;
		}
	}
	for (const { kind } of slots) {
		const used = callsToday(usage, kind.call, now);
		if (used >= quotaGuardLimit(kind, quotaGuardShare)) {
			return `daily quota nearly spent: ${used} of ${kind.dailyQuota} ${kind.call} calls today; forced refreshes are refused until 00:00 China time`;
		}
	}
	return null;
}
