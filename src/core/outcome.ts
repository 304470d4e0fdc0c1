/**
 * What the authority's RPC methods return: plain data, so nothing depends on errors crossing the RPC
 * boundary. app.ts turns a failure into the HTTP contract's error.
 */
import type { CredentialRecord } from "./lifetime";

export interface Failure {
	/** `config_error`: the operator must fix something (a registry app whose secret cannot be opened). */
	readonly code: "wechat_error" | "wechat_unreachable" | "rate_limited" | "not_found" | "config_error";
	readonly message: string;
	readonly wechatErrcode?: number;
	readonly retryAfterS?: number;
}

export type Outcome = { ok: true; record: CredentialRecord } | { ok: false; failure: Failure };

export function ok(record: CredentialRecord): Outcome {
	return { ok: true, record };
}

export function fail(failure: Failure): Outcome {
	return { ok: false, failure };
}
