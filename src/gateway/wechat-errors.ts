/**
 * Errors in WeChat's own shape, for everything under the gateway's paths: `{"errcode": N, "errmsg": "…"}`
 * with HTTP 200, which is what SDKs parse (they throw on a non-zero errcode and show errmsg). The errcode is
 * the one WeChat itself would answer for the same mistake, so an SDK's own handling applies unchanged
 * (e.g. on 40001 co-wechat-api and WxJava fetch a new token — from the broker — and retry); errmsg adds what
 * the broker saw and what to do, never a key, secret or token.
 */
import { ConfigError } from "../config/config";
import { BrokerError, type ErrorCode } from "../core/errors";
import type { CredentialType } from "../core/credentials";
import type { AppEnv } from "../env";
import { readCredential } from "../access/reads";
import type { CredentialRecord } from "../core/lifetime";
import { log } from "../core/log";
import type { Failure } from "../authority/token-authority";

/** WeChat's errcodes the gateway answers with (WECHAT-API.md; WeChat's global return codes). */
export const ERRCODE = {
	systemError: -1,
	invalidCredential: 40001,
	invalidGrantType: 40002,
	invalidAppid: 40013,
	invalidArgs: 40035,
	invalidAppSecret: 40125,
	invalidIp: 40164,
	accessTokenMissing: 41001,
	appidMissing: 41002,
	appSecretMissing: 41004,
	requireGet: 43001,
	requirePost: 43002,
	minuteQuota: 45011,
	dataFormat: 47001,
	apiUnauthorized: 48001,
	/** getticket with a type WeChat does not have (the simulator and WeChat answer "invalid args"). */
	invalidTicketType: 40097,
} as const;

/**
 * WeCom's own numbers for the same mistakes (WECHAT-API.md, "WeCom"): 40001 is a bad *secret* there, a bad
 * token is 40014, and a bad parameter 40058.
 */
export const WECOM_ERRCODE = {
	invalidSecret: 40001,
	invalidCorpid: 40013,
	invalidAccessToken: 40014,
	invalidParameter: 40058,
	corpidMissing: 41002,
	secretMissing: 41004,
} as const;

export type Platform = "wechat" | "wecom";

export class WeChatError extends Error {
	override readonly name = "WeChatError";
	readonly errcode: number;
	/** 200 like WeChat; 500 only for the broker's own configuration or bugs. */
	readonly status: 200 | 500;
	/** Whose shape the answer takes: WeCom's errors carry its own content type. */
	readonly platform: Platform;

	constructor(errcode: number, message: string, status: 200 | 500 = 200, platform: Platform = "wechat") {
		super(message);
		this.errcode = errcode;
		this.status = status;
		this.platform = platform;
	}
}

/** api.weixin.qq.com's exact header, non-standard "encoding" included: SDKs tell an error from a download by it. */
const WECHAT_CONTENT_TYPE = "application/json; encoding=utf-8";
/** qyapi.weixin.qq.com's header. */
export const WECOM_CONTENT_TYPE = "application/json; charset=UTF-8";

export function wechatErrorResponse(error: WeChatError): Response {
	return new Response(JSON.stringify({ errcode: error.errcode, errmsg: error.message }), {
		status: error.status,
		headers: { "content-type": error.platform === "wecom" ? WECOM_CONTENT_TYPE : WECHAT_CONTENT_TYPE },
	});
}

/** A token call's failure (from the TokenAuthority) as WeChat (or WeCom) would have put it. */
export function failureAsWeChat(failure: Failure | BrokerError, platform: Platform = "wechat"): WeChatError {
	const codes = platform === "wecom" ? WECOM_BROKER_CODES : BROKER_CODES;
	return new WeChatError(failure.wechatErrcode ?? codes[failure.code], `${failure.message} (wx-token-broker)`, 200, platform);
}

const BROKER_CODES: Record<ErrorCode, number> = {
	bad_request: ERRCODE.invalidArgs,
	unauthorized: ERRCODE.invalidAppSecret,
	// The only 403 that reaches a gateway path is ALLOWED_IPS: WeChat's own word for it is 40164.
	forbidden: ERRCODE.invalidIp,
	not_found: ERRCODE.invalidAppid,
	method_not_allowed: ERRCODE.invalidArgs,
	// The admin API's; never answered on a gateway path.
	conflict: ERRCODE.invalidArgs,
	payload_too_large: ERRCODE.dataFormat,
	rate_limited: ERRCODE.minuteQuota,
	wechat_error: ERRCODE.systemError,
	wechat_unreachable: ERRCODE.systemError,
	config_error: ERRCODE.systemError,
	internal_error: ERRCODE.systemError,
};

/** WeCom says "frequency limit" with 45009 and "not trusted IP" with 60020; a bad parameter is 40058. */
const WECOM_BROKER_CODES: Record<ErrorCode, number> = {
	...BROKER_CODES,
	bad_request: WECOM_ERRCODE.invalidParameter,
	unauthorized: WECOM_ERRCODE.invalidSecret,
	forbidden: 60020,
	not_found: WECOM_ERRCODE.invalidCorpid,
	method_not_allowed: WECOM_ERRCODE.invalidParameter,
	rate_limited: 45009,
};

/**
 * A credential for a gateway answer, read the way the broker's own routes read it (http-shared.ts: this
 * isolate's memory, the KV edge copy, the app's object), with a failure in WeChat's (or WeCom's) shape.
 */
export async function credentialFor(env: AppEnv, appid: string, type: CredentialType, platform: Platform = "wechat"): Promise<CredentialRecord> {
	try {
		return await readCredential(env, appid, type);
	} catch (error) {
		if (error instanceof BrokerError) throw failureAsWeChat(error, platform);
		throw error;
	}
}

/** Anything thrown while serving a gateway path, in WeChat's shape. */
export function asWeChatError(error: unknown, path: string): WeChatError {
	if (error instanceof WeChatError) return error;
	if (error instanceof BrokerError) {
		return new WeChatError(error.wechatErrcode ?? BROKER_CODES[error.code], `${error.message} (wx-token-broker)`);
	}
	if (error instanceof ConfigError) {
		log("error", "config_invalid", { message: error.message });
		// The fix-it message may name apps and keys; an SDK's caller holds no admin key, so it goes to the logs only.
		return new WeChatError(ERRCODE.systemError, "system error (wx-token-broker: its configuration is invalid; its operator will find what to fix in its logs, event config_invalid)", 500);
	}
	const e = error instanceof Error ? error : new Error(String(error));
	log("error", "internal_error", { name: e.name, message: e.message, path });
	return new WeChatError(ERRCODE.systemError, "system error (wx-token-broker internal error; the details are in its logs)", 500);
}
