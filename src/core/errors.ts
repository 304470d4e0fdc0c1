/**
 * One error type for everything the broker refuses; `onError` (app.ts) turns it into the JSON body of the
 * HTTP contract: `{"error": "<code>", "message": "<what happened and what to do>", "wechat_errcode"?: N}`.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type ErrorCode =
	| "bad_request"
	| "unauthorized"
	| "forbidden"
	| "not_found"
	| "method_not_allowed"
	| "conflict"
	| "payload_too_large"
	| "rate_limited"
	| "wechat_error"
	| "wechat_unreachable"
	| "config_error"
	| "internal_error";

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
	bad_request: 400,
	unauthorized: 401,
	forbidden: 403,
	not_found: 404,
	method_not_allowed: 405,
	conflict: 409,
	payload_too_large: 413,
	rate_limited: 429,
	wechat_error: 502,
	wechat_unreachable: 503,
	config_error: 500,
	internal_error: 500,
};

export interface ErrorBody {
	error: ErrorCode;
	message: string;
	wechat_errcode?: number;
	retry_after?: number;
}

export class BrokerError extends Error {
	override readonly name = "BrokerError";
	readonly code: ErrorCode;
	readonly wechatErrcode: number | undefined;
	/** Seconds; sent as `Retry-After` for 429 and 503. */
	readonly retryAfterS: number | undefined;
	readonly headers: Record<string, string>;

	constructor(
		code: ErrorCode,
		message: string,
		{ wechatErrcode, retryAfterS, headers = {} }: { wechatErrcode?: number; retryAfterS?: number; headers?: Record<string, string> } = {},
	) {
		super(message);
		this.code = code;
		this.wechatErrcode = wechatErrcode;
		this.retryAfterS = retryAfterS;
		this.headers = headers;
	}

	get status(): ContentfulStatusCode {
		return STATUS[this.code];
	}

	toBody(): ErrorBody {
		const body: ErrorBody = { error: this.code, message: this.message };
		if (this.wechatErrcode !== undefined) body.wechat_errcode = this.wechatErrcode;
		if (this.retryAfterS !== undefined) body.retry_after = this.retryAfterS;
		return body;
	}
}
