/**
 * The changes to an app's entry that a token authority makes for the admin API and for WeChat's
 * authorisation pushes: configure (PUT /admin/apps), wipe (DELETE), a sibling's new corp count, reseal,
 * and a granted app's adoption and revocation (an authorizer's, an installed company's). They run one after another, each whole, in the order they
 * arrived (#change): a DELETE arriving during a PUT runs after it. Memory only: a change lost with its
 * instance was never answered, and the operator (or WeChat, which retries its push) sends it again.
 */
import type { AppProfile, BrokerConfig } from "../config/config";
import { CREDENTIAL_TYPES, type CredentialType } from "../core/credentials";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { edgeKey, issuedKey, REGISTERED_APP_KEY } from "../core/storage-keys";
import { tokenDigest } from "../edge/issued-index";
import type { Refresher } from "../engine/refresher";
import type { AuthorityState } from "../engine/state";
import type { AppEnv } from "../env";
import { registry, type AppRow } from "../registry/registry";
import { grantParent, type GrantDesk, type GrantParent } from "./sealed-grant";
import { isStoredRegisteredApp, resealApp, sealApp, type OpenedApp, type StoredRegisteredApp } from "./registered-app";
import { authority } from "./stub";

export type ConfigureResult =
	| { readonly stored: true; readonly created: boolean; readonly row: AppRow; readonly token: Outcome }
	| { readonly stored: false; readonly failure: Failure };

export interface AppAdminHost {
	readonly storage: DurableObjectStorage;
	readonly env: AppEnv;
	config(): BrokerConfig;
	state(): AuthorityState;
	/** The object's registry entry, opened (registered-app.ts). */
	registered(): OpenedApp | undefined;
	setRegistered(opened: OpenedApp | undefined): void;
	refresherFor(appid: string, type: CredentialType): Refresher | { failure: Failure };
	/** Resolves when no refresh or exchange is under way. */
	idle(): Promise<void>;
	/** From now on the app no longer exists for any call that arrives (its wipe has begun). */
	startDeleting(): void;
	/** The alarm and the app's row in the schedule index go. */
	disarm(appid: string): Promise<void>;
	/** After deleteAll: the object starts again as new (state, refreshers, the app it served, the deleting flag). */
	reset(): void;
	/** The object's entry went: a registry component it opened is forgotten too. */
	forgetEntry(): void;
	readonly authorizer: GrantDesk;
}

export class AppAdmin {
	readonly #host: AppAdminHost;
	#queue: Promise<unknown> = Promise.resolve();

	constructor(host: AppAdminHost) {
		this.#host = host;
	}

	/**
	 * PUT /admin/apps/{appid}: stores the app's profile and its secret, sealed, records it in the Registry's
	 * catalog, and fetches its first token at once, so a wrong secret is reported to the operator who typed
	 * it. The app is stored either way. A replaced secret ends any backoff and is checked with a fresh normal
	 * refresh once any refresh under way (with the old secret) has landed (stable: returns the live token and
	 * revokes nothing; classic: one mint, the old token still accepted for 300 s).
	 */
	configure(profile: AppProfile, secret: string): Promise<ConfigureResult> {
		return this.#change(async () => {
			let stored: StoredRegisteredApp;
			try {
				stored = await sealApp(this.#host.env, profile, secret);
			} catch (error) {
				if (error instanceof BrokerError) return { stored: false, failure: { code: "config_error", message: error.message } };
				throw error;
			}
			await this.#host.storage.put(REGISTERED_APP_KEY, stored);
			const before = this.#openedApp();
			this.#host.setRegistered({ app: { ...profile, secret }, sealed: stored.sealed });
			const secretChanged = before !== undefined && before.secret !== secret;
			log("info", "app_configured", { appid: profile.appid, replaced: before !== undefined, secret_changed: secretChanged });
			const { created, row, siblings } = await registry(this.#host.env).putApp(profile, stored.sealed.kid, this.#secretEntriesOf(profile.corpid));
			// The Registry counts a corp's entries (their share of its ticket limit): its count is the one kept.
			if (row.profile.corpEntries !== profile.corpEntries) await this.updateProfile(row.profile);
			await this.#tellSiblings(siblings);
			const refresher = this.#host.refresherFor(profile.appid, "token");
			if ("failure" in refresher) return { stored: true, created, row, token: fail(refresher.failure) };
			// A refresh under way was sent with the old secret: its answer says nothing of the new one.
			await refresher.idle();
			const token = secretChanged ? await refresher.refreshNow("configure") : await refresher.get();
			return { stored: true, created, row, token };
		});
	}

	/**
	 * DELETE /admin/apps/{appid}: everything the object holds goes: the sealed secret, every credential,
	 * counters and queued alerts, the alarm; the catalog row, and through the Registry's outbox (retried until
	 * KV takes them) the KV profile, edge copies and the gateway's records of the tokens it knows. A refresh
	 * under way lands first, so nothing is written after the wipe. `keepCredentials`: the app also lives in
	 * WECHAT_APPS, which goes on using this object: only the registry entry goes. `existed` is false when the
	 * catalog had no row; `kvPending`: KV writes the outbox still retries.
	 */
	wipe(appid: string, { keepCredentials = false } = {}): Promise<{ existed: boolean; kvPending: number }> {
		return this.#change(async () => {
			const kvKeys: string[] = [];
			if (!keepCredentials) {
				this.#host.startDeleting();
				await this.#host.idle();
				kvKeys.push(...await this.#credentialKeys(appid));
			}
			const registered = this.#openedApp();
			const { existed, siblings, kvPending } = await registry(this.#host.env).deleteApp(appid, kvKeys, this.#secretEntriesOf(registered?.corpid));
			await this.#tellSiblings(siblings);
			if (keepCredentials) {
				await this.#host.storage.delete(REGISTERED_APP_KEY);
			} else {
				await this.#host.disarm(appid);
				await this.#host.storage.deleteAll();
				this.#host.reset();
			}
			this.#host.setRegistered(undefined);
			this.#host.forgetEntry();
			log("info", "app_deleted", { appid, credentials_kept: keepCredentials, kv_writes_pending: kvPending });
			return { existed, kvPending };
		});
	}

	/** A sibling WeCom entry joined or left this app's corp: its share of the corp's ticket limit changes. */
	async updateProfile(profile: AppProfile): Promise<void> {
		const stored = await this.#host.storage.get<unknown>(REGISTERED_APP_KEY);
		if (!isStoredRegisteredApp(stored) || stored.profile.appid !== profile.appid) return;
		await this.#host.storage.put(REGISTERED_APP_KEY, { ...stored, profile });
		const registered = this.#host.registered();
		if (registered && "app" in registered) this.#host.setRegistered({ ...registered, app: { ...registered.app, ...profile } });
	}

	/** POST /admin/registry/reseal: the sealed secret again under the current REGISTRY_KEY; the key id it is under. */
	async reseal(): Promise<{ kid: string } | { failure: Failure } | null> {
		const stored = await this.#host.storage.get<unknown>(REGISTERED_APP_KEY);
		if (!isStoredRegisteredApp(stored)) return null;
		try {
			const resealed = await resealApp(this.#host.env, stored);
			if (!resealed) return { kid: stored.sealed.kid };
			await this.#host.storage.put(REGISTERED_APP_KEY, resealed);
			const registered = this.#host.registered();
			if (registered) this.#host.setRegistered({ ...registered, sealed: resealed.sealed });
			return { kid: resealed.sealed.kid };
		} catch (error) {
			if (error instanceof BrokerError) return { failure: { code: "config_error", message: error.message } };
			throw error;
		}
	}

	/**
	 * In an authorizer's object, from its component's (authorizations.ts), or in an installed company's, from
	 * its suite's (suite-installs.ts): a new grant (refresh token, permanent code), sealed here; the app
	 * registered (its entry records its parent) and its first token fetched, which arms its alarm.
	 */
	adoptGrant(profile: AppProfile, grant: string): Promise<Outcome> {
		return this.#change(async () => {
			const existing = this.#openedApp();
			if (this.#host.config().apps.has(profile.appid) || (existing && existing.mode !== profile.mode)) {
				// An account configured with its own secret keeps it: its entry is the operator's, not the platform's.
				const parent = grantParent(profile);
				log("warn", "grant_not_adopted", { appid: profile.appid, reason: "configured_with_secret" });
				return fail({ code: "config_error", message: `${profile.appid} is configured with its own secret on this broker; its grant from ${parent?.kind ?? "?"} ${parent?.id ?? "?"} does not replace that entry (use its own /token).` });
			}
			const stored = await this.#host.authorizer.adopt(profile, grant);
			await registry(this.#host.env).putApp(profile, stored.sealed.kid);
			const refresher = this.#host.refresherFor(profile.appid, "token");
			if ("failure" in refresher) return fail(refresher.failure);
			refresher.forgetBackoff();
			await refresher.idle();
			// The api_query_auth that brought this refresh token minted a token too, which may have revoked the
			// one held (no overlap assumed): a held one is replaced now, its KV copy retracted first. (A new
			// permanent code, after a reset or a reinstall, is checked the same way: the held token was the old one's.)
			return this.#host.state().slots.token?.current ? refresher.refreshNow("configure") : refresher.get();
		});
	}

	/**
	 * In a granted app's object: the grant was revoked (`unauthorized`, `cancel_auth`). Its credentials go
	 * from storage and KV and its alarm is disarmed; its catalog entry stays, marked revoked, so /token names it.
	 */
	revokeGrant(appid: string, parent: GrantParent): Promise<AppProfile | null> {
		return this.#change(async () => {
			const registered = this.#openedApp();
			const held = registered && grantParent(registered);
			if (!registered || !held || held.kind !== parent.kind || held.id !== parent.id) return null;
			this.#host.startDeleting();
			await this.#host.idle();
			const kvKeys = await this.#credentialKeys(appid);
			const { secret: _wiped, ...profile } = registered;
			const at = Date.now();
			const revoked: AppProfile = { ...profile, revokedAt: at };
			await registry(this.#host.env).revokeApp(revoked, kvKeys);
			await this.#host.disarm(appid);
			await this.#host.storage.deleteAll();
			await this.#host.authorizer.revoked(parent, at);
			this.#host.reset();
			this.#host.setRegistered(undefined);
			log("info", "grant_revoked", { appid, parent: parent.id });
			return revoked;
		});
	}

	#change<T>(change: () => Promise<T>): Promise<T> {
		const run = this.#queue.then(change, change);
		this.#queue = run.catch(() => undefined);
		return run;
	}

	#openedApp() {
		const registered = this.#host.registered();
		return registered && "app" in registered ? registered.app : undefined;
	}

	/** The KV keys of the app's credentials: its edge copies and the gateway's records of its tokens. */
	async #credentialKeys(appid: string): Promise<string[]> {
		const { token } = this.#host.state().slots;
		const tokens = [token?.current?.value, token?.previous?.value].filter((t): t is string => !!t);
		return [...CREDENTIAL_TYPES.map((type) => edgeKey(appid, type)), ...await Promise.all(tokens.map(async (t) => issuedKey(await tokenDigest(t))))];
	}

	/** The corp's entries in WECHAT_APPS, which the Registry does not see (for the corp's entry count). */
	#secretEntriesOf(corpid: string | undefined): number {
		return corpid === undefined ? 0 : [...this.#host.config().apps.values()].filter((app) => app.corpid === corpid).length;
	}

	async #tellSiblings(siblings: readonly AppProfile[]): Promise<void> {
		await Promise.all(siblings.map((profile) => authority(this.#host.env, profile.appid).updateProfile(profile)));
	}
}
