/**
 * The per-isolate memory tier in front of the KV edge copy: a hot read answers from this isolate's memory
 * instead of paying a KV read (which at the edge is what a hot read costs in latency and money).
 *
 * Generic over the record, keyed by the same strings as KV (keys.ts), so every credential kind whose
 * record carries a `refreshAt` reuses it unchanged.
 *
 * Why serving from memory is safe: an entry lives at most MEMORY_TTL_MS and never past its record's
 * `refreshAt`, so it adds at most MEMORY_TTL_MS to KV's own staleness (edge-cache.ts), and up to
 * `refreshAt` the credential in it is still accepted by WeChat (the same argument as for the KV copy).
 * An isolate that answers an invalidation or an admin refresh stores the new record at once, so the
 * client that reported a dead token never gets it back from this isolate.
 *
 * Memory only and per isolate: losing it (eviction, a new isolate) costs one KV read, nothing else.
 * It holds one entry per configured credential (keys come only from configured appids), so it stays small.
 */

/**
 * A few seconds: long enough that a busy isolate reads KV about once per MEMORY_TTL_MS per credential
 * instead of on every request, short enough that a refresh seen by KV reaches this isolate soon after.
 */
export const MEMORY_TTL_MS = 5_000;

interface Entry<T> {
	readonly record: T;
	/** ms; the entry is not served at or after this instant. */
	readonly until: number;
}

export class MemoryTier<T extends { readonly refreshAt: number }> {
	readonly #entries = new Map<string, Entry<T>>();

	/** The record stored under `key` when it may still be served at `now`. */
	get(key: string, now: number): T | null {
		const entry = this.#entries.get(key);
		if (!entry) return null;
		if (now < entry.until) return entry.record;
		this.#entries.delete(key);
		return null;
	}

	/** Keeps `record` for at most MEMORY_TTL_MS and never past its refreshAt; a record already due is dropped. */
	put(key: string, record: T, now: number): void {
		const until = Math.min(now + MEMORY_TTL_MS, record.refreshAt);
		if (until <= now) this.#entries.delete(key);
		else this.#entries.set(key, { record, until });
	}

	delete(key: string): void {
		this.#entries.delete(key);
	}
}
