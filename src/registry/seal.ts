/**
 * Sealing long-lived secrets at rest (AppSecrets now; refresh tokens and permanent codes later):
 * AES-256-GCM through WebCrypto, with a fresh random 96-bit IV per seal and the owner's id (the appid) bound
 * as additional data, so a sealed value copied into another app's storage does not open there.
 *
 * The key is `REGISTRY_KEY` (base64 of 32 random bytes). Each sealed value records which key sealed it
 * (`kid`: the first 8 bytes of the key's SHA-256, in hex; it names the key without revealing it), so a
 * rotation is: the new key into REGISTRY_KEY, the old one into REGISTRY_KEY_PREVIOUS; values sealed with
 * either open, and are sealed again under the new key when written or by `POST /admin/registry/reseal`.
 *
 * Why random IVs are safe here: NIST SP 800-38D §8.3 bounds a key to 2^32 random-IV encryptions; a broker
 * seals once per secret write (an admin PUT, a reseal), many orders of magnitude below that.
 *
 * Why no envelope (per-value data key): a value is one short secret, sealed and resealed whole; a rotation
 * touches every sealed value once either way, and one key is one thing less to get wrong.
 */
import { BrokerError } from "../core/errors";

export interface Sealed {
	/** Format version. */
	readonly v: 1;
	/** Which key sealed it (hex of the first 8 bytes of the key's SHA-256). */
	readonly kid: string;
	/** base64 of the 12-byte IV. */
	readonly iv: string;
	/** base64 of the ciphertext with GCM's 16-byte tag. */
	readonly ct: string;
}

export interface SealingKey {
	readonly kid: string;
	readonly key: CryptoKey;
}

export interface SealingKeys {
	/** Seals every new value. */
	readonly current: SealingKey;
	/** Opens values sealed before a rotation; never seals. */
	readonly previous: SealingKey | null;
	/** Why REGISTRY_KEY_PREVIOUS was set but not used (malformed), for GET /admin/registry. */
	readonly previousProblem: string | null;
}

/** 96 bits: the IV length GCM is specified for (SP 800-38D §8.2); any other length is hashed into one. */
const IV_BYTES = 12;
/** AES-256. */
const KEY_BYTES = 32;
const KID_BYTES = 8;
const KEY_HINT = "base64 of 32 random bytes: `openssl rand -base64 32`";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One import per distinct pair of secret values per isolate: importKey is async and not free. */
let cached: { source: string; keys: Promise<SealingKeys> } | undefined;

/**
 * The sealing keys from the environment. A missing or malformed REGISTRY_KEY is a BrokerError (500
 * config_error) naming what to set, raised only where a value must be sealed or opened: it never affects
 * the apps that come from WECHAT_APPS.
 */
export function sealingKeys(env: { REGISTRY_KEY?: string; REGISTRY_KEY_PREVIOUS?: string }): Promise<SealingKeys> {
	const source = `${env.REGISTRY_KEY ?? ""}\n${env.REGISTRY_KEY_PREVIOUS ?? ""}`;
	if (cached?.source !== source) {
		const keys = importKeys(env.REGISTRY_KEY, env.REGISTRY_KEY_PREVIOUS);
		// A refused key is not cached, so a fixed secret is picked up by the next request.
		keys.catch(() => {
			if (cached?.keys === keys) cached = undefined;
		});
		cached = { source, keys };
	}
	return cached.keys;
}

async function importKeys(current: string | undefined, previous: string | undefined): Promise<SealingKeys> {
	if (current === undefined || current.trim() === "") {
		throw new BrokerError("config_error", `REGISTRY_KEY is not set, so the broker cannot seal the secrets it stores: run \`wrangler secret put REGISTRY_KEY\` (locally: add it to .dev.vars) with ${KEY_HINT}. Apps in WECHAT_APPS are not affected.`);
	}
	const currentKey = await importKey(current, "REGISTRY_KEY");
	if (previous === undefined || previous.trim() === "") return { current: currentKey, previous: null, previousProblem: null };
	// A typo in the key being rotated out must not take down what the current key sealed: it is set aside
	// and reported (only values still sealed with the old key stay closed until it is fixed).
	try {
		return { current: currentKey, previous: await importKey(previous, "REGISTRY_KEY_PREVIOUS"), previousProblem: null };
	} catch (error) {
		if (!(error instanceof BrokerError)) throw error;
		return { current: currentKey, previous: null, previousProblem: error.message };
	}
}

async function importKey(base64: string, name: string): Promise<SealingKey> {
	const raw = fromBase64(base64.trim());
	if (!raw || raw.length !== KEY_BYTES) {
		// Never quote the value: it is the key.
		throw new BrokerError("config_error", `${name} must be ${KEY_HINT}; the value set is not ${KEY_BYTES} bytes of base64. Apps in WECHAT_APPS are not affected.`);
	}
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
	return {
		kid: toHex(digest.subarray(0, KID_BYTES)),
		key: await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]),
	};
}

/** Seals `plain` for `owner` (the appid) under the current key. */
export async function seal(keys: SealingKeys, owner: string, plain: string): Promise<Sealed> {
	const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
	const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(owner) }, keys.current.key, encoder.encode(plain));
	return { v: 1, kid: keys.current.kid, iv: toBase64(iv), ct: toBase64(new Uint8Array(ct)) };
}

/**
 * Opens a value sealed for `owner` with the current or the previous key. Throws a BrokerError when neither
 * key sealed it (rotated out too early) or the value was altered or belongs to another owner.
 */
export async function open(keys: SealingKeys, owner: string, sealed: Sealed): Promise<string> {
	const key = [keys.current, keys.previous].find((k) => k?.kid === sealed.kid);
	if (!key) {
		throw new BrokerError("config_error", `The secret of ${owner} was sealed with a key that is neither REGISTRY_KEY nor REGISTRY_KEY_PREVIOUS (key id ${sealed.kid}); put that key back as REGISTRY_KEY_PREVIOUS, or PUT the app's secret again.`);
	}
	const iv = fromBase64(sealed.iv);
	const ct = fromBase64(sealed.ct);
	try {
		if (!iv || !ct) throw new Error("not base64");
		const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(owner) }, key.key, ct);
		return decoder.decode(plain);
	} catch {
		throw new BrokerError("config_error", `The sealed secret of ${owner} does not open (altered, or stored for another app); PUT the app's secret again.`);
	}
}

/** True when `sealed` is not under the current key (a reseal would change it). */
export function needsReseal(keys: SealingKeys, sealed: Sealed): boolean {
	return sealed.kid !== keys.current.kid;
}

export function isSealed(value: unknown): value is Sealed {
	if (typeof value !== "object" || value === null) return false;
	const v = value as Record<string, unknown>;
	return v.v === 1 && typeof v.kid === "string" && typeof v.iv === "string" && typeof v.ct === "string";
}

function toBase64(bytes: Uint8Array): string {
	let binary = "";
	for (const byte of bytes) binary += String.fromCharCode(byte);
	return btoa(binary);
}

function fromBase64(text: string): Uint8Array | null {
	if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
	try {
		return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
	} catch {
		return null;
	}
}

export function toHex(bytes: Uint8Array): string {
	return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
