/** Calling the broker the way an SDK does: WeChat's own paths, any body, and no broker key in a header. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { allSecrets } from "./fixtures";
import { simUrl } from "./helpers";
import { findLeaks } from "./leaks";
import worker from "../../src/index";

const secrets = allSecrets();

export interface GatewayResponse {
	status: number;
	headers: Headers;
	bytes: Uint8Array;
	/** The body parsed as JSON, or null when it is not JSON. */
	json: Record<string, unknown> | null;
}

/**
 * One request through the broker's real fetch handler. Every answer is checked: `no-store`, and no AppSecret
 * in its body or headers (tokens may appear: the token endpoints hand them out). `overrides` replace some of
 * the Worker's bindings for this one request (e.g. API_KEYS with keys only one test file needs).
 */
export async function gw(path: string, init: RequestInit = {}, overrides?: Partial<typeof env>): Promise<GatewayResponse> {
	const request = new Request(`https://broker.test${path}`, init);
	let response: Response;
	if (overrides) {
		const ctx = createExecutionContext();
		response = await worker.fetch(request, { ...env, ...overrides }, ctx);
		await waitOnExecutionContext(ctx);
	} else {
		response = await exports.default.fetch(request);
	}
	const bytes = new Uint8Array(await response.arrayBuffer());
	const text = new TextDecoder().decode(bytes);
	expect(response.headers.get("cache-control"), path.split("?")[0]).toBe("no-store");
	const headerText = [...response.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
	expect(secrets.filter((s) => (text + headerText).includes(s)), `${path.split("?")[0]} leaks a secret`).toEqual([]);
	let json: Record<string, unknown> | null = null;
	try {
		json = JSON.parse(text) as Record<string, unknown>;
	} catch {}
	return { status: response.status, headers: response.headers, bytes, json };
}

/** POST JSON, as SDKs send it. */
export function postJson(path: string, body: unknown, headers: Record<string, string> = {}): Promise<GatewayResponse> {
	return gw(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
}

/** The checks a WeCom-shaped refusal passes: HTTP 200, WeCom's content type, the errcode, the words, no leak. */
export function expectWeComError(res: GatewayResponse, errcode: number, message: RegExp): void {
	expect(res.status).toBe(200);
	expect(res.headers.get("content-type")).toBe("application/json; charset=UTF-8");
	expect(res.json?.errcode, JSON.stringify(res.json)).toBe(errcode);
	expect(res.json?.errmsg).toMatch(message);
	expect(findLeaks(JSON.stringify(res.json), secrets)).toEqual([]);
}

/** The checks a WeChat-shaped refusal passes: HTTP 200, JSON, the errcode, and nothing a leak detector flags. */
export function expectWeChatError(res: GatewayResponse, errcode: number): void {
	expect(res.status).toBe(200);
	// WeChat's exact header: SDKs tell an error from a download by it.
	expect(res.headers.get("content-type")).toBe("application/json; encoding=utf-8");
	expect(res.json?.errcode, JSON.stringify(res.json)).toBe(errcode);
	expect(typeof res.json?.errmsg).toBe("string");
	expect(findLeaks(JSON.stringify(res.json), secrets)).toEqual([]);
}

/** Calls the simulator answered "unknown token" to, per path: a forged token that got through shows up here. */
export async function unknownTokenCalls(): Promise<Record<string, number>> {
	const response = await fetch(`${simUrl}/__sim/stats`);
	const stats = (await response.json()) as { unknown_token?: Record<string, number> };
	return stats.unknown_token ?? {};
}

/**
 * "same length, same SHA-256" for bodies: vitest's deep equality walks a megabyte element by element for
 * seconds, long enough for idle keep-alive connections to the simulator to time out under it.
 */
export async function fingerprint(bytes: Uint8Array): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
	return `${bytes.byteLength} bytes, sha256 ${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A JavaScript stream of 64 KiB chunks: nothing in it tells the runtime its length. */
function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
	let offset = 0;
	return new ReadableStream({
		pull(controller) {
			if (offset >= bytes.byteLength) return controller.close();
			controller.enqueue(bytes.slice(offset, offset + 64 * 1024));
			offset += 64 * 1024;
		},
	});
}

/**
 * POST /cgi-bin/media/upload through the gateway as co-wechat-api sends it: a multipart body, field "media",
 * the file's name and content type.
 */
export async function uploadMedia(token: string, file: File, { stream = false } = {}): Promise<GatewayResponse> {
	const form = new FormData();
	form.append("media", file);
	const multipart = new Request("https://multipart.invalid", { method: "POST", body: form });
	// Bytes have a declared length; a stream has none, and the gateway must find its size by reading it.
	const bytesOut = new Uint8Array(await multipart.arrayBuffer());
	const body = stream ? chunked(bytesOut) : bytesOut;
	return gw(`/cgi-bin/media/upload?access_token=${encodeURIComponent(token)}&type=image`, {
		method: "POST",
		headers: { "content-type": multipart.headers.get("content-type")! },
		body,
	});
}
