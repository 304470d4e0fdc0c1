/**
 * The shapes configuration is parsed into, in a module of their own so that the parsers (apps.ts, keys.ts)
 * and the error they raise (error.ts) need not import each other.
 */

/**
 * `stable`: /cgi-bin/stable_token (default); `classic`: /cgi-bin/token; `wecom`: WeCom's /cgi-bin/gettoken;
 * `component`: an open-platform component's own object, whose token is the component_access_token
 * (authority/component-token.ts); never configured as an app. `authorizer`: an account that authorised a
 * component, registered by WeChat's authorisation push (authority/authorizer.ts), its token fetched with the
 * component's token and its own sealed authorizer_refresh_token; never PUT by hand. `suite` and `provider`: a
 * WeCom suite's object (suite:<suite_id>) and a service provider's (provider:<corpid>), whose tokens are the
 * suite_access_token and the provider_access_token (authority/suite-token.ts); never configured as apps.
 * `suite_corp`: a company that installed a WeCom suite, registered by the install (authority/suite-installs.ts),
 * its token fetched with get_corp_token from the suite's token and its own sealed permanent code; never PUT by hand.
 */
export type TokenMode = "stable" | "classic" | "wecom" | "component" | "authorizer" | "suite" | "provider" | "suite_corp";

/** Where an app's entry lives: the WECHAT_APPS secret, or the registry (the admin API). */
export type AppSource = "secret" | "registry";

/**
 * An app as every Worker isolate knows it: everything but its secret. Only the app's own Durable Object
 * holds the secret (AppConfig); a registry app's profile reaches isolates through KV (registry/lookup.ts).
 */
export interface AppProfile {
	/** How clients name it (`?appid=`): the WeChat AppID, or a WeCom entry's `id` (default `<corpid>-<agentid>`). */
	readonly appid: string;
	readonly source: AppSource;
	readonly platform: "wechat" | "wecom";
	readonly mode: TokenMode;
	/** WeChat's daily call quota for the app's token endpoint (what the quota guard protects). */
	readonly dailyQuota: number;
	/** Official accounts: getticket's daily quota ("very limited"; 10,000 reported). */
	readonly ticketDailyQuota: number;
	/** WeCom only. */
	readonly corpid?: string;
	/** WeCom only: the self-built app this secret belongs to; absent for the contacts or customer-contact secret. */
	readonly agentid?: string;
	/** WeCom only: how many entries share this corp (its corp-ticket hourly limit is shared between them). */
	readonly corpEntries?: number;
	/**
	 * The open-platform component the entry belongs to: for mode `component`, the component itself (the
	 * entry's own `appid` is then its object's name, component:<id>). A key scoped `component:<id>` reaches it.
	 */
	readonly componentAppid?: string;
	/**
	 * For mode `suite`: the suite itself (the entry's own `appid` is then its object's name, suite:<suite_id>);
	 * for mode `suite_corp`: the suite the company installed. A key scoped `suite:<id>` reaches both.
	 */
	readonly suiteId?: string;
	/** An authorizer whose account revoked the authorisation (`unauthorized`), or a company that uninstalled (`cancel_auth`): ms; its tokens are wiped. */
	readonly revokedAt?: number;
	/** An authorizer whose refresh token WeChat refused (61023 / 61003), or a company whose permanent code WeCom refused (40084 / 40082): ms; it must grant again. */
	readonly reauthoriseSince?: number;
}

/** An app with its secret: what the app's Durable Object fetches credentials with. */
export interface AppConfig extends AppProfile {
	readonly secret: string;
}

export interface ApiKeyConfig {
	readonly name: string;
	/** SHA-256 of the key. Plain keys are hashed on first use (see auth.ts), so only one form is compared. */
	readonly sha256: Uint8Array | null;
	readonly plain: string | null;
	/** `"*"` for every configured app. */
	readonly apps: "*" | ReadonlySet<string>;
	readonly admin: boolean;
}

/**
 * An open-platform component as every Worker isolate knows it: its id, where it is configured, its quota;
 * never its secret, message token or EncodingAESKey (ComponentConfig), which only its own object holds.
 */
export interface ComponentProfile {
	readonly componentAppid: string;
	readonly source: AppSource;
	/** api_component_token calls a WeChat day. */
	readonly dailyQuota: number;
}

/** A component with what its object signs, decrypts and fetches with (config/components.ts). */
export interface ComponentConfig extends ComponentProfile {
	readonly secret: string;
	/** The message token: signatures of pushes to the event URL. */
	readonly token: string;
	readonly encodingAesKey: string;
}

/**
 * A WeCom suite (第三方应用 or 代开发 template) as every Worker isolate knows it: its id, where it is configured,
 * the provider's corpid (the receiver id of its URL check); never its secret, message token, EncodingAESKey or
 * provider secret (SuiteConfig), which only its own object holds.
 */
export interface SuiteProfile {
	readonly suiteId: string;
	readonly source: AppSource;
	/** The service provider's own corpid (服务商 CorpID), when configured. */
	readonly providerCorpid?: string;
}

/** A suite with what its object verifies, decrypts and fetches with (config/suites.ts). */
export interface SuiteConfig extends SuiteProfile {
	readonly secret: string;
	/** The message token: signatures of the instruction callbacks and the URL check. */
	readonly token: string;
	readonly encodingAesKey: string;
	/** The provider's secret (get_provider_token), when configured; needs providerCorpid. */
	readonly providerSecret?: string;
}
