/**
 * An authorizer (an account that authorised a component) inside its own TokenAuthority, named by its appid
 * like any app's: an app everywhere (/token, /ticket, /jssdk/config, the gateway, /status), registered by
 * WeChat's authorisation push, never PUT by hand (DESIGN.md, "The open platform"). Its "secret" is its
 * authorizer_refresh_token, a sealed long-lived grant (sealed-grant.ts: sealing, replacement, the 61023 /
 * 61003 mark and the revocation are that module's, shared with WeCom's installed companies).
 */
import type { AppProfile } from "../config/config";
import { DEFAULT_DAILY_QUOTA, DEFAULT_TICKET_DAILY_QUOTA } from "../config/apps";

/** The profile of an authorizer of `componentAppid`: what every isolate knows of it. */
export function authorizerProfile(authorizerAppid: string, componentAppid: string): AppProfile {
	return {
		appid: authorizerAppid, source: "registry", platform: "wechat", mode: "authorizer",
		dailyQuota: DEFAULT_DAILY_QUOTA.authorizer, ticketDailyQuota: DEFAULT_TICKET_DAILY_QUOTA, componentAppid,
	};
}
