/**
 * How long a credential's refreshes pause after failures, and how a failure reaches a client. Pure rules,
 * apart from the engine so they can be read (and tested) alone.
 */
import type { Failure } from "../core/outcome";
import type { UpstreamFailure } from "../wechat/client";
import type { FailureClass } from "../wechat/errcodes";

/** Backoff after failed refreshes: 2 s, 4 s, 8 s … capped per failure class. */
const BACKOFF_BASE_S = 2;
const BACKOFF_CAP_S: Record<FailureClass, number> = { retryable: 60, quota: 300, fatal: 300 };
/** Past the quota guard's share: at most one attempt every 5 minutes, ~300 calls a day at worst. */
const CONSERVING_BACKOFF_S = 300;

/** Seconds before the next attempt after the `failures`-th failure in a row. */
export function backoffAfter(failures: number, failureClass: FailureClass, conserving: boolean): number {
	return conserving ? CONSERVING_BACKOFF_S : Math.min(BACKOFF_BASE_S * 2 ** (failures - 1), BACKOFF_CAP_S[failureClass]);
}

/** What a client is told: 502 for WeChat's own refusal (with its errcode), 503 when it could not be reached. */
export function upstreamFailure(failure: UpstreamFailure, retryAt: number, now: number): Failure {
	return {
		code: failure.kind === "wechat" ? "wechat_error" : "wechat_unreachable",
		message: failure.message,
		...(failure.errcode !== undefined && { wechatErrcode: failure.errcode }),
		retryAfterS: Math.max(1, Math.ceil((retryAt - now) / 1_000)),
	};
}
