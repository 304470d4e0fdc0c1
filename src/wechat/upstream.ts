/**
 * One GET or POST to WeChat or WeCom that expects a JSON answer, turned into a typed result: the JSON object,
 * or a failure that says WeChat could not be reached (network, timeout, HTTP error, garbage). It never
 * throws for an upstream problem and never logs or returns the request URL or body: they carry the
 * AppSecret or a token.
 */
import type { FailureClass } from "./errcodes";

export interface UpstreamFailure {
	/** `wechat`: WeChat answered with an errcode. `unreachable`: no usable answer (network, timeout, 5xx, garbage). */
	readonly kind: "wechat" | "unreachable";
	readonly class: FailureClass;
	readonly errcode?: number;
	readonly message: string;
	/** WeChat refused the access_token a ticket call was made with (the token is bad, not the ticket). */
	readonly tokenRefused?: boolean;
}

export type UpstreamResult<T> = { ok: true; value: T } | { ok: false; failure: UpstreamFailure };

export interface UpstreamOptions {
	readonly timeoutMs: number;
	/** WECHAT_RELAY_HEADERS: sent with every call, so a relay in front of WeChat can admit only the broker. */
	readonly relayHeaders?: Readonly<Record<string, string>>;
	/** The configuration name of the base URL, for messages ("WECHAT_API_BASE", "WECOM_API_BASE"). */
	readonly baseName: string;
}

export async function upstreamJson(url: string, init: RequestInit, { timeoutMs, relayHeaders = {}, baseName }: UpstreamOptions): Promise<UpstreamResult<Record<string, unknown>>> {
	let response: Response;
	try {
		response = await fetch(url, { ...init, headers: { ...relayHeaders, ...init.headers as Record<string, string> }, signal: AbortSignal.timeout(timeoutMs) });
	} catch (error) {
		const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
		return unreachable(timedOut ? `WeChat did not answer within ${timeoutMs} ms` : "could not connect to WeChat (network error)");
	}
	if (response.status !== 200) {
		await response.body?.cancel();
		return unreachable(response.status === 401 || response.status === 403
			? `WeChat's address (${baseName}) answered HTTP ${response.status}: a relay there refused the broker; check that WECHAT_RELAY_HEADERS holds the header the relay expects`
			: `WeChat answered HTTP ${response.status}`);
	}
	let body: unknown;
	try {
		body = await response.json();
	} catch {
		return unreachable("WeChat's answer was not JSON (a relay or gateway error page?)");
	}
	if (typeof body !== "object" || body === null || Array.isArray(body)) return unreachable("WeChat's answer was not a JSON object");
	return { ok: true, value: body as Record<string, unknown> };
}

export function unreachable(message: string): { ok: false; failure: UpstreamFailure } {
	return { ok: false, failure: { kind: "unreachable", class: "retryable", message } };
}
