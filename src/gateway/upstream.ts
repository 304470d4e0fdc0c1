/**
 * Where an app's business calls go, and which of the upstream's errcodes mean "this token is bad".
 * The gateway sends nothing anywhere else: the base comes from configuration, never from the request.
 */
import type { AppProfile, BrokerConfig } from "../config/config";
import { TOKEN_INVALID } from "../wechat/errcodes";
import { SUITE_TOKEN_INVALID } from "../wechat/suite-client";

export interface Upstream {
	/** Without a trailing slash: WECHAT_API_BASE (a fixed-IP relay in production). */
	readonly base: string;
	/** Answers that compare-and-refresh heals, then one retry with the new token. */
	readonly tokenErrcodes: ReadonlySet<number>;
	/**
	 * WECHAT_RELAY_HEADERS, on every call the gateway sends, as on the broker's token calls: a relay that
	 * admits only the broker must admit its forwarded calls too. They are set after the client's headers, so
	 * a client cannot choose their values.
	 */
	readonly relayHeaders: Readonly<Record<string, string>>;
}

/**
 * An official account's or mini program's calls go to WECHAT_API_BASE; a WeCom app's to WECOM_API_BASE,
 * where 40001 means a bad *secret*, not a bad token: only 40014 and 42001 are healed there (TOKEN_INVALID).
 * A suite's or provider's calls (service-calls.ts) are WeCom's too, and there 40082 and 42009 say the token is bad.
 * An app that is no longer configured never gets here: ownership.ts only recognises configured apps.
 */
export function upstreamFor(config: BrokerConfig, app: Pick<AppProfile, "platform" | "mode">): Upstream {
	const { platform } = app;
	return {
		base: platform === "wecom" ? config.weComBase : config.apiBase,
		tokenErrcodes: app.mode === "suite" || app.mode === "provider" ? SUITE_TOKEN_INVALID : TOKEN_INVALID[platform],
		relayHeaders: config.relayHeaders,
	};
}
