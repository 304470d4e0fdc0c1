/**
 * A registry app's entry inside its own TokenAuthority: its profile and its secret, sealed at rest with
 * REGISTRY_KEY (registry/seal.ts) under storage key "registered" (core/storage-keys.ts).
 *
 * The secret arrives once, in the admin API's `configure` call, is sealed before it is stored, and is opened
 * only in this object's memory, when the object starts or is configured: it is never returned by an RPC,
 * logged, or written anywhere else. Losing the opened copy (eviction) costs one decryption at the next start.
 */
import type { AppConfig, AppProfile } from "../config/config";
import type { Failure } from "../core/outcome";
import { BrokerError } from "../core/errors";
import { isSealed, needsReseal, open, seal, sealingKeys, type Sealed } from "../registry/seal";
import type { AppEnv } from "../env";

export interface StoredRegisteredApp {
	readonly profile: AppProfile;
	readonly sealed: Sealed;
}

/** What the object knows of its registry entry: the opened app, or why it cannot be used. */
export type OpenedApp = { readonly app: AppConfig; readonly sealed: Sealed } | { readonly failure: Failure; readonly sealed: Sealed };

export function isStoredRegisteredApp(value: unknown): value is StoredRegisteredApp {
	if (typeof value !== "object" || value === null) return false;
	const v = value as Record<string, unknown>;
	return typeof v.profile === "object" && v.profile !== null && isSealed(v.sealed);
}

type KeyEnv = Pick<AppEnv, "REGISTRY_KEY" | "REGISTRY_KEY_PREVIOUS">;

/** Seals `secret` for `profile.appid` under the current REGISTRY_KEY; throws BrokerError when it is missing or malformed. */
export async function sealApp(env: KeyEnv, profile: AppProfile, secret: string): Promise<StoredRegisteredApp> {
	return { profile, sealed: await seal(await sealingKeys(env), profile.appid, secret) };
}

/** Opens a stored entry; a key problem becomes a failure every read of the app answers with (500, fix-it message). */
export async function openApp(env: KeyEnv, stored: StoredRegisteredApp): Promise<OpenedApp> {
	try {
		const secret = await open(await sealingKeys(env), stored.profile.appid, stored.sealed);
		return { app: { ...stored.profile, secret }, sealed: stored.sealed };
	} catch (error) {
		if (!(error instanceof BrokerError)) throw error;
		return { failure: { code: "config_error", message: error.message }, sealed: stored.sealed };
	}
}

/** The entry sealed again under the current key, or null when it already is. */
export async function resealApp(env: KeyEnv, stored: StoredRegisteredApp): Promise<StoredRegisteredApp | null> {
	const keys = await sealingKeys(env);
	if (!needsReseal(keys, stored.sealed)) return null;
	const secret = await open(keys, stored.profile.appid, stored.sealed);
	return { profile: stored.profile, sealed: await seal(keys, stored.profile.appid, secret) };
}
