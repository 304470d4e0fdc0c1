/**
 * The Registry's catalog of accounts that WeChat pushes tickets to: open-platform components (table
 * components) and WeCom suites (table suites), one row each with its profile (everything but its secrets,
 * which are sealed in its own object) and which key sealed them. A change writes the profile to KV (what
 * registry/lookup.ts reads) through the outbox in the same transaction.
 */
import type { KvOutbox } from "./kv-outbox";

export interface AccountRow<P> {
	readonly profile: P;
	/** Which key sealed its secrets (registry/seal.ts). */
	readonly sealedKid: string;
	readonly created_at: number;
	readonly updated_at: number;
}

export interface AccountTable<P> {
	/** The table and its primary-key column (core/storage-keys.ts). */
	readonly table: "components" | "suites";
	readonly idColumn: "component_appid" | "suite_id";
	idOf(profile: P): string;
	/** Its KV profile's key. */
	kvKey(id: string): string;
}

export class AccountCatalog<P> {
	readonly #storage: DurableObjectStorage;
	readonly #outbox: KvOutbox;
	readonly #t: AccountTable<P>;

	constructor(storage: DurableObjectStorage, outbox: KvOutbox, table: AccountTable<P>) {
		this.#storage = storage;
		this.#outbox = outbox;
		this.#t = table;
	}

	/** Creates or replaces the account's row and its KV profile. */
	async put(profile: P, sealedKid: string): Promise<{ created: boolean; row: AccountRow<P> }> {
		const { table, idColumn } = this.#t;
		const id = this.#t.idOf(profile);
		const now = Date.now();
		const existing = this.get(id);
		const created_at = existing?.created_at ?? now;
		this.#storage.transactionSync(() => {
			this.#storage.sql.exec(
				`INSERT INTO ${table} (${idColumn}, profile, sealed_kid, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
				 ON CONFLICT (${idColumn}) DO UPDATE SET profile = excluded.profile, sealed_kid = excluded.sealed_kid, updated_at = excluded.updated_at`,
				id, JSON.stringify(profile), sealedKid, created_at, now);
			this.#outbox.enqueue(this.#t.kvKey(id), JSON.stringify(profile));
		});
		await this.#outbox.flush();
		return { created: !existing, row: { profile, sealedKid, created_at, updated_at: now } };
	}

	get(id: string): AccountRow<P> | null {
		const r = this.#storage.sql.exec<{ profile: string; sealed_kid: string; created_at: number; updated_at: number }>(
			`SELECT profile, sealed_kid, created_at, updated_at FROM ${this.#t.table} WHERE ${this.#t.idColumn} = ?`, id).toArray()[0];
		return r ? { profile: JSON.parse(r.profile) as P, sealedKid: r.sealed_kid, created_at: r.created_at, updated_at: r.updated_at } : null;
	}
}
