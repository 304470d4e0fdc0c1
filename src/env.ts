/**
 * The Worker's bindings, typed once. `wrangler types` generates the bindings declared in wrangler.toml
 * (worker-configuration.d.ts); the secrets are set with `wrangler secret put` and never appear in
 * wrangler.toml, so they are declared here.
 */
declare global {
	namespace Cloudflare {
		interface Env {
			/** JSON array of `{appid, secret, mode?}`; optional with REGISTRY_KEY. Secret: `wrangler secret put WECHAT_APPS`. */
			WECHAT_APPS?: string;
			/** JSON array of `{name, key, apps, admin?}`. Secret: `wrangler secret put API_KEYS`. */
			API_KEYS: string;
			/** Optional comma-separated CIDRs allowed to call the broker (checked against CF-Connecting-IP). */
			ALLOWED_IPS?: string;
			/** Optional incoming-webhook URL for alerts; a secret when it embeds a key (it usually does). */
			ALERT_WEBHOOK_URL?: string;
			/** Optional WeCom upstream base (default https://qyapi.weixin.qq.com); a relay in production. */
			WECOM_API_BASE?: string;
			/** Optional share (0–1) of a daily quota after which forced refreshes are refused; default 0.5. */
			QUOTA_GUARD_SHARE?: string;
			/** Optional per-attempt timeout for WeChat calls, in ms; default 5000. */
			WECHAT_TIMEOUT_MS?: string;
			/** base64 of 32 random bytes: seals the secrets stored through the admin API (registry/seal.ts). Secret. */
			REGISTRY_KEY?: string;
			/** Optional: the key being rotated out; values it sealed still open until resealed. Secret. */
			REGISTRY_KEY_PREVIOUS?: string;
			/** Optional JSON array of open-platform components `{component_appid, secret, token, encoding_aes_key, daily_quota?}`. Secret. */
			WECHAT_COMPONENTS?: string;
			/** Optional JSON array of WeCom suites `{suite_id, secret, token, encoding_aes_key, provider_corpid?, provider_secret?}`. Secret. */
			WECOM_SUITES?: string;
			/** Optional JSON object of headers for every upstream call, so a relay can admit only the broker. Secret. */
			WECHAT_RELAY_HEADERS?: string;
		}
	}
}

export type AppEnv = Cloudflare.Env;
