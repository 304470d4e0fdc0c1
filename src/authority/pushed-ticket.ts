/**
 * A ticket the platform pushes and the broker cannot pull, and the watch over its pushes that the engine
 * cannot see: the open platform's component_verify_ticket (every ~10 min, valid 12 h; component-token.ts)
 * and WeCom's suite_ticket (every ~10 min, 7-15 observed, valid 30 min; suite-token.ts). Each is stored,
 * newest kept, by the object that receives it (component.ts, suite.ts); the token that is fetched with it
 * is the object's `token` slot on the refresh engine (engine/kinds.ts, `ticketed`).
 *
 * - Silence is the only sign that pushes stopped: no push for `staleMs` is a problem whose words name what
 *   to check, and the alarm wakes for that moment (`wake`), so the incident opens with zero traffic.
 * - A refusal of the ticket (its errcodes), or no ticket at all (the kind's `missing` failure, sent nowhere),
 *   is a failure of the token's refresh, an incident through the engine's own rule.
 * - A push that arrives while the token is not usable, or while its last refresh wanted a ticket, ends the
 *   backoff (`unblocks`), so the alarm, re-armed at once, fetches the token promptly.
 *
 * Memory holds only when the newest ticket was pushed and stored, never the ticket: it is read from
 * storage for each fetch. Losing the memory copy is fine: `load` reads it back before any call.
 */
import { isUsable } from "../core/lifetime";
import type { TicketedFetch } from "../engine/kinds";
import type { SlotState } from "../engine/state";

/** What any stored pushed ticket holds: the ticket and when this object stored it (ms). */
export interface StoredPush {
	readonly ticket: string;
	readonly receivedAt: number;
}

export interface PushedTicketSpec<T extends StoredPush> {
	/** The storage key it lives under (core/storage-keys.ts). */
	readonly key: string;
	/** No push for this long is news (ms). */
	readonly staleMs: number;
	/** When the platform made the push (its own clock, s): what "newest" means. */
	pushedAt(stored: T): number;
	/** The problem after `minutes` of silence, naming what to check. */
	silence(minutes: number): string;
}

/** When the newest ticket was pushed (platform clock, s) and stored (ms). */
export interface PushSeen {
	readonly pushedAt: number;
	readonly receivedAt: number;
}

/** The token's last refresh failed for want of a usable ticket: none pushed, or one the platform refused. */
export function ticketRefused(ticketed: TicketedFetch, slot: SlotState | undefined): boolean {
	const failure = slot?.lastError?.failure;
	if (!failure || slot!.consecutiveFailures === 0) return false;
	return failure.errcode !== undefined ? ticketed.refusals.has(failure.errcode) : failure.message === ticketed.missing.message;
}

export class PushedTicket<T extends StoredPush> {
	readonly #storage: DurableObjectStorage;
	readonly #spec: PushedTicketSpec<T>;
	#seen: PushSeen | null = null;

	constructor(storage: DurableObjectStorage, spec: PushedTicketSpec<T>) {
		this.#storage = storage;
		this.#spec = spec;
	}

	/** In the object's constructor, before any call is delivered. */
	async load(): Promise<void> {
		const stored = await this.#storage.get<T>(this.#spec.key);
		this.#seen = stored ? { pushedAt: this.#spec.pushedAt(stored), receivedAt: stored.receivedAt } : null;
	}

	/** The ticket itself, for the token's fetch: read from storage, never held in memory longer. */
	async ticket(): Promise<string | null> {
		return (await this.#storage.get<T>(this.#spec.key))?.ticket ?? null;
	}

	/** A push stored a newer ticket. */
	arrived(seen: PushSeen): void {
		this.#seen = seen;
	}

	seen(): PushSeen | null {
		return this.#seen;
	}

	/** No push for staleMs, in words for the alert; null while pushes arrive (or before the first). */
	problem(now: number): string | null {
		if (!this.#seen || now - this.#seen.receivedAt < this.#spec.staleMs) return null;
		return this.#spec.silence(Math.floor((now - this.#seen.receivedAt) / 60_000));
	}

	/** When the silence becomes an incident, for the alarm; null once it is one (or before the first push). */
	wake(now: number): number | null {
		if (!this.#seen) return null;
		const at = this.#seen.receivedAt + this.#spec.staleMs;
		return at > now ? at : null;
	}

	/** Whether a push that just arrived should end the token's backoff: it has no usable token, or wanted a ticket. */
	unblocks(ticketed: TicketedFetch, slot: SlotState | undefined, now: number): boolean {
		return !isUsable(slot?.current, now) || ticketRefused(ticketed, slot);
	}
}
