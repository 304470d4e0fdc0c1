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

/**
 * A ticket kind whose last fetch WeChat refused with a fatal errcode (48001 api unauthorized: a mini program
 * has no JS-SDK ticket, an account without the card permission no wx_card): the app does not have it, its
 * token is fine, and nothing a person does to the broker changes that. It is not an incident, and only a
 * request asks for it again (DESIGN.md, "Credentials beyond the access_token"); /status shows the error.
 */
export function refusedOutright(kind: Pick<CredentialKind, "derived">, slot: Pick<SlotState, "lastError" | "consecutiveFailures">): boolean {
	return kind.derived && slot.consecutiveFailures > 0 && slot.lastError?.failure.class === "fatal";
}

/**
 * An authorizer's token whose refresh token WeChat refused (61023) or whose account no longer authorises the
 * component (61003): no call is sent until a new authorisation or a sync replaces the refresh token
 * (authority/authorizer.ts), so there is nothing to retry. It stays an incident: a person must act.
 */
export function needsReauthorisation(kind: Pick<CredentialKind, "regrant">, slot: Pick<SlotState, "lastError" | "consecutiveFailures">): boolean {
	const errcode = slot.lastError?.failure.errcode;
	return kind.regrant !== undefined && slot.consecutiveFailures > 0 && errcode !== undefined && kind.regrant.has(errcode);
}

/** What is wrong, in words for the alert (naming the credential), or null when the app is healthy. */
export function healthProblem(slots: readonly { kind: CredentialKind; slot: SlotState }[], usage: Usage, quotaGuardShare: number, now: number): string | null {
	for (const { kind, slot } of slots) {
		const { lastError, consecutiveFailures } = slot;
		if (!lastError || consecutiveFailures === 0 || refusedOutright(kind, slot)) continue;
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
