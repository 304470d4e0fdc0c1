/**
 * The Registry's API keys (table keys, core/storage-keys.ts): per key its name, SHA-256 digest, scope and
 * role, never the key. Each change writes the key's hot entry (KV "apikey:v1:<digest>", what
 * access/auth.ts reads) through the outbox in the same transaction, so the edge index follows every change.
 */
import { apiKeyKey } from "../core/storage-keys";
import type { KvOutbox } from "./kv-outbox";

/** An API key as the hot path knows it (KV "apikey:v1:<digest>"): never the key or its digest. */
export interface RegisteredKey {
	readonly name: string;
	/** `"*"`, or appids and `corp:<corpid>` / `component:<appid>` scopes. */
	readonly apps: "*" | readonly string[];
	readonly admin: boolean;
}

export interface KeyRow extends RegisteredKey {
	readonly created_at: number;
	readonly updated_at: number;
}

export type CreateKeyResult = { ok: true; row: KeyRow } | { ok: false; conflict: "name" | "digest" };

interface KeySqlRow extends Record<string, SqlStorageValue> {
	name: string;
	digest: string;
	apps: string;
	admin: number;
	created_at: number;
	updated_at: number;
}

const COLUMNS = "name, digest, apps, admin, created_at, updated_at";

export class KeyCatalog {
	readonly #storage: DurableObjectStorage;
	readonly #sql: SqlStorage;
	readonly #outbox: KvOutbox;

	constructor(storage: DurableObjectStorage, outbox: KvOutbox) {
		this.#storage = storage;
		this.#sql = storage.sql;
		this.#outbox = outbox;
	}

	async create(name: string, digest: string, apps: RegisteredKey["apps"], admin: boolean): Promise<CreateKeyResult> {
		if (this.#row(name)) return { ok: false, conflict: "name" };
		if (this.#sql.exec("SELECT 1 FROM keys WHERE digest = ?", digest).toArray().length > 0) return { ok: false, conflict: "digest" };
		const now = Date.now();
		const row: KeyRow = { name, apps, admin, created_at: now, updated_at: now };
		this.#storage.transactionSync(() => {
			this.#sql.exec(`INSERT INTO keys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`, name, digest, JSON.stringify(apps), admin ? 1 : 0, now, now);
			this.#outbox.enqueue(apiKeyKey(digest), JSON.stringify(hotKey(row)));
		});
		await this.#outbox.flush();
		return { ok: true, row };
	}

	/** Changes a key's scope or role; null when there is no such key. The digest never changes. */
	async update(name: string, change: { apps?: RegisteredKey["apps"]; admin?: boolean }): Promise<KeyRow | null> {
		const existing = this.#row(name);
		if (!existing) return null;
		const row: KeyRow = { ...existing.row, ...change, updated_at: Date.now() };
		this.#storage.transactionSync(() => {
			this.#sql.exec("UPDATE keys SET apps = ?, admin = ?, updated_at = ? WHERE name = ?", JSON.stringify(row.apps), row.admin ? 1 : 0, row.updated_at, name);
			this.#outbox.enqueue(apiKeyKey(existing.digest), JSON.stringify(hotKey(row)));
		});
		await this.#outbox.flush();
		return row;
	}

	/**
	 * Revokes a key: its row and its KV entry go; the digest is returned so the caller's isolate refuses it
	 * at once, whatever KV says meanwhile.
	 */
	async delete(name: string): Promise<{ digest: string; kvPending: number } | null> {
		const existing = this.#row(name);
		if (!existing) return null;
		this.#storage.transactionSync(() => {
			this.#sql.exec("DELETE FROM keys WHERE name = ?", name);
			this.#outbox.enqueue(apiKeyKey(existing.digest), null);
		});
		await this.#outbox.flush();
		return { digest: existing.digest, kvPending: this.#outbox.pending() };
	}

	get(name: string): KeyRow | null {
		return this.#row(name)?.row ?? null;
	}

	list(after: string | null, limit: number): KeyRow[] {
		return this.#sql.exec<KeySqlRow>(`SELECT ${COLUMNS} FROM keys WHERE name > ? ORDER BY name LIMIT ?`, after ?? "", limit)
			.toArray().map((r) => toKeyRow(r).row);
	}

	count(): number {
		return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM keys").one().n;
	}

	#row(name: string): { row: KeyRow; digest: string } | null {
		const rows = this.#sql.exec<KeySqlRow>(`SELECT ${COLUMNS} FROM keys WHERE name = ?`, name).toArray();
		return rows.length > 0 ? toKeyRow(rows[0]!) : null;
	}
}

function toKeyRow(r: KeySqlRow): { row: KeyRow; digest: string } {
	return {
		row: { name: r.name, apps: JSON.parse(r.apps) as KeyRow["apps"], admin: r.admin === 1, created_at: r.created_at, updated_at: r.updated_at },
		digest: r.digest,
	};
}

function hotKey(row: KeyRow): RegisteredKey {
	return { name: row.name, apps: row.apps, admin: row.admin };
}
