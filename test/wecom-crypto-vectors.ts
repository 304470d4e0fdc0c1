/**
 * Callbacks encrypted by @wecom/crypto (npm, WeCom's own JavaScript implementation, pinned; tests only),
 * made in Node by the worker tests' global setup and handed to the pool, where the broker's WebCrypto
 * implementation must read each one and, given the same random prefix, produce the same ciphertext
 * (test/worker/callback-crypto.test.ts). Node only: @wecom/crypto needs Node's crypto module, which the
 * Worker does not have.
 */
import { encrypt, getSignature } from "@wecom/crypto";

export interface WeComVector {
	readonly what: string;
	readonly encodingAesKey: string;
	readonly token: string;
	readonly receiverId: string;
	readonly message: string;
	/** The 16-byte random prefix, hex. */
	readonly randomHex: string;
	readonly timestamp: string;
	readonly nonce: string;
	/** What @wecom/crypto made of the above. */
	readonly encrypted: string;
	readonly msgSignature: string;
}

const KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const SUITE = "ww4asffe99e54cdd38";

const CASES: ReadonlyArray<Omit<WeComVector, "encrypted" | "msgSignature" | "encodingAesKey" | "token" | "timestamp" | "nonce">> = [
	{
		what: "a suite_ticket instruction callback (receiver id: the suite_id)", receiverId: SUITE, randomHex: "00112233445566778899aabbccddeeff",
		message: `<xml><SuiteId><![CDATA[${SUITE}]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType><TimeStamp>1403610513</TimeStamp><SuiteTicket><![CDATA[asdfasfdasdfasdf]]></SuiteTicket></xml>`,
	},
	{ what: "a URL-check echostr (receiver id: the provider's corpid)", receiverId: "wwprovider0000001", randomHex: "31323334353637383930313233343536", message: "5927782489442352469" },
	{ what: "a personal-subject app's callback (empty receiver id)", receiverId: "", randomHex: "ffffffffffffffffffffffffffffffff", message: "<xml><InfoType>change_auth</InfoType></xml>" },
	// 16 + 4 + 26 + 18 = 64: already aligned, so a whole 32-byte block of padding follows.
	{ what: "a plaintext that ends on a 32-byte boundary", receiverId: "ww0123456789abcdef", randomHex: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", message: "a".repeat(26) },
	{ what: "a long message with multi-byte UTF-8", receiverId: SUITE, randomHex: "0f0e0d0c0b0a09080706050403020100", message: `<xml><CorpName><![CDATA[${"腾讯企业微信".repeat(200)}]]></CorpName></xml>` },
];

export function weComVectors(): WeComVector[] {
	return CASES.map((c, n) => {
		const timestamp = String(1_700_000_000 + n);
		const nonce = `nonce${n}`;
		const token = "QDG6eK";
		const encrypted = encrypt(KEY, c.message, c.receiverId, Buffer.from(c.randomHex, "hex"));
		return { ...c, encodingAesKey: KEY, token, timestamp, nonce, encrypted, msgSignature: getSignature(token, timestamp, nonce, encrypted) };
	});
}
