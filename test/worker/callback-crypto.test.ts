/**
 * The callback crypto (src/wechat/callback-crypto.ts) in workerd, with the WebCrypto the Worker uses:
 * every test vector of OPEN-PLATFORM.md §1 (the open platform's V1 and WeCom's V2/V3, plus wechatpy's
 * encryption vector), then forged, truncated, mis-padded and wrong-receiver inputs, each refused before or
 * instead of anything being trusted; and callbacks encrypted by @wecom/crypto (WeCom's own implementation,
 * run in Node by the global setup: test/wecom-crypto-vectors.ts) read here, in workerd, byte for byte.
 */
import { describe, expect, inject, it, vi } from "vitest";
import {
	callbackSignature, decryptCallback, encryptCallback, importCallbackKey, isEncodingAesKey, openCallback, PAD_BLOCK_BYTES,
	signatureMatches, type CallbackReceiver,
} from "../../src/wechat/callback-crypto";

const bytes = (text: string) => new TextEncoder().encode(text);
const decodedLength = (base64: string) => atob(base64).length;

/** V1: Tencent's vector (WxJava's WxCryptUtilTest); its msg_signature recomputed in OPEN-PLATFORM.md. */
const V1 = {
	key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", token: "pamtest", appid: "wxb11529c136998cb6",
	random: "aaaabbbbccccdddd", message: "我是中文abcd123",
	encrypted: "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==",
	timestamp: "1409304348", nonce: "xxxxxx", signature: "82c962d39941aa48552f90ef55aa323dc620cc10",
};
/** WeCom's vectors from wechatpy's tests: V2 the GET echostr, V3 a POSTed text message. */
const WECOM = { key: "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", token: "123456", corpid: "wx49f0ab532d5d035a" };
const V2 = {
	timestamp: "1411443780", nonce: "437374425", signature: "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
	encrypted: "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==", plain: "5927782489442352469",
};
const V3 = {
	timestamp: "1411525903", nonce: "461056294", signature: "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
	encrypted: "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=",
	plain: "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n<FromUserName><![CDATA[messense]]></FromUserName>\n<CreateTime>1411525903</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<MsgId>4363689963896700987</MsgId>\n<AgentID>1</AgentID>\n</xml>",
};
/** wechatpy's test_encrypt_message: a reply encrypted with the random prefix "1234567890123456". */
const V3_REPLY = {
	random: "1234567890123456",
	message: "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>",
	encrypted: "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3",
	signature: "407518b7649e86ef23978113f92d27afa9296533",
};

async function receiver(key: string, token: string, receiverId: string): Promise<CallbackReceiver> {
	return { token, key: await importCallbackKey(key), receiverId };
}

/** A push signed correctly over whatever `encrypted` is: what reaches decryption once the signature holds. */
async function signed(token: string, encrypted: string, timestamp = "1700000000", nonce = "nonce1") {
	return { timestamp, nonce, encrypted, msgSignature: await callbackSignature(token, timestamp, nonce, encrypted) };
}

/**
 * Encrypts an arbitrary plaintext block by block (no padding added), to build what a correct sender never
 * would: bad padding, a length that does not fit, bytes that are not UTF-8.
 */
async function encryptPlaintext(encodingAesKey: string, plain: Uint8Array): Promise<string> {
	const raw = Uint8Array.from(atob(`${encodingAesKey}=`), (c) => c.charCodeAt(0));
	const key = await crypto.subtle.importKey("raw", raw, "AES-CBC", false, ["encrypt"]);
	const out = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv: raw.slice(0, 16) }, key, plain));
	return btoa(String.fromCharCode(...out.subarray(0, plain.length)));
}

/**
 * `16 random ‖ length ‖ message ‖ receiver` with the length field as given and the padding `pad(n)` makes of
 * the n bytes a correct sender would pad with; always whole 32-byte blocks, so only what is named is wrong.
 */
function plaintext({ message, receiverId, length = bytes(message).length, pad = (n) => Array<number>(n).fill(n), block = PAD_BLOCK_BYTES }: {
	message: string; receiverId: string; length?: number; pad?: (n: number) => number[]; block?: number;
}): Uint8Array {
	const body = [...bytes("0123456789abcdef"), (length >>> 24) & 255, (length >>> 16) & 255, (length >>> 8) & 255, length & 255, ...bytes(message), ...bytes(receiverId)];
	const padding = pad(block - (body.length % block));
	if ((body.length + padding.length) % block !== 0) throw new Error("the test's padding must fill the block");
	return Uint8Array.from([...body, ...padding]);
}

describe("the official test vectors", () => {
	it("V1: encrypts Tencent's vector byte for byte, signs it as recomputed, and opens it", async () => {
		const key = await importCallbackKey(V1.key);
		expect(await encryptCallback(key, V1.message, V1.appid, bytes(V1.random))).toBe(V1.encrypted);
		expect(await callbackSignature(V1.token, V1.timestamp, V1.nonce, V1.encrypted)).toBe(V1.signature);
		const opened = await openCallback(await receiver(V1.key, V1.token, V1.appid), {
			timestamp: V1.timestamp, nonce: V1.nonce, msgSignature: V1.signature, encrypted: V1.encrypted,
		});
		expect(opened).toEqual({ ok: true, message: V1.message });
	});

	it("V2: WeCom's echostr signs and decrypts to its plaintext and corpid", async () => {
		expect(await callbackSignature(WECOM.token, V2.timestamp, V2.nonce, V2.encrypted)).toBe(V2.signature);
		expect(await decryptCallback(await importCallbackKey(WECOM.key), V2.encrypted)).toEqual({ message: V2.plain, receiverId: WECOM.corpid });
		const opened = await openCallback(await receiver(WECOM.key, WECOM.token, WECOM.corpid), { ...V2, msgSignature: V2.signature });
		expect(opened).toEqual({ ok: true, message: V2.plain });
	});

	it("V3: WeCom's POSTed message (padding of a single byte) opens to its XML", async () => {
		const opened = await openCallback(await receiver(WECOM.key, WECOM.token, WECOM.corpid), { ...V3, msgSignature: V3.signature });
		expect(opened).toEqual({ ok: true, message: V3.plain });
		// 16 + 4 + message + receiver id leaves one byte to the next 32-byte boundary.
		expect((20 + bytes(V3.plain).length + WECOM.corpid.length) % PAD_BLOCK_BYTES).toBe(PAD_BLOCK_BYTES - 1);
	});

	it("encrypts wechatpy's reply vector byte for byte, with its msg_signature", async () => {
		const key = await importCallbackKey(WECOM.key);
		const encrypted = await encryptCallback(key, V3_REPLY.message, WECOM.corpid, bytes(V3_REPLY.random));
		expect(encrypted).toBe(V3_REPLY.encrypted);
		expect(await callbackSignature(WECOM.token, V3.timestamp, V3.nonce, encrypted)).toBe(V3_REPLY.signature);
	});

	it("pads an already aligned plaintext with a whole 32-byte block (64 bytes in, 96 out)", async () => {
		const key = await importCallbackKey(V1.key);
		// 16 + 4 + 26 + 18 = 64 bytes: a full block of padding follows.
		const message = "a".repeat(64 - 20 - V1.appid.length);
		const encrypted = await encryptCallback(key, message, V1.appid);
		expect(decodedLength(encrypted)).toBe(96);
		expect(await decryptCallback(key, encrypted)).toEqual({ message, receiverId: V1.appid });
	});

	it("round-trips every padding length from 1 to 32, and a fresh random prefix each time", async () => {
		const key = await importCallbackKey(V1.key);
		const seen = new Set<string>();
		for (let n = 0; n < PAD_BLOCK_BYTES; n++) {
			const message = `<xml>${"x".repeat(n)}</xml>`;
			const encrypted = await encryptCallback(key, message, V1.appid);
			expect(decodedLength(encrypted) % PAD_BLOCK_BYTES).toBe(0);
			expect(await decryptCallback(key, encrypted)).toEqual({ message, receiverId: V1.appid });
			seen.add(encrypted);
		}
		const again = await encryptCallback(key, "<xml>x</xml>", V1.appid);
		expect(seen.has(again)).toBe(false);
	});

	it("sorts the signed parts by their bytes, whatever order they come in", async () => {
		const parts = [V1.token, V1.timestamp, V1.nonce, V1.encrypted];
		expect(await callbackSignature(...parts.reverse())).toBe(V1.signature);
		expect(await callbackSignature(V1.nonce, V1.encrypted, V1.token, V1.timestamp)).toBe(V1.signature);
	});
});

describe("@wecom/crypto's callbacks, in the broker", () => {
	const vectors = inject("wecomVectors");

	it("has a vector of each kind to check", () => {
		expect(vectors.map((v) => v.what)).toHaveLength(5);
	});

	it.each(vectors.map((v) => [v.what, v] as const))("opens %s, checked by its msg_signature and receiver id", async (_what, v) => {
		const r = await receiver(v.encodingAesKey, v.token, v.receiverId);
		expect(await openCallback(r, { timestamp: v.timestamp, nonce: v.nonce, msgSignature: v.msgSignature, encrypted: v.encrypted })).toEqual({ ok: true, message: v.message });
		expect(await callbackSignature(v.token, v.timestamp, v.nonce, v.encrypted)).toBe(v.msgSignature);
	});

	it.each(vectors.map((v) => [v.what, v] as const))("encrypts %s to @wecom/crypto's ciphertext, given its random prefix", async (_what, v) => {
		const random = Uint8Array.from(v.randomHex.match(/../g)!, (h) => Number.parseInt(h, 16));
		expect(await encryptCallback(await importCallbackKey(v.encodingAesKey), v.message, v.receiverId, random)).toBe(v.encrypted);
	});

	it("refuses @wecom/crypto's callback for one receiver when another is expected (a suite's push at the provider's URL check)", async () => {
		const ticket = vectors[0]!;
		const echostr = vectors[1]!;
		const signedTicket = { timestamp: ticket.timestamp, nonce: ticket.nonce, msgSignature: ticket.msgSignature, encrypted: ticket.encrypted };
		expect(await openCallback(await receiver(ticket.encodingAesKey, ticket.token, echostr.receiverId), signedTicket)).toEqual({ ok: false, refusal: "wrong_receiver" });
	});
});

describe("EncodingAESKey", () => {
	it.each([
		["42 characters", V1.key.slice(1)],
		["44 characters", `${V1.key}A`],
		["a character outside [A-Za-z0-9]", `${V1.key.slice(0, 42)}+`],
		["empty", ""],
	])("refuses a key of %s, without quoting it", async (_what, key) => {
		expect(isEncodingAesKey(key)).toBe(false);
		const error = await importCallbackKey(key).then(() => null, (e: unknown) => e);
		expect(error).toBeInstanceOf(TypeError);
		if (key) expect(String(error)).not.toContain(key);
	});
});

describe("the signature, before anything is decrypted", () => {
	it("compares the full signatures with timingSafeEqual, and decrypts only after it matched", async () => {
		const safeEqual = vi.spyOn(crypto.subtle, "timingSafeEqual");
		const decrypt = vi.spyOn(crypto.subtle, "decrypt");
		const opened = await openCallback(await receiver(V1.key, V1.token, V1.appid), {
			timestamp: V1.timestamp, nonce: V1.nonce, msgSignature: V1.signature, encrypted: V1.encrypted,
		});
		expect(opened.ok).toBe(true);
		const text = (view: unknown) => new TextDecoder().decode(view as Uint8Array);
		expect(safeEqual.mock.calls.map(([a, b]) => [text(a), text(b)])).toEqual([[V1.signature, V1.signature]]);
		expect(decrypt).toHaveBeenCalledTimes(1);
		expect(safeEqual.mock.invocationCallOrder[0]!).toBeLessThan(decrypt.mock.invocationCallOrder[0]!);
	});

	it("lets timingSafeEqual decide: a valid signature is refused when it answers no", async () => {
		vi.spyOn(crypto.subtle, "timingSafeEqual").mockReturnValue(false);
		const opened = await openCallback(await receiver(V1.key, V1.token, V1.appid), {
			timestamp: V1.timestamp, nonce: V1.nonce, msgSignature: V1.signature, encrypted: V1.encrypted,
		});
		expect(opened).toEqual({ ok: false, refusal: "bad_signature" });
	});

	it.each([
		["one character changed", V1.signature.replace(/.$/, (c) => (c === "0" ? "1" : "0"))],
		["upper-case hex", V1.signature.toUpperCase()],
		["truncated", V1.signature.slice(0, 39)],
		["one character too many", `${V1.signature}0`],
		["empty", ""],
		["the plain `signature` (token, timestamp, nonce) instead", "0".repeat(40)],
	])("refuses a msg_signature %s and decrypts nothing", async (_what, msgSignature) => {
		const decrypt = vi.spyOn(crypto.subtle, "decrypt");
		const opened = await openCallback(await receiver(V1.key, V1.token, V1.appid), {
			timestamp: V1.timestamp, nonce: V1.nonce, msgSignature, encrypted: V1.encrypted,
		});
		expect(opened).toEqual({ ok: false, refusal: "bad_signature" });
		expect(decrypt).not.toHaveBeenCalled();
	});

	it("refuses a signature made with another token, or over another timestamp, nonce or ciphertext", async () => {
		const r = await receiver(V1.key, V1.token, V1.appid);
		const base = { timestamp: V1.timestamp, nonce: V1.nonce, encrypted: V1.encrypted };
		const plainSignature = await callbackSignature(V1.token, V1.timestamp, V1.nonce);
		const cases = [
			{ ...base, msgSignature: await callbackSignature("another-token", V1.timestamp, V1.nonce, V1.encrypted) },
			{ ...base, msgSignature: V1.signature, timestamp: "1409304349" },
			{ ...base, msgSignature: V1.signature, nonce: "xxxxxy" },
			{ ...base, msgSignature: V1.signature, encrypted: V2.encrypted },
			{ ...base, msgSignature: plainSignature },
		];
		for (const forged of cases) expect(await openCallback(r, forged)).toEqual({ ok: false, refusal: "bad_signature" });
		expect(await signatureMatches(V1.signature, V1.token, V1.timestamp, V1.nonce, V1.encrypted)).toBe(true);
	});
});

describe("what a valid signature does not make acceptable", () => {
	const r = () => receiver(V1.key, V1.token, V1.appid);

	it("refuses a message encrypted for another receiver (another component on the same key and token)", async () => {
		const key = await importCallbackKey(V1.key);
		for (const other of ["wxother0000000001", "", `${V1.appid}x`, V1.appid.slice(0, -1)]) {
			const encrypted = await encryptCallback(key, "<xml><AppId>x</AppId></xml>", other);
			expect(await openCallback(await r(), await signed(V1.token, encrypted))).toEqual({ ok: false, refusal: "wrong_receiver" });
		}
	});

	it.each([
		["not base64", "not base64!"],
		["empty", ""],
		["base64 without its padding", V1.encrypted.replace(/=+$/, "")],
		["cut to a 16-byte block", btoa(atob(V1.encrypted).slice(0, 48))],
		["cut by its last 32-byte block", btoa(atob(V1.encrypted).slice(0, 32))],
		["one block of garbage", btoa("x".repeat(32))],
		["a flipped bit in the last block (its padding)", btoa(atob(V1.encrypted).replace(/.$/, (c) => String.fromCharCode(c.charCodeAt(0) ^ 1)))],
	])("refuses a ciphertext %s", async (_what, encrypted) => {
		expect(await openCallback(await r(), await signed(V1.token, encrypted))).toEqual({ ok: false, refusal: "malformed" });
	});

	it.each([
		["a pad byte of 0", { pad: (n: number) => [...Array<number>(n - 1).fill(n), 0] }],
		["pad bytes of 33", { pad: (n: number) => Array<number>(n).fill(33) }],
		["pad bytes that disagree", { pad: (n: number) => [n - 1, ...Array<number>(n - 1).fill(n)] }],
		["a length longer than what follows", { length: 9_999 }],
		["a length that eats the receiver id and more", { length: 12 + V1.appid.length + 1 }],
	])("refuses a plaintext with %s", async (_what, change: { length?: number; pad?: (n: number) => number[] }) => {
		const plain = plaintext({ message: "<xml>a</xml>", receiverId: V1.appid, ...change });
		const encrypted = await encryptPlaintext(V1.key, plain);
		expect(await openCallback(await r(), await signed(V1.token, encrypted))).toEqual({ ok: false, refusal: "malformed" });
	});

	it("refuses standard PKCS#7 to 16-byte blocks (a sender that is not WeChat), though it decrypts", async () => {
		// 16 + 4 + 2 + 18 = 40 bytes, padded with 8 to 48: whole AES blocks, but not whole 32-byte ones.
		const plain = plaintext({ message: "<>", receiverId: V1.appid, block: 16 });
		expect(plain.length).toBe(48);
		const encrypted = await encryptPlaintext(V1.key, plain);
		expect(await openCallback(await r(), await signed(V1.token, encrypted))).toEqual({ ok: false, refusal: "malformed" });
	});

	it("refuses bytes that are not UTF-8, in the message or the receiver id, instead of replacing them", async () => {
		for (const [message, receiverId] of [["\u0000", V1.appid], ["<xml/>", "\u0000"]] as const) {
			const plain = plaintext({ message, receiverId });
			// The marked byte becomes 0xff: never valid UTF-8.
			plain[plain.indexOf(0, 20)] = 0xff;
			const encrypted = await encryptPlaintext(V1.key, plain);
			expect(await openCallback(await r(), await signed(V1.token, encrypted))).toEqual({ ok: false, refusal: "malformed" });
		}
	});

	it("reads a plaintext built the same way when nothing is wrong with it (the helper is sound)", async () => {
		const encrypted = await encryptPlaintext(V1.key, plaintext({ message: "<xml>a</xml>", receiverId: V1.appid }));
		expect(await openCallback(await r(), await signed(V1.token, encrypted))).toEqual({ ok: true, message: "<xml>a</xml>" });
	});
});
