/**
 * The credential kinds an app has, and only what differs between them: how one is fetched (endpoint,
 * parameters, which token it needs), its lifetime policy (what a new value does to the old one), which call
 * it counts against, and its quota. Everything else — single flight, storage and restart safety, due time
 * and the promised expires_in, backoff, the limits, incidents, the KV edge copy — is the engine's
 * (refresher.ts, fetch-and-store.ts), written once. A new kind (the open platform's component tokens,
 * say) is a new entry here.
 */
import type { AppConfig, AppProfile, BrokerConfig } from "../config/config";
import type { CredentialType, TicketType } from "../core/credentials";
import type { LifetimePolicy } from "../core/lifetime";
import type { CountedCall } from "../core/usage";
import { endpointFor, fetchTicket, fetchToken, ticketEndpointFor, type Fetched, type UpstreamResult } from "../wechat/client";
import { fetchComponentToken, NO_COMPONENT_TICKET, TICKET_ERRCODES } from "../wechat/component-client";
import { fetchProviderToken, fetchSuiteToken, NO_SUITE_TICKET, SUITE_TICKET_ERRCODES, SUITE_TOKEN_INVALID } from "../wechat/suite-client";
import type { UpstreamFailure } from "../wechat/upstream";
import { fetchAuthorizerToken, REAUTHORISE_ERRCODES } from "../wechat/authorizer-client";
import { fetchCorpToken, REINSTALL_ERRCODES, UNINSTALLED_ERRCODES } from "../wechat/install-client";


/** WeCom: 400 corp jsapi tickets an hour per corp, 100 agent_config tickets an hour per agent (WECHAT-API.md). */
const WECOM_CORP_TICKETS_PER_HOUR = 400;
const WECOM_AGENT_TICKETS_PER_HOUR = 100;

/** A kind fetched with a ticket the platform pushes (authority/pushed-ticket.ts): what its absence and refusal look like. */
export interface TicketedFetch {
	/** The failure of a fetch that had no ticket to send (nothing is sent). */
	readonly missing: UpstreamFailure;
	/** The errcodes that refuse the ticket, not the secret. */
	readonly refusals: ReadonlySet<number>;
}

export const COMPONENT_TICKETED: TicketedFetch = { missing: NO_COMPONENT_TICKET, refusals: TICKET_ERRCODES };
export const SUITE_TICKETED: TicketedFetch = { missing: NO_SUITE_TICKET, refusals: SUITE_TICKET_ERRCODES };

export interface CredentialKind {
	readonly type: CredentialType;
	/** For logs, alerts and /status. */
	readonly label: string;
	readonly policy: LifetimePolicy;
	/** The counted call that fetches it. */
	readonly call: CountedCall;
	/** Tickets are fetched with the app's current access_token. */
	readonly derived: boolean;
	/** A component token (a suite token) is fetched with the newest ticket pushed to its object (attempt.ts). */
	readonly ticketed?: TicketedFetch;
	/**
	 * The platform hands out the same value until it expires (WeCom's suite and provider tokens, W-97162,
	 * W-96237): a refresh before expiry only spends a call, so the plan is the expiry itself (fetch-and-store.ts).
	 */
	readonly sameUntilExpiry?: boolean;
	/**
	 * An authorizer's token is fetched with its component's component_access_token and its own sealed refresh
	 * token, an installed company's with its suite's suite_access_token and its own sealed permanent code
	 * (attempt.ts, authority/sealed-grant.ts): these errcodes say the grant is dead and must be given again.
	 */
	readonly regrant?: ReadonlySet<number>;
	/** Of those, the errcodes that also end the value held: the platform stopped it with the grant (fetch-and-store.ts). */
	readonly endsHeld?: ReadonlySet<number>;
	/** Errcodes that may refuse the parent's token rather than the grant: the parent's is healed first (attempt.ts). */
	readonly parentRefused?: ReadonlySet<number>;
	/** Calls a WeChat day (what the quota guard protects). */
	readonly dailyQuota: number;
	/** Calls a clock hour, where WeChat limits by the hour (WeCom tickets); never exceeded. */
	readonly hourlyLimit: number | null;
	/**
	 * `force`: a refresh that must not return the current value if WeChat can avoid it (stable
	 * force_refresh); `input`: the access_token for derived kinds, the component_verify_ticket for ticketed ones.
	 */
	fetch(config: BrokerConfig, force: boolean, input: string | null): Promise<UpstreamResult<Fetched>>;
}

/** The kinds `app` has: official accounts have jsapi and wx_card tickets; WeCom apps jsapi, and agent_config with an agentid. */
export function kindsOf(app: AppProfile): CredentialType[] {
	// A component's object holds one credential, its component_access_token, in the `token` slot; a suite's
	// its suite_access_token, a provider's its provider_access_token.
	if (app.mode === "component" || app.mode === "suite" || app.mode === "provider") return ["token"];
	if (app.platform === "wechat") return ["token", "jsapi", "wx_card"];
	return app.agentid ? ["token", "jsapi", "agent_config"] : ["token", "jsapi"];
}

export function hasKind(app: AppProfile, type: CredentialType): boolean {
	return kindsOf(app).includes(type);
}

export function kindFor(app: AppConfig, type: CredentialType): CredentialKind {
	if (app.mode === "component") {
		return {
			type, label: "component_access_token", derived: false, ticketed: COMPONENT_TICKETED, hourlyLimit: null,
			// Whether a new component token leaves the old one valid is not documented: no overlap assumed.
			policy: "no_overlap",
			call: "api_component_token",
			dailyQuota: app.dailyQuota,
			fetch: (config, _force, ticket) => fetchComponentToken(app, config, ticket!),
		};
	}
	if (app.mode === "suite" || app.mode === "provider") {
		const suite = app.mode === "suite";
		return {
			type, label: suite ? "suite_access_token" : "provider_access_token", derived: false, hourlyLimit: null,
			// A re-fetch inside the validity returns the same token, which stays valid to its own expiry.
			policy: "independent", sameUntilExpiry: true,
			...(suite && { ticketed: SUITE_TICKETED }),
			call: suite ? "get_suite_token" : "get_provider_token",
			dailyQuota: app.dailyQuota,
			fetch: (config, _force, ticket) => (suite ? fetchSuiteToken(app, config, ticket!) : fetchProviderToken(app, config)),
		};
	}
	if (app.mode === "authorizer" && type === "token") {
		return {
			type, label: "authorizer_access_token", derived: false, regrant: REAUTHORISE_ERRCODES, endsHeld: REAUTHORISE_ERRCODES, hourlyLimit: null,
			// As for the component token: an overlap after a refresh is only reported, so none is assumed.
			policy: "no_overlap",
			call: "api_authorizer_token",
			dailyQuota: app.dailyQuota,
			fetch: (config, _force, componentToken) => fetchAuthorizerToken(app, config, componentToken!),
		};
	}
	if (app.mode === "suite_corp" && type === "token") {
		return {
			type, label: "access_token", derived: false, regrant: REINSTALL_ERRCODES, endsHeld: UNINSTALLED_ERRCODES, parentRefused: SUITE_TOKEN_INVALID, hourlyLimit: null,
			// A corp token is a corp's token (W-90605): a new one leaves the old valid to its own expiry, and a
			// re-fetch inside the validity may return the same one (unconfirmed): `independent` is right either way.
			policy: "independent",
			call: "get_corp_token",
			dailyQuota: app.dailyQuota,
			fetch: (config, _force, suiteToken) => fetchCorpToken(app, config, suiteToken!),
		};
	}
	if (type === "token") {
		return {
			type, label: "access_token", derived: false, hourlyLimit: null,
			policy: app.mode === "classic" ? "classic" : app.mode === "stable" ? "stable" : "independent",
			call: endpointFor(app),
			dailyQuota: app.dailyQuota,
			fetch: (config, force) => fetchToken(app, config, force),
		};
	}
	const wecom = app.platform === "wecom";
	return {
		type, label: `${type} ticket`, derived: true, policy: "independent",
		call: ticketEndpointFor(app, type),
		dailyQuota: wecom ? Number.MAX_SAFE_INTEGER : app.ticketDailyQuota,
		hourlyLimit: !wecom ? null : type === "agent_config"
			? WECOM_AGENT_TICKETS_PER_HOUR
			// The corp ticket's limit is the corp's: each entry of the corp keeps to its share.
			: Math.max(1, Math.floor(WECOM_CORP_TICKETS_PER_HOUR / (app.corpEntries ?? 1))),
		fetch: (config, _force, token) => fetchTicket(app, type, token!, config),
	};
}
