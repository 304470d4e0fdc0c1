/**
 * The Registry's KV outbox (table kv_outbox, core/storage-keys.ts): every KV write the Registry owes is
 * recorded in SQLite in the same transaction as the change that caused it, then sent; a write KV refuses
 * (its one-write-a-second-per-key limit, an outage) stays and is retried from the object's alarm, so the
 * edge index cannot silently miss a change. The alarm is armed before anything is sent, so an object reset
 * while writes are out still finishes them.
 */
import { log } from "../core/log";

/** A KV write that failed is tried again this much later (KV allows one write a second per key). */
export const OUTBOX_RETRY_MS = 2_000;
/** KV writes sent per flush; the rest wait for the next one (a Worker invocation's subrequests are bounded). */
const OUTBOX_BATCH = 100;

/**
 * kv_outbox_owner: the app whose deletion queued a delete (its edge copy, its tokens' gateway records), so
 * that adding the app again drops deletes still owed: the re-added app's object writes those keys afresh
 * (a stable app is handed the same token again), and a late retry of the old delete would erase them.
 */
export const OUTBOX_TABLE = `CREATE TABLE IF NOT EXISTS kv_outbox (key TEXT PRIMARY KEY, value TEXT, version INTEGER NOT NULL);
	CREATE TABLE IF NOT EXISTS kv_outbox_owner (key TEXT PRIMARY KEY, appid TEXT NOT NULL);`;

export class KvOutbox {
	readonly #sql: SqlStorage;
	readonly #storage: DurableObjectStorage;
	readonly #kv: () => KVNamespace;
	/** The flush under way (memory only: a lost one is redone from the outbox by the alarm). */
	#flushing: Promise<void> | null = null;
	#flushAgain = false;

	constructor(storage: DurableObjectStorage, kv: () => KVNamespace) {
		this.#storage = storage;
		this.#sql = storage.sql;
		this.#kv = kv;
	}

	/**
	 * A KV write to send (null: a delete); a newer one for the same key replaces it. `owner`: the app a delete
	 * belongs to (forgetDeletesOf). Inside the caller's transaction.
	 */
	enqueue(key: string, value: string | null, owner?: string): void {
		this.#sql.exec(
			"INSERT INTO kv_outbox (key, value, version) VALUES (?, ?, 1) ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = version + 1",
			key, value);
		if (owner !== undefined && value === null) this.#sql.exec("INSERT OR REPLACE INTO kv_outbox_owner (key, appid) VALUES (?, ?)", key, owner);
		else this.#sql.exec("DELETE FROM kv_outbox_owner WHERE key = ?", key);
	}

	/** Drops the deletes an app's deletion still owes (it is being added again). Inside the caller's transaction. */
	forgetDeletesOf(appid: string): void {
		this.#sql.exec("DELETE FROM kv_outbox WHERE value IS NULL AND key IN (SELECT key FROM kv_outbox_owner WHERE appid = ?)", appid);
		this.#sql.exec("DELETE FROM kv_outbox_owner WHERE appid = ?", appid);
	}

	/** KV writes not yet taken. */
	pending(): number {
		return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM kv_outbox").one().n;
	}

	/** Sends the outbox; one flush at a time, and one more if a change came in while it ran. */
	flush(): Promise<void> {
		if (this.#flushing) {
			this.#flushAgain = true;
			return this.#flushing;
		}
		this.#flushing = (async () => {
			do {
				this.#flushAgain = false;
				await this.#send();
			} while (this.#flushAgain);
		})().finally(() => {
			this.#flushing = null;
		});
		return this.#flushing;
	}

	async #send(): Promise<void> {
		await this.#storage.setAlarm(Date.now() + OUTBOX_RETRY_MS);
		const batch = this.#sql.exec<{ key: string; value: string | null; version: number }>(
			"SELECT key, value, version FROM kv_outbox LIMIT ?", OUTBOX_BATCH).toArray();
		let failed = 0;
		await Promise.all(batch.map(async ({ key, value, version }) => {
			try {
				if (value === null) await this.#kv().delete(key);
				else await this.#kv().put(key, value);
				// Only the version sent: a newer value enqueued meanwhile stays, to be sent next.
				this.#sql.exec("DELETE FROM kv_outbox WHERE key = ? AND version = ?", key, version);
				this.#sql.exec("DELETE FROM kv_outbox_owner WHERE key = ? AND key NOT IN (SELECT key FROM kv_outbox)", key);
			} catch (error) {
				failed++;
				log("warn", "registry_kv_write_failed", { key: key.replace(/^((?:apikey|issued):v1:)[0-9a-f]+$/, "$1…"), reason: error instanceof Error ? error.name : "unknown" });
			}
		}));
		if (this.pending() === 0) await this.#storage.deleteAlarm();
		else if (failed === 0) await this.#storage.setAlarm(Date.now());
	}
}
