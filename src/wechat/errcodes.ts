/**
 * What WeChat's errcodes on the token endpoints mean for the broker, and what an operator must do about them.
 * Compare errcodes, never errmsg (WeChat rewords errmsg and appends a request id). Reference:
 * ../shared/WECHAT-API.md and https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
 */

/** How the broker reacts to an upstream failure. */
export type FailureClass =
	/** Transient (system busy, minute quota, network): try again later with backoff. */
	| "retryable"
	/** The daily quota is spent: nothing helps until midnight China time, or clear_quota. */
	| "quota"
	/** Configuration or account problem: retrying cannot help until an operator acts. */
	| "fatal";

interface ErrcodeInfo {
	readonly class: FailureClass;
	/** What happened and what to do, for the operator. Never contains the secret. */
	readonly advice: string;
}

const IP_ADVICE =
	"WeChat refuses this egress IP: add the IP to the app's API IP allowlist in the WeChat admin console, or set WECHAT_API_BASE to a fixed-IP relay that is on it";

const ERRCODES: ReadonlyMap<number, ErrcodeInfo> = new Map([
	[-1, { class: "retryable", advice: "WeChat is busy (system error); the broker retries" }],
	[45011, { class: "retryable", advice: "WeChat's per-minute limit was hit; the broker retries" }],
	[45009, {
		class: "quota",
		advice: "the app's daily quota for this endpoint is spent; it resets at 00:00 China time (UTC+8), or an admin can call /cgi-bin/clear_quota",
	}],
	[40001, { class: "fatal", advice: "WeChat rejected the AppSecret (errcode 40001 on the token endpoint): update the secret (WECHAT_APPS, or PUT /admin/apps/{appid})" }],
	[40002, { class: "fatal", advice: "WeChat rejected grant_type; this is a broker bug, please report it" }],
	[40013, { class: "fatal", advice: "WeChat does not know this appid: check the appid (WECHAT_APPS, or the registry)" }],
	[40125, { class: "fatal", advice: "the AppSecret is wrong (was it reset?): update the secret (WECHAT_APPS, or PUT /admin/apps/{appid})" }],
	[40164, { class: "fatal", advice: IP_ADVICE }],
	[61004, { class: "fatal", advice: IP_ADVICE }],
	[89501, { class: "fatal", advice: "this egress IP awaits confirmation by the account's admin in the WeChat admin console" }],
	[89503, { class: "fatal", advice: "this egress IP must be confirmed by the account's admin in the WeChat admin console" }],
	[89506, { class: "fatal", advice: "the account's admin rejected this egress IP; WeChat blocks it for 24 h" }],
	[89507, { class: "fatal", advice: "the account's admin rejected this egress IP; WeChat blocks it for 1 h" }],
	[40243, { class: "fatal", advice: "the AppSecret is frozen: unfreeze or reset it in the WeChat admin console, then update the secret (WECHAT_APPS, or PUT /admin/apps/{appid})" }],
	[41002, { class: "fatal", advice: "the appid was missing from the request; this is a broker bug, please report it" }],
	[41004, { class: "fatal", advice: "the AppSecret was missing from the request; check the entry (WECHAT_APPS, or the registry)" }],
	[43002, { class: "fatal", advice: "the endpoint requires POST; if WECHAT_API_BASE is a relay, make it forward the method unchanged" }],
	[50004, { class: "fatal", advice: "WeChat has banned this app from the token API; see the notice in the WeChat admin console" }],
	[50007, { class: "fatal", advice: "the account is frozen; see the WeChat admin console" }],
]);

/**
 * WeCom's own table (WECHAT-API.md, "WeCom"): the same numbers can mean different things there, above all
 * 40001, which is a bad *secret* in WeCom, not a bad token.
 */
const WECOM_ERRCODES: ReadonlyMap<number, ErrcodeInfo> = new Map([
	[-1, { class: "retryable", advice: "WeCom is busy (system error); the broker retries" }],
	[45033, { class: "retryable", advice: "WeCom's concurrency limit was hit; the broker retries" }],
	[45009, { class: "quota", advice: "WeCom's frequency limit for this API was hit (per minute or per hour); calls resume when the window ends" }],
	[40001, { class: "fatal", advice: "WeCom rejected the Secret (errcode 40001): update the app's secret (WECHAT_APPS, or PUT /admin/apps/{id})" }],
	[40013, { class: "fatal", advice: "WeCom does not know this CorpID: check the corpid (WECHAT_APPS, or the registry)" }],
	[40056, { class: "fatal", advice: "WeCom rejected the AgentId: check the agentid (WECHAT_APPS, or the registry)" }],
	[41002, { class: "fatal", advice: "the corpid was missing from the request; check the entry (WECHAT_APPS, or the registry)" }],
	[41004, { class: "fatal", advice: "the Secret was missing from the request; check the entry (WECHAT_APPS, or the registry)" }],
	[48002, { class: "fatal", advice: "this Secret may not call the API (e.g. an agent ticket needs that agent's own secret): check the entry in WECHAT_APPS" }],
	[60020, { class: "fatal", advice: "WeCom refuses this egress IP: add it to the app's trusted IPs in the WeCom admin console, or set WECOM_API_BASE to a fixed-IP relay that is" }],
]);

/** Answers that mean the access_token used is bad, per platform (WECHAT-API.md). */
export const TOKEN_INVALID: Record<"wechat" | "wecom", ReadonlySet<number>> = {
	wechat: new Set([40001, 40014, 42001]),
	wecom: new Set([40014, 42001]),
};

export function classifyErrcode(errcode: number, platform: "wechat" | "wecom" = "wechat"): ErrcodeInfo {
	const known = (platform === "wecom" ? WECOM_ERRCODES : ERRCODES).get(errcode);
	return known ?? { class: "fatal", advice: `${platform === "wecom" ? "WeCom" : "WeChat"} answered errcode ${errcode}, which the broker does not know; see its global return codes` };
}
