// @ts-check
/**
 * WeChat's callback message crypto (open platform event pushes, WeCom callbacks), as WeChat itself applies
 * it when it pushes to a receiver: the simulator's own implementation with Node's crypto, independent of the
 * broker's WebCrypto one (src/wechat/callback-crypto.ts), so each checks the other.
 *
 * The scheme (../shared/OPEN-PLATFORM.md §1; WeCom document 91144): AESKey = base64(EncodingAESKey + "="),
 * AES-256-CBC with IV = AESKey[0..16), the plaintext `16 random bytes ‖ 4-byte big-endian length ‖ message ‖
 * receiver id` PKCS#7-padded to a multiple of 32 bytes (not AES's 16), and msg_signature = hex SHA-1 of
 * token, timestamp, nonce and the base64 ciphertext, sorted and concatenated.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/** WeChat pads to 32-byte blocks (the key length), not AES's 16. */
export const PAD_BLOCK_BYTES = 32;
const RANDOM_BYTES = 16;
const ENCODING_AES_KEY = /^[A-Za-z0-9]{43}$/;

/** The random prefix styles real senders use: Tencent's sample (16 digits), WxJava (alphanumerics), raw bytes. */
export const RANDOM_STYLES = /** @type {const} */ (["digits", "alphanumeric", "bytes"]);
/** @typedef {typeof RANDOM_STYLES[number]} RandomStyle */

/** @param {string} encodingAesKey */
export function aesKeyOf(encodingAesKey) {
  if (!ENCODING_AES_KEY.test(encodingAesKey)) throw new Error("an EncodingAESKey is 43 characters of [A-Za-z0-9]");
  const key = Buffer.from(`${encodingAesKey}=`, "base64");
  if (key.length !== 32) throw new Error("an EncodingAESKey decodes to 32 bytes");
  return key;
}

/** @param {RandomStyle} style @returns {Buffer} */
export function randomPrefix(style) {
  if (style === "bytes") return randomBytes(RANDOM_BYTES);
  const alphabet = style === "digits" ? "0123456789" : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Buffer.from(Array.from(randomBytes(RANDOM_BYTES), (b) => alphabet[b % alphabet.length]).join(""), "latin1");
}

/**
 * The base64 ciphertext of `message` for `receiverId`.
 * @param {string} encodingAesKey @param {string} message @param {string} receiverId
 * @param {Buffer} [random] 16 bytes; random alphanumerics by default
 */
export function encrypt(encodingAesKey, message, receiverId, random = randomPrefix("alphanumeric")) {
  if (random.length !== RANDOM_BYTES) throw new Error("the random prefix is 16 bytes");
  const key = aesKeyOf(encodingAesKey);
  const body = Buffer.from(message, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const plain = Buffer.concat([random, length, body, Buffer.from(receiverId, "utf8")]);
  const pad = PAD_BLOCK_BYTES - (plain.length % PAD_BLOCK_BYTES);
  const cipher = createCipheriv("aes-256-cbc", key, key.subarray(0, 16)).setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]).toString("base64");
}

/**
 * What `encrypted` carries; throws on anything malformed (this is the simulator's, for its tests and for
 * reading encrypted replies, not a hardened receiver).
 * @param {string} encodingAesKey @param {string} encrypted
 * @returns {{ message: string, receiverId: string, random: Buffer }}
 */
export function decrypt(encodingAesKey, encrypted) {
  const key = aesKeyOf(encodingAesKey);
  const decipher = createDecipheriv("aes-256-cbc", key, key.subarray(0, 16)).setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(Buffer.from(encrypted, "base64")), decipher.final()]);
  const pad = plain[plain.length - 1] ?? 0;
  if (pad < 1 || pad > PAD_BLOCK_BYTES) throw new Error("bad padding");
  const unpadded = plain.subarray(0, plain.length - pad);
  const length = unpadded.readUInt32BE(RANDOM_BYTES);
  const start = RANDOM_BYTES + 4;
  return {
    random: unpadded.subarray(0, RANDOM_BYTES),
    message: unpadded.subarray(start, start + length).toString("utf8"),
    receiverId: unpadded.subarray(start + length).toString("utf8"),
  };
}

/**
 * Lowercase hex SHA-1 of the parts sorted (byte order) and concatenated: msg_signature with
 * (token, timestamp, nonce, Encrypt), the plain `signature` with (token, timestamp, nonce).
 * @param {string[]} parts
 */
export function signature(...parts) {
  const sorted = parts.map((p) => Buffer.from(p, "utf8")).sort(Buffer.compare);
  return createHash("sha1").update(Buffer.concat(sorted)).digest("hex");
}

/** @param {string} text */
function cdata(text) {
  if (text.includes("]]>")) throw new Error("a CDATA section cannot hold ]]>");
  return `<![CDATA[${text}]]>`;
}

/**
 * A flat WeChat XML message: strings in CDATA, numbers bare, as WeChat writes them.
 * @param {Record<string, string | number>} fields
 */
export function xmlMessage(fields) {
  const body = Object.entries(fields).map(([name, value]) => `<${name}>${typeof value === "number" ? value : cdata(value)}</${name}>`).join("");
  return `<xml>${body}</xml>`;
}

/**
 * A push as WeChat sends it to an open platform event URL: the query (`signature` too, as WeChat adds it)
 * and the `<xml><AppId/><Encrypt/></xml>` body.
 * @param {{ token: string, encodingAesKey: string, componentAppid: string, message: string, timestamp: string, nonce: string, random?: Buffer }} push
 */
export function sealPush({ token, encodingAesKey, componentAppid, message, timestamp, nonce, random }) {
  const encrypted = encrypt(encodingAesKey, message, componentAppid, random);
  const query = new URLSearchParams({
    signature: signature(token, timestamp, nonce), timestamp, nonce, encrypt_type: "aes",
    msg_signature: signature(token, timestamp, nonce, encrypted),
  });
  return { query, body: xmlMessage({ AppId: componentAppid, Encrypt: encrypted }), encrypted };
}
