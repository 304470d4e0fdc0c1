/**
 * How a Worker isolate finds a registry app by its id and a registry key by its digest, on the hot path:
 * isolate memory, else the KV index the Registry object writes (registry.ts). Never the Registry object
 * itself: a read of /token, /ticket or the gateway costs at most one KV read here, and none when hot, so
 * 10,000 registered keys cost what 3 cost.
 *
 * Propagation bound: a change is in force at once in the isolate that made it (`noteApp`, `noteKeysChanged`),
 * and elsewhere once KV shows it (~60 s: KV caches a read at each location for up to its default cacheTtl)
 * plus at most REGISTRY_MEMORY_TTL_MS in an isolate's memory: a revoked key or a deleted app stops working
 * everywhere within about 70 s. Misses are remembered too, for the same time, so a stream of unknown keys
 * costs one KV read per key per isolate per REGISTRY_MEMORY_TTL_MS, not one per request.
 */
import type { AppProfile, BrokerConfig, ComponentProfile, SuiteProfile } from "../config/config";
import { apiKeyKey, appProfileKey, componentProfileKey, corpEntriesKey, suiteProfileKey } from "../core/storage-keys";
import { log } from "../core/log";
import type { RegisteredKey } from "./registry";
import { toHex } from "./seal";

/** How long an isolate trusts what it read from KV: the part of the propagation bound that is ours. */
export const REGISTRY_MEMORY_TTL_MS = 10_000;
/** Entries per cache: far above a busy isolate's working set, and a cap on what strangers can make it hold. */
const MAX_CACHED = 10_000;
/**
 * A key revoked through this isolate is refused here this long, whatever KV says meanwhile (its delete may
 * be refused and retried, or not yet visible at this location): longer than KV's ~60 s propagation.
 */
export const REVOKED_MEMORY_MS = 120_000;
/** No key is longer (a generated one is 52 characters); a longer string is refused unread and unremembered. */
export const MAX_KEY_CHARS = 1_024;

class TtlCache<V> {
	readonly #entries = new Map<string, { value: V; until: number }>();
	readonly #ttlMs: number;

	constructor(ttlMs = REGISTRY_MEMORY_TTL_MS) {
		this.#ttlMs = ttlMs;
	}

	get(key: string, now: number): { value: V } | undefined {
		const entry = this.#entries.get(key);
		if (!entry) return undefined;
		if (now < entry.until) return entry;
		this.#entries.delete(key);
		return undefined;
	}

	set(key: string, value: V, now: number): void {
		this.#entries.delete(key);
		this.#entries.set(key, { value, until: now + this.#ttlMs });
		// Oldest first: a Map iterates in insertion order.
		if (this.#entries.size > MAX_CACHED) this.#entries.delete(this.#entries.keys().next().value!);
	}

	delete(key: string): void {
		this.#entries.delete(key);
	}

	clear(): void {
		this.#entries.clear();
	}
}

const apps = new TtlCache<AppProfile | null>();
const corps = new TtlCache<readonly string[]>();
const components = new TtlCache<ComponentProfile | null>();
const suites = new TtlCache<SuiteProfile | null>();
/** By the key as presented, so a hot key is not hashed again: only keys of the registry. */
const keys = new TtlCache<{ key: RegisteredKey; digest: string }>();
/** Misses, by digest: a stranger's string is never kept, only its fixed-size SHA-256. */
const misses = new TtlCache<true>();
/** Digests of keys revoked through this isolate (see REVOKED_MEMORY_MS). */
const revoked = new TtlCache<true>(REVOKED_MEMORY_MS);

type KvEnv = { TOKEN_CACHE: KVNamespace };

/** The app named `appid`: WECHAT_APPS first, then the registry (when REGISTRY_KEY is set). */
export async function findApp(env: KvEnv, config: BrokerConfig, appid: string): Promise<AppProfile | undefined> {
	const fromSecret = config.apps.get(appid);
	if (fromSecret || !config.registry) return fromSecret;
	const now = Date.now();
	const cached = apps.get(appid, now);
	if (cached) return cached.value ?? undefined;
	const profile = await readJson<AppProfile>(env.TOKEN_CACHE, appProfileKey(appid));
	apps.set(appid, profile, now);
	return profile ?? undefined;
}

/** The open-platform component `componentAppid`: WECHAT_COMPONENTS first, then the registry. */
export async function findComponent(env: KvEnv, config: BrokerConfig, componentAppid: string): Promise<ComponentProfile | undefined> {
	const fromSecret = config.components.get(componentAppid);
	if (fromSecret || !config.registry) return fromSecret;
	const now = Date.now();
	const cached = components.get(componentAppid, now);
	if (cached) return cached.value ?? undefined;
	const profile = await readJson<ComponentProfile>(env.TOKEN_CACHE, componentProfileKey(componentAppid));
	components.set(componentAppid, profile, now);
	return profile ?? undefined;
}

/** This isolate's view of a component, replaced at once by the change it just made. */
export function noteComponent(componentAppid: string, profile: ComponentProfile | null): void {
	components.set(componentAppid, profile, Date.now());
}

/** The WeCom suite `suiteId`: WECOM_SUITES first, then the registry. */
export async function findSuite(env: KvEnv, config: BrokerConfig, suiteId: string): Promise<SuiteProfile | undefined> {
	const fromSecret = config.suites.get(suiteId);
	if (fromSecret || !config.registry) return fromSecret;
	const now = Date.now();
	const cached = suites.get(suiteId, now);
	if (cached) return cached.value ?? undefined;
	const profile = await readJson<SuiteProfile>(env.TOKEN_CACHE, suiteProfileKey(suiteId));
	suites.set(suiteId, profile, now);
	return profile ?? undefined;
}

/** This isolate's view of a suite, replaced at once by the change it just made. */
export function noteSuite(suiteId: string, profile: SuiteProfile | null): void {
	suites.set(suiteId, profile, Date.now());
}

/** The ids of a corp's WeCom entries in the registry (WECHAT_APPS entries are in `config.apps`). */
export async function registeredCorpEntries(env: KvEnv, config: BrokerConfig, corpid: string): Promise<readonly string[]> {
	if (!config.registry) return [];
	const now = Date.now();
	const cached = corps.get(corpid, now);
	if (cached) return cached.value;
	const ids = (await readJson<string[]>(env.TOKEN_CACHE, corpEntriesKey(corpid))) ?? [];
	corps.set(corpid, ids, now);
	return ids;
}

/**
 * The registry key `presented` is, when this isolate verified it within REGISTRY_MEMORY_TTL_MS: no hashing,
 * no I/O. A hot client presents the same key on every request; without this, each request would hash it
 * and compare it with every API_KEYS digest before finding it here.
 */
export function recentRegisteredKey(config: BrokerConfig, presented: string): RegisteredKey | undefined {
	return config.registry ? keys.get(presented, Date.now())?.value.key : undefined;
}

/** The registry key `presented` is, if any. Found by its SHA-256: KV holds no key, only digests. */
export async function findRegisteredKey(env: KvEnv, config: BrokerConfig, presented: string): Promise<RegisteredKey | undefined> {
	if (!config.registry || presented.length > MAX_KEY_CHARS) return undefined;
	const now = Date.now();
	const cached = keys.get(presented, now);
	if (cached) return cached.value.key;
	const digest = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(presented))));
	if (revoked.get(digest, now) || misses.get(digest, now)) return undefined;
	const key = await readJson<RegisteredKey>(env.TOKEN_CACHE, apiKeyKey(digest));
	if (key) keys.set(presented, { key, digest }, now);
	else misses.set(digest, true, now);
	return key ?? undefined;
}

/** This isolate's view of an app, replaced at once by the change it just made (null: deleted). */
export function noteApp(appid: string, profile: AppProfile | null): void {
	apps.set(appid, profile, Date.now());
	// The app may have joined or left a corp: corp lists are re-read (they are few and cheap).
	corps.clear();
}

/**
 * A key was created, changed or revoked through this isolate: what it remembers of keys is dropped, and a
 * revoked key's digest is refused here for REVOKED_MEMORY_MS.
 */
export function noteKeysChanged(revokedDigest?: string): void {
	keys.clear();
	misses.clear();
	if (revokedDigest !== undefined) revoked.set(revokedDigest, true, Date.now());
}

async function readJson<T>(kv: KVNamespace, key: string): Promise<T | null> {
	try {
		return await kv.get<T>(key, "json");
	} catch (error) {
		// An unreadable entry is treated as absent: the caller answers 404 or 401, never a 500.
		log("warn", "registry_read_failed", { key: key.split(":").slice(0, 2).join(":"), reason: error instanceof Error ? error.name : "unknown" });
		return null;
	}
}
