/**
 * WeChat's callback message crypto: what the open platform's event pushes (and WeCom's suite callbacks) are
 * signed and encrypted with. One module, audited alone; it holds no state and never logs.
 *
 * The scheme (OPEN-PLATFORM.md §1, WeChat's 消息加解密 technical plan, WeCom document 91144):
 * - AESKey = base64-decode(EncodingAESKey + "="): 43 characters of [A-Za-z0-9] give 32 bytes, AES-256-CBC
 *   with IV = AESKey[0..16).
 * - plaintext = 16 random bytes ‖ 4-byte big-endian length of the message ‖ message (UTF-8 XML) ‖ receiver
 *   id (UTF-8: the component appid, or for WeCom the suite id or corpid), PKCS#7-padded to a multiple of
 *   **32** bytes (pad value 1..32), not AES's 16.
 * - msg_signature = lowercase hex SHA-1 of token, timestamp, nonce and the base64 ciphertext, sorted (byte
 *   order) and concatenated with no separator.
 *
 * Order of checks (`openCallback`): the signature first, compared in constant time, before a single byte is
 * decrypted (an unsigned body costs one SHA-1 and nothing else); then strict decoding (base64, whole 32-byte
 * blocks, exact padding, a length that fits, UTF-8 that decodes); then the receiver id. Anything it cannot
 * read is refused, never guessed at: the random prefix is opaque bytes (senders use digits, alphanumerics
 * or raw bytes), but the padding and the length are exact, as WeChat writes them.
 *
 * WebCrypto's AES-CBC always pads to 16 bytes with PKCS#7 and checks that padding on decryption. WeChat's
 * 32-byte padding is removed and checked here instead: decryption first appends the one block WebCrypto
 * expects (see `decryptRaw`), and encryption drops the block WebCrypto adds.
 */

/** What a callback the broker cannot accept was: each is a 4xx and changes nothing. */
export type CallbackRefusal = "bad_signature" | "malformed" | "wrong_receiver";

/** An EncodingAESKey imported once: the AES key and its IV. */
export interface CallbackKey {
	readonly key: CryptoKey;
	readonly iv: Uint8Array;
}

/** What a receiver (a component, a WeCom suite) checks a callback against. */
export interface CallbackReceiver {
	readonly token: string;
	readonly key: CallbackKey;
	/**
	 * The id the plaintext must end with: the component appid, the suite id, or a corpid; or the ids it may end
	 * with, where WeCom's documents and its behaviour disagree on which it uses (authority/suite.ts).
	 */
	readonly receiverId: string | readonly string[];
}

/** The signed parts of a callback: its query's `timestamp`, `nonce`, `msg_signature`, and the body's `Encrypt`. */
export interface SignedCallback {
	readonly timestamp: string;
	readonly nonce: string;
	readonly msgSignature: string;
	readonly encrypted: string;
}

export type OpenedCallback = { readonly ok: true; readonly message: string } | { readonly ok: false; readonly refusal: CallbackRefusal };

/** WeChat pads to whole 32-byte blocks (the key length; WxJava's and Tencent's PKCS7Encoder BLOCK_SIZE). */
export const PAD_BLOCK_BYTES = 32;
const AES_BLOCK_BYTES = 16;
const RANDOM_PREFIX_BYTES = 16;
const LENGTH_BYTES = 4;
const KEY_BYTES = 32;
/** SHA-1 in lowercase hex. */
const SIGNATURE_HEX_CHARS = 40;
const ENCODING_AES_KEY = /^[A-Za-z0-9]{43}$/;
const SIGNATURE_HEX = /^[0-9a-f]{40}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const encoder = new TextEncoder();
/** `fatal`: bytes that are not UTF-8 are refused, not replaced with U+FFFD. */
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** True for a well-formed EncodingAESKey (what WeChat's console generates: 43 of [A-Za-z0-9]). */
export function isEncodingAesKey(value: string): boolean {
	return ENCODING_AES_KEY.test(value);
}

/** Imports an EncodingAESKey; throws a TypeError naming the rule when it is malformed (never quoting it). */
export async function importCallbackKey(encodingAesKey: string): Promise<CallbackKey> {
	if (!isEncodingAesKey(encodingAesKey)) throw new TypeError("an EncodingAESKey is 43 characters of [A-Za-z0-9]");
	const raw = fromBase64(`${encodingAesKey}=`);
	if (!raw || raw.length !== KEY_BYTES) throw new TypeError("an EncodingAESKey decodes to 32 bytes");
	return {
		key: await crypto.subtle.importKey("raw", raw, "AES-CBC", false, ["encrypt", "decrypt"]),
		iv: raw.slice(0, AES_BLOCK_BYTES),
	};
}

/**
 * Lowercase hex SHA-1 of `parts` sorted by their UTF-8 bytes and concatenated: msg_signature with
 * (token, timestamp, nonce, Encrypt); the plain `signature` with (token, timestamp, nonce).
 */
export async function callbackSignature(...parts: string[]): Promise<string> {
	const sorted = parts.map((p) => encoder.encode(p)).sort(compareBytes);
	const joined = new Uint8Array(sorted.reduce((n, p) => n + p.length, 0));
	let at = 0;
	for (const part of sorted) {
		joined.set(part, at);
		at += part.length;
	}
	return toHex(new Uint8Array(await crypto.subtle.digest("SHA-1", joined)));
}

/**
 * Whether `presented` is the signature of `parts`, compared in constant time (crypto.subtle.timingSafeEqual):
 * how much of a forged signature matched must not show in how long the refusal took. Its length and
 * alphabet are public (40 lowercase hex), so a presented value of another shape is refused at once.
 */
export async function signatureMatches(presented: string, ...parts: string[]): Promise<boolean> {
	if (presented.length !== SIGNATURE_HEX_CHARS || !SIGNATURE_HEX.test(presented)) return false;
	const expected = encoder.encode(await callbackSignature(...parts));
	return crypto.subtle.timingSafeEqual(expected, encoder.encode(presented));
}

/**
 * A callback checked and decrypted: its signature (before any decryption), its encoding, and that it was
 * encrypted for `receiver.receiverId`.
 */
export async function openCallback(receiver: CallbackReceiver, signed: SignedCallback): Promise<OpenedCallback> {
	if (!(await signatureMatches(signed.msgSignature, receiver.token, signed.timestamp, signed.nonce, signed.encrypted))) {
		return { ok: false, refusal: "bad_signature" };
	}
	const plain = await decryptCallback(receiver.key, signed.encrypted);
	if (!plain) return { ok: false, refusal: "malformed" };
	// Not secret (it is in the push's own envelope): a plain comparison.
	const accepted = typeof receiver.receiverId === "string" ? [receiver.receiverId] : receiver.receiverId;
	if (!accepted.includes(plain.receiverId)) return { ok: false, refusal: "wrong_receiver" };
	return { ok: true, message: plain.message };
}

/**
 * The message and receiver id `encrypted` carries, or null when it is not exactly what the scheme produces.
 * It does not check a signature: callers that take input from the network use `openCallback`.
 */
export async function decryptCallback(key: CallbackKey, encrypted: string): Promise<{ message: string; receiverId: string } | null> {
	const cipher = BASE64.test(encrypted) ? fromBase64(encrypted) : null;
	if (!cipher || cipher.length === 0 || cipher.length % PAD_BLOCK_BYTES !== 0) return null;
	const plain = await decryptRaw(key, cipher);
	if (!plain) return null;
	const pad = plain[plain.length - 1]!;
	if (pad < 1 || pad > PAD_BLOCK_BYTES) return null;
	for (let i = plain.length - pad; i < plain.length; i++) if (plain[i] !== pad) return null;
	const body = plain.subarray(0, plain.length - pad);
	const start = RANDOM_PREFIX_BYTES + LENGTH_BYTES;
	if (body.length < start) return null;
	const length = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(RANDOM_PREFIX_BYTES, false);
	if (length > body.length - start) return null;
	try {
		return {
			message: strictDecoder.decode(body.subarray(start, start + length)),
			receiverId: strictDecoder.decode(body.subarray(start + length)),
		};
	} catch {
		return null;
	}
}

/** The base64 ciphertext of `message` for `receiverId`, with a fresh random prefix unless one is given (tests). */
export async function encryptCallback(key: CallbackKey, message: string, receiverId: string, random?: Uint8Array): Promise<string> {
	const prefix = random ?? crypto.getRandomValues(new Uint8Array(RANDOM_PREFIX_BYTES));
	if (prefix.length !== RANDOM_PREFIX_BYTES) throw new TypeError("the random prefix is 16 bytes");
	const body = encoder.encode(message);
	const receiver = encoder.encode(receiverId);
	const unpadded = RANDOM_PREFIX_BYTES + LENGTH_BYTES + body.length + receiver.length;
	const pad = PAD_BLOCK_BYTES - (unpadded % PAD_BLOCK_BYTES);
	const plain = new Uint8Array(unpadded + pad).fill(pad, unpadded);
	plain.set(prefix, 0);
	new DataView(plain.buffer).setUint32(RANDOM_PREFIX_BYTES, body.length, false);
	plain.set(body, RANDOM_PREFIX_BYTES + LENGTH_BYTES);
	plain.set(receiver, RANDOM_PREFIX_BYTES + LENGTH_BYTES + body.length);
	const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv: key.iv }, key.key, plain));
	// WebCrypto appended a 16-byte block of its own padding; WeChat's padding is already in `plain`.
	return toBase64(sealed.subarray(0, plain.length));
}

/**
 * AES-CBC decryption with no padding removed. WebCrypto insists on 16-byte PKCS#7 padding, so the one block
 * it expects is appended: E(C_last XOR 0x10…), which is what encrypting nothing with IV = C_last yields. It
 * decrypts to a full block of 0x10 that WebCrypto strips, leaving the plaintext as it was.
 */
async function decryptRaw(key: CallbackKey, cipher: Uint8Array): Promise<Uint8Array | null> {
	const last = cipher.slice(cipher.length - AES_BLOCK_BYTES);
	const padBlock = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv: last }, key.key, new Uint8Array(0)));
	const extended = new Uint8Array(cipher.length + AES_BLOCK_BYTES);
	extended.set(cipher, 0);
	extended.set(padBlock, cipher.length);
	try {
		return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv: key.iv }, key.key, extended));
	} catch {
		return null;
	}
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
	const n = Math.min(a.length, b.length);
	for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
	return a.length - b.length;
}

function toHex(bytes: Uint8Array): string {
	return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function toBase64(bytes: Uint8Array): string {
	let binary = "";
	for (const byte of bytes) binary += String.fromCharCode(byte);
	return btoa(binary);
}

function fromBase64(text: string): Uint8Array | null {
	try {
		return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
	} catch {
		return null;
	}
}
