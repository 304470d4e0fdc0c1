/**
 * When an app's object must next wake up on its own (its alarm, authority/alarm-chain.ts), read off its
 * state: the earliest moment at which the work the alarm does (TokenAuthority.refreshIfDue) would act.
 * Pure, so that the plan can be read and tested apart from the Durable Object; it mirrors the conditions
 * under which the engine acts (refresher.ts `#refreshIfDue`, fetch-and-store.ts), so that an alarm delivered
 * at the planned moment finds exactly that work due, and one delivered earlier or twice finds nothing.
 *
 * Per credential kind:
 * - never asked for (a ticket no client has requested): nothing to plan;
 * - a ticket WeChat refuses the app outright (refusedOutright): nothing to plan, until someone asks again;
 * - an authorizer's token WeChat refused with 61023 / 61003 (needsReauthorisation): nothing to plan, since no
 *   call is sent until the account authorises again, and that arms the alarm anew;
 * - after a failure of a call that revokes nothing (stable, WeCom, tickets; not classic or no_overlap): the end of its backoff
 *   (`retryAt`), due or not, so an incident a blip opened closes as soon as WeChat answers again;
 * - otherwise its planned refresh (`refreshAt`), or the end of its failure backoff if later (`retryAt`);
 *   no usable value and no backoff: now;
 * - a WeCom ticket whose hourly limit is spent: not before the next clock hour (fetch-and-store refuses
 *   sooner without a call, so an earlier wake would only spin).
 * For the app:
 * - an open incident: the next WeChat day (00:00 China time), when a quota incident closes (health.ts);
 * - housekeeping (an edge copy KV did not take, an alert the webhook refused): `housekeepingAt`, a moment
 *   the caller keeps (alarm-chain.ts), since neither has a time of its own in the state.
 */
import type { AppConfig } from "../config/config";
import { isUsable, mintsOnRefresh } from "../core/lifetime";
import { callsThisHour, nextHour, nextQuotaReset } from "../core/usage";
import { kindFor, kindsOf } from "./kinds";
import { needsReauthorisation, refusedOutright } from "./health";
import { sameRecord, type AuthorityState, type SlotState } from "./state";
import type { CredentialKind } from "./kinds";
import type { Usage } from "../core/usage";

/** ms since epoch when this credential next needs the engine, or null when nothing is planned for it. */
export function slotWake(kind: CredentialKind, slot: SlotState | undefined, usage: Usage, now: number): number | null {
	if (!slot) return kind.derived ? null : now;
	const { current, retryAt, lastRefresh, lastError } = slot;
	if (kind.derived && !current && !lastRefresh && !lastError) return null;
	if (refusedOutright(kind, slot) || needsReauthorisation(kind, slot)) return null;
	const retrying = slot.consecutiveFailures > 0 && !mintsOnRefresh(kind.policy);
	let wake = retrying ? Math.max(retryAt, now) : Math.max(current ? current.refreshAt : now, retryAt);
	if (kind.hourlyLimit !== null && callsThisHour(usage, kind.call, now) >= kind.hourlyLimit) wake = Math.max(wake, nextHour(now));
	return wake;
}

/**
 * Work the alarm does that has no moment of its own in the state: an edge copy that differs from the current
 * value (KV refused it, or it is being written right now: the caller tells the two apart), and an alert the
 * webhook refused at least once (one never tried is being sent in the background).
 */
export function housekeeping(app: AppConfig, state: AuthorityState, alertsConfigured: boolean, now: number): { edge: boolean; alerts: boolean } {
	return {
		alerts: alertsConfigured && state.alerts.some((alert) => alert.failures > 0),
		edge: kindsOf(app).some((type) => {
			const slot = state.slots[type];
			return slot !== undefined && isUsable(slot.current, now) && !sameRecord(slot.current, slot.edgeRecord);
		}),
	};
}

/**
 * The earliest of every kind's wake, the incident's day turn, and `housekeepingAt` when housekeeping is
 * pending (`edge`: whether a differing edge copy counts, see housekeeping()).
 */
export function nextWake(app: AppConfig, state: AuthorityState, { alertsConfigured, housekeepingAt, edge }: { alertsConfigured: boolean; housekeepingAt: number; edge: boolean }, now: number): number | null {
	const wakes = kindsOf(app).map((type) => slotWake(kindFor(app, type), state.slots[type], state.usage, now));
	if (state.incident) wakes.push(nextQuotaReset(now));
	const pending = housekeeping(app, state, alertsConfigured, now);
	if (pending.alerts || (edge && pending.edge)) wakes.push(housekeepingAt);
	const planned = wakes.filter((w): w is number => w !== null);
	return planned.length > 0 ? Math.min(...planned) : null;
}

/** True while some credential's upstream call is out: its flight ends with a save that plans again. */
export function callInFlight(state: AuthorityState): boolean {
	return Object.values(state.slots).some((slot) => slot?.inFlight);
}
