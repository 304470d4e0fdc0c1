/**
 * JS-SDK signatures, as WeChat's JS-SDK documentation (appendix 1) and WeCom's define them:
 * - wx.config / wx.agentConfig: the fields jsapi_ticket, noncestr, timestamp, url in ASCII order, raw
 *   values (no URL-encoding), joined `k=v&…`, SHA-1, lower-case hex; the url without its `#fragment`.
 * - a card's cardExt (wx_card api_ticket): the values alone, empty ones left out, sorted, concatenated, SHA-1.
 * The official vectors are in test/worker/jssdk.test.ts.
 */

/** A page URL WeChat can sign: absolute http(s), at most this long (a longer one is not a page's address). */
export const MAX_SIGNED_URL_CHARS = 2_048;
/** 16 characters from WeChat's own examples' alphabet; any string up to 32 characters is accepted. */
const NONCE_CHARS = 16;
const NONCE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export interface SignedConfig {
	readonly timestamp: number;
	readonly nonceStr: string;
	readonly signature: string;
}

/** The page URL as WeChat signs it: the `#fragment` dropped, nothing else changed. */
export function signedUrl(url: string): string {
	const hash = url.indexOf("#");
	return hash === -1 ? url : url.slice(0, hash);
}

/** What is wrong with `url` as a page to sign, or null when it is fine. */
export function pageUrlProblem(url: unknown): string | null {
	if (typeof url !== "string" || url === "") return 'url is required: the page\'s full address as the browser shows it (location.href.split("#")[0]).';
	if (url.length > MAX_SIGNED_URL_CHARS) return `url is longer than ${MAX_SIGNED_URL_CHARS} characters; send the page's address, not a data URL.`;
	let parsed: URL;
	try {
		parsed = new URL(url);
	} catch {
		return "url must be an absolute http(s) URL like https://example.com/page?x=1.";
	}
	if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return "url must be an absolute http(s) URL like https://example.com/page?x=1.";
	return null;
}

export function jsapiSignature(ticket: string, nonceStr: string, timestamp: number, url: string): Promise<string> {
	return sha1Hex(`jsapi_ticket=${ticket}&noncestr=${nonceStr}&timestamp=${timestamp}&url=${signedUrl(url)}`);
}

/** Signs `url` with `ticket` at `nowMs`, with a fresh nonce. */
export async function signPage(ticket: string, url: string, nowMs: number): Promise<SignedConfig> {
	const timestamp = Math.floor(nowMs / 1_000);
	const nonceStr = nonce();
	return { timestamp, nonceStr, signature: await jsapiSignature(ticket, nonceStr, timestamp, url) };
}

export function cardSignature(values: readonly (string | undefined)[]): Promise<string> {
	const present = values.filter((v): v is string => v !== undefined && v !== "");
	// Plain code-unit order, as WeChat's samples sort; not a locale-aware comparison.
	present.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
	return sha1Hex(present.join(""));
}

function nonce(): string {
	const bytes = crypto.getRandomValues(new Uint8Array(NONCE_CHARS));
	return Array.from(bytes, (b) => NONCE_ALPHABET[b % NONCE_ALPHABET.length]).join("");
}

async function sha1Hex(text: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text)));
	return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
