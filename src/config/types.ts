/**
 * The shapes configuration is parsed into, in a module of their own so that the parsers (apps.ts, keys.ts)
 * and the error they raise (error.ts) need not import each other.
 */

/** `stable`: /cgi-bin/stable_token (default); `classic`: /cgi-bin/token; `wecom`: WeCom's /cgi-bin/gettoken. */
export type TokenMode = "stable" | "classic" | "wecom";

export interface AppConfig {
	/** How clients name it (`?appid=`): the WeChat AppID, or a WeCom entry's `id` (default `<corpid>-<agentid>`). */
	readonly appid: string;
	readonly platform: "wechat" | "wecom";
	readonly secret: string;
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
