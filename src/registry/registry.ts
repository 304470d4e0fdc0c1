/**
 * Registry: the catalog of apps and API keys added through the admin API (routes/admin.ts). One Durable
 * Object per deployment (`idFromName("registry")`), SQLite-backed, strongly consistent: it answers the
 * admin API's writes, listings and counts, and nothing else. No read of /token, /ticket or the gateway ever
 * asks it; they read the KV index it maintains (registry/lookup.ts), so the hot path costs the same with
 * 10,000 keys as with 3.
 *
 * What it holds (core/storage-keys.ts has the schema): per app its profile (everything but the secret) and
 * which key sealed its secret; per key its name, SHA-256 digest, scope and role (key-catalog.ts); per
 * component and suite the same as per app (account-catalog.ts). Secrets are not here: each app's secret is
 * sealed inside that app's own TokenAuthority, the only code that uses it.
 *
 * Why one object is enough at 100,000 apps: it is written only when an operator (or, later, WeChat's
 * authorisation push) changes something, read only by the admin API and /admin/registry, and a row is
 * ~300 bytes: 100,000 apps are ~30 MB of its 10 GB, and a page is one indexed range query.
 *
 * KV is written through an outbox: a change and its KV writes are recorded in one SQLite transaction, then
 * the writes are sent; any KV refuses (its one-write-per-second-per-key limit, an outage) stay in the outbox
 * and are retried from this object's alarm, so the edge index cannot silently miss a change. Until a write
 * lands, other isolates see the previous value: the propagation bound (README) counts from the write.
 */
import { DurableObject } from "cloudflare:workers";
import type { AppProfile, ComponentProfile, SuiteProfile } from "../config/types";
import { appProfileKey, componentProfileKey, corpEntriesKey, REGISTRY_OBJECT_NAME, suiteProfileKey } from "../core/storage-keys";
import type { AppEnv } from "../env";
import { AccountCatalog, type AccountRow } from "./account-catalog";
import { KeyCatalog, type CreateKeyResult, type KeyRow, type RegisteredKey } from "./key-catalog";
import { KvOutbox, OUTBOX_TABLE } from "./kv-outbox";

export type { CreateKeyResult, KeyRow, RegisteredKey } from "./key-catalog";
export type ComponentRow = AccountRow<ComponentProfile>;
export type SuiteRow = AccountRow<SuiteProfile>;

export interface AppRow {
	readonly profile: AppProfile;
	/** Which key sealed the app's secret (registry/seal.ts). */
	readonly sealedKid: string;
	readonly created_at: number;
	readonly updated_at: number;
}

export class Registry extends DurableObject<AppEnv> {
	readonly #sql: SqlStorage;
	readonly #outbox: KvOutbox;
	readonly #keys: KeyCatalog;
	readonly #components: AccountCatalog<ComponentProfile>;
	readonly #suites: AccountCatalog<SuiteProfile>;

	constructor(ctx: DurableObjectState, env: AppEnv) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		this.#outbox = new KvOutbox(ctx.storage, () => this.env.TOKEN_CACHE);
		this.#keys = new KeyCatalog(ctx.storage, this.#outbox);
		this.#components = new AccountCatalog(ctx.storage, this.#outbox, {
			table: "components", idColumn: "component_appid", idOf: (profile) => profile.componentAppid, kvKey: componentProfileKey,
		});
		this.#suites = new AccountCatalog(ctx.storage, this.#outbox, {
			table: "suites", idColumn: "suite_id", idOf: (profile) => profile.suiteId, kvKey: suiteProfileKey,
		});
		this.#sql.exec(`
			CREATE TABLE IF NOT EXISTS apps (
				appid TEXT PRIMARY KEY, corpid TEXT, profile TEXT NOT NULL, sealed_kid TEXT NOT NULL,
				created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
			CREATE INDEX IF NOT EXISTS apps_by_corp ON apps (corpid) WHERE corpid IS NOT NULL;
			CREATE INDEX IF NOT EXISTS apps_by_kid ON apps (sealed_kid);
			CREATE INDEX IF NOT EXISTS apps_by_component ON apps (json_extract(profile, '$.componentAppid'), appid)
				WHERE json_extract(profile, '$.componentAppid') IS NOT NULL;
			CREATE TABLE IF NOT EXISTS keys (
				name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, apps TEXT NOT NULL, admin INTEGER NOT NULL,
				created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
			CREATE TABLE IF NOT EXISTS components (
				component_appid TEXT PRIMARY KEY, profile TEXT NOT NULL, sealed_kid TEXT NOT NULL,
				created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
			CREATE TABLE IF NOT EXISTS suites (
				suite_id TEXT PRIMARY KEY, profile TEXT NOT NULL, sealed_kid TEXT NOT NULL,
				created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
			${OUTBOX_TABLE}
		`);
	}

	/**
	 * Creates or replaces an app's catalog row and its KV profile. A WeCom entry's corp shares one hourly
	 * ticket limit between its entries, so each entry's `corpEntries` is recounted here (the registry's
	 * entries plus `secretEntries`, the corp's entries in WECHAT_APPS); `siblings` are the corp's other
	 * registry entries whose count changed, for their objects to be told.
	 */
	async putApp(profile: AppProfile, sealedKid: string, secretEntries = 0): Promise<{ created: boolean; row: AppRow; siblings: AppProfile[] }> {
		const now = Date.now();
		const existing = this.#appRow(profile.appid);
		const created_at = existing?.created_at ?? now;
		let siblings: AppProfile[] = [];
		let stored = profile;
		this.ctx.storage.transactionSync(() => {
			// Added again after a delete whose KV deletes are still being retried: its object writes those keys anew.
			this.#outbox.forgetDeletesOf(profile.appid);
			this.#sql.exec(
				`INSERT INTO apps (appid, corpid, profile, sealed_kid, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
				 ON CONFLICT (appid) DO UPDATE SET corpid = excluded.corpid, profile = excluded.profile,
				   sealed_kid = excluded.sealed_kid, updated_at = excluded.updated_at`,
				profile.appid, profile.corpid ?? null, JSON.stringify(profile), sealedKid, created_at, now);
			this.#outbox.enqueue(appProfileKey(profile.appid), JSON.stringify(profile));
			if (existing?.profile.corpid && existing.profile.corpid !== profile.corpid) siblings.push(...this.#recountCorp(existing.profile.corpid, secretEntries, null));
			if (profile.corpid) {
				const recounted = this.#recountCorp(profile.corpid, secretEntries, profile.appid);
				stored = this.#appRow(profile.appid)!.profile;
				siblings.push(...recounted);
			}
		});
		siblings = siblings.filter((sibling) => sibling.appid !== profile.appid);
		await this.#outbox.flush();
		return { created: !existing, row: { profile: stored, sealedKid, created_at, updated_at: now }, siblings };
	}

	/** Creates or replaces an open-platform component's catalog row and its KV profile. */
	putComponent(profile: ComponentProfile, sealedKid: string): Promise<{ created: boolean; row: ComponentRow }> {
		return this.#components.put(profile, sealedKid);
	}

	getComponent(componentAppid: string): ComponentRow | null {
		return this.#components.get(componentAppid);
	}

	/** Creates or replaces a WeCom suite's catalog row and its KV profile. */
	putSuite(profile: SuiteProfile, sealedKid: string): Promise<{ created: boolean; row: SuiteRow }> {
		return this.#suites.put(profile, sealedKid);
	}

	getSuite(suiteId: string): SuiteRow | null {
		return this.#suites.get(suiteId);
	}

	getApp(appid: string): AppRow | null {
		return this.#appRow(appid);
	}

	/** Apps after `after` in appid order (keyset paging: stable under concurrent writes, no OFFSET scan). */
	listApps(after: string | null, limit: number): AppRow[] {
		return this.#sql.exec<AppSqlRow>(
			"SELECT profile, sealed_kid, created_at, updated_at FROM apps WHERE appid > ? ORDER BY appid LIMIT ?", after ?? "", limit,
		).toArray().map(toAppRow);
	}

	/**
	 * Removes an app's row and its KV profile, and deletes `kvKeys` (the app's edge copies and issued
	 * records) through the outbox, so a delete KV refuses is retried, not lost. `existed`: it had a row.
	 */
	async deleteApp(appid: string, kvKeys: readonly string[] = [], secretEntries = 0): Promise<{ existed: boolean; siblings: AppProfile[]; kvPending: number }> {
		const existing = this.#appRow(appid);
		let siblings: AppProfile[] = [];
		this.ctx.storage.transactionSync(() => {
			this.#sql.exec("DELETE FROM apps WHERE appid = ?", appid);
			this.#outbox.enqueue(appProfileKey(appid), null);
			for (const key of kvKeys) this.#outbox.enqueue(key, null, appid);
			if (existing?.profile.corpid) siblings = this.#recountCorp(existing.profile.corpid, secretEntries, null);
		});
		await this.#outbox.flush();
		return { existed: existing !== null, siblings, kvPending: this.#outbox.pending() };
	}

	/**
	 * An authorizer the account revoked: its row and KV profile stay, marked revoked (reads name the
	 * revocation), and `kvKeys` (its edge copies and issued records) are deleted through the outbox.
	 */
	async revokeApp(profile: AppProfile, kvKeys: readonly string[]): Promise<void> {
		this.ctx.storage.transactionSync(() => {
			this.#sql.exec("UPDATE apps SET profile = ?, updated_at = ? WHERE appid = ?", JSON.stringify(profile), Date.now(), profile.appid);
			this.#outbox.enqueue(appProfileKey(profile.appid), JSON.stringify(profile));
			// Owned, like a deletion's: an authorisation again drops what is still owed (putApp).
			for (const key of kvKeys) this.#outbox.enqueue(key, null, profile.appid);
		});
		await this.#outbox.flush();
	}

	/** A component's authorizers after `after`, in appid order (GET /open/{c}/authorizers). */
	listAuthorizers(componentAppid: string, after: string | null, limit: number): AppRow[] {
		return this.#sql.exec<AppSqlRow>(
			`SELECT profile, sealed_kid, created_at, updated_at FROM apps
			 WHERE json_extract(profile, '$.componentAppid') = ? AND appid > ? ORDER BY appid LIMIT ?`, componentAppid, after ?? "", limit,
		).toArray().map(toAppRow);
	}

	/** The catalog's profiles of these appids (those it has), for a sync pass over one page of WeChat's list. */
	profilesOf(appids: readonly string[]): Record<string, AppProfile> {
		const found: Record<string, AppProfile> = {};
		for (const appid of appids) {
			const row = this.#appRow(appid);
			if (row) found[appid] = row.profile;
		}
		return found;
	}

	/** The registered WeCom entries of a corp (for its entries' shared ticket limit and for gettoken). */
	corpEntries(corpid: string): string[] {
		return this.#sql.exec<{ appid: string }>("SELECT appid FROM apps WHERE corpid = ? ORDER BY appid", corpid).toArray().map((r) => r.appid);
	}

	/** Apps whose secret is sealed with a key other than `currentKid`, after `after`, for a reseal pass. */
	toReseal(currentKid: string, after: string | null, limit: number): string[] {
		return this.#sql.exec<{ appid: string }>(
			"SELECT appid FROM apps WHERE sealed_kid != ? AND appid > ? ORDER BY appid LIMIT ?", currentKid, after ?? "", limit,
		).toArray().map((r) => r.appid);
	}

	/** After a reseal pass: which key each app's secret is now sealed with. */
	setSealedKids(changes: readonly { appid: string; kid: string }[]): void {
		this.ctx.storage.transactionSync(() => {
			for (const { appid, kid } of changes) this.#sql.exec("UPDATE apps SET sealed_kid = ? WHERE appid = ?", kid, appid);
		});
	}

	/** For GET /admin/registry. */
	summary(currentKid: string | null): { apps: number; keys: number; sealed_with_current_key: number; sealed_with_other_keys: number; kv_writes_pending: number } {
		const count = (query: string, ...bindings: unknown[]) => this.#sql.exec<{ n: number }>(query, ...bindings).one().n;
		const apps = count("SELECT COUNT(*) AS n FROM apps");
		const current = currentKid === null ? 0 : count("SELECT COUNT(*) AS n FROM apps WHERE sealed_kid = ?", currentKid);
		return {
			apps, keys: this.#keys.count(),
			sealed_with_current_key: current, sealed_with_other_keys: apps - current,
			kv_writes_pending: this.#outbox.pending(),
		};
	}

	createKey(name: string, digest: string, apps: RegisteredKey["apps"], admin: boolean): Promise<CreateKeyResult> {
		return this.#keys.create(name, digest, apps, admin);
	}

	/** Changes a key's scope or role; null when there is no such key. The digest never changes. */
	updateKey(name: string, change: { apps?: RegisteredKey["apps"]; admin?: boolean }): Promise<KeyRow | null> {
		return this.#keys.update(name, change);
	}

	/** Revokes a key (key-catalog.ts): the digest is returned so the caller's isolate refuses it at once. */
	deleteKey(name: string): Promise<{ digest: string; kvPending: number } | null> {
		return this.#keys.delete(name);
	}

	getKey(name: string): KeyRow | null {
		return this.#keys.get(name);
	}

	listKeys(after: string | null, limit: number): KeyRow[] {
		return this.#keys.list(after, limit);
	}

	/** Retries KV writes that were refused. */
	override async alarm(): Promise<void> {
		await this.#outbox.flush();
	}

	#appRow(appid: string): AppRow | null {
		const rows = this.#sql.exec<AppSqlRow>("SELECT profile, sealed_kid, created_at, updated_at FROM apps WHERE appid = ?", appid).toArray();
		return rows.length > 0 ? toAppRow(rows[0]!) : null;
	}

	/**
	 * Inside the caller's transaction: the corp's entry list in KV, and every registry entry's `corpEntries`
	 * set to the corp's count now. Returns the entries whose count changed (`always` is returned anyway).
	 */
	#recountCorp(corpid: string, secretEntries: number, always: string | null): AppProfile[] {
		const ids = this.corpEntries(corpid);
		this.#outbox.enqueue(corpEntriesKey(corpid), ids.length > 0 ? JSON.stringify(ids) : null);
		const count = ids.length + secretEntries;
		const changed: AppProfile[] = [];
		for (const id of ids) {
			const row = this.#appRow(id)!;
			if (row.profile.corpEntries === count && id !== always) continue;
			const profile = { ...row.profile, corpEntries: count };
			this.#sql.exec("UPDATE apps SET profile = ? WHERE appid = ?", JSON.stringify(profile), id);
			this.#outbox.enqueue(appProfileKey(id), JSON.stringify(profile));
			changed.push(profile);
		}
		return changed;
	}
}

interface AppSqlRow extends Record<string, SqlStorageValue> {
	profile: string;
	sealed_kid: string;
	created_at: number;
	updated_at: number;
}

function toAppRow(r: AppSqlRow): AppRow {
	return { profile: JSON.parse(r.profile) as AppProfile, sealedKid: r.sealed_kid, created_at: r.created_at, updated_at: r.updated_at };
}

export function registry(env: Pick<AppEnv, "REGISTRY">): DurableObjectStub<Registry> {
	return env.REGISTRY.get(env.REGISTRY.idFromName(REGISTRY_OBJECT_NAME));
}
