/**
 * WeCom's service-provider APIs through the gateway (/cgi-bin/service/…, OPEN-PLATFORM.md §10): authorised
 * by a suite_access_token or a provider_access_token in the query, never an access_token. As for the open
 * platform's component APIs (forward.ts), a token this broker did not issue is refused in WeCom's own words
 * (40082) and never reaches WeCom; one it issued is swapped for the owner's current token and forwarded.
 * get_suite_token itself is answered by the broker (suite-token-endpoint.ts).
 *
 * The calls that mint an installed company's token behind the broker (get_corp_token, and v1
 * get_permanent_code, which carries one) or hand out a permanent code (the long-lived secret the broker
 * keeps sealed) are the broker's own and never forwarded.
 */
import type { Context } from "hono";
import type { AuthVariables } from "../access/auth";
import { providerAppOf, suiteAsProfile, suiteIdOf, providerIdOf } from "../authority/suite-token";
import type { AppProfile } from "../config/config";
import { log, maskToken } from "../core/log";
import type { AppEnv } from "../env";
import { findSuite } from "../registry/lookup";
import { ownerOf } from "./ownership";
import { findAccessToken, type TokenInQuery } from "./query";
import { WeChatError } from "./wechat-errors";

type GatewayContext = Context<{ Bindings: AppEnv; Variables: AuthVariables }>;

export const SERVICE_API_PREFIX = "/cgi-bin/service/";
const SUITE_NAME = "suite_access_token";
const PROVIDER_NAME = "provider_access_token";

/** WeCom's errcodes for these refusals (OPEN-PLATFORM.md §10). */
const INVALID_SUITE_TOKEN = 40082;
const SUITE_TOKEN_MISSING = 41022;
const API_FORBIDDEN = 48002;

const BROKER_ONLY_SERVICE_PATHS: ReadonlyMap<string, string> = new Map([
	["/cgi-bin/service/get_corp_token", "it would mint an installed company's token behind the broker, which serves that company's token itself"],
	["/cgi-bin/service/get_permanent_code", "the permanent code is a long-lived secret the broker keeps sealed, and this answer also mints a company token"],
	["/cgi-bin/service/v2/get_permanent_code", "the permanent code is a long-lived secret the broker keeps sealed"],
]);

/** A refusal for a service API the broker keeps to itself, or null. */
export function brokerOnlyService(path: string): WeChatError | null {
	const why = BROKER_ONLY_SERVICE_PATHS.get(path);
	if (!why) return null;
	log("warn", "gateway_refused", { reason: "broker_only_service_api", path });
	return new WeChatError(API_FORBIDDEN, `api forbidden (wx-token-broker: ${why})`, 200, "wecom");
}

function refused(reason: string, why: string, path: string): WeChatError {
	log("warn", "gateway_refused", { reason, path });
	return new WeChatError(INVALID_SUITE_TOKEN, `invalid suite_acccess_token or provider_access_token (wx-token-broker: ${why})`, 200, "wecom");
}

/** An isolate hands on profiles, never secrets. */
function withoutSecret(app: (AppProfile & { secret?: string }) | undefined): AppProfile | undefined {
	if (!app) return undefined;
	const { secret: _secret, ...profile } = app;
	return profile;
}

/**
 * The suite or provider whose token the request carries (its object's name and its profile), or WeCom's
 * refusal. A query that names both tokens is refused: the broker would check one while WeCom used the other.
 */
export async function serviceOwner(c: GatewayContext, url: URL): Promise<{ appid: string; app: AppProfile; index: number; name: string }> {
	const suite = findAccessToken(url.search, SUITE_NAME);
	const provider = findAccessToken(url.search, PROVIDER_NAME);
	const presented: TokenInQuery = suite.kind === "missing" ? provider : provider.kind === "missing" ? suite : { kind: "unusable" };
	const name = suite.kind === "missing" ? PROVIDER_NAME : SUITE_NAME;
	if (presented.kind === "missing") {
		throw new WeChatError(SUITE_TOKEN_MISSING, "missing suite_access_token (wx-token-broker: send the suite_access_token this broker gave you, from /cgi-bin/service/get_suite_token)", 200, "wecom");
	}
	if (presented.kind !== "found") throw refused("unusable_token", "send one suite_access_token or provider_access_token, once, by its plain name", url.pathname);
	const config = c.get("config");
	const owner = await ownerOf(c.env.TOKEN_CACHE, config, presented.token, Date.now());
	if (!owner) {
		log("warn", "gateway_refused", { reason: "unknown_token", path: url.pathname, token: maskToken(presented.token) });
		throw new WeChatError(INVALID_SUITE_TOKEN, "invalid suite_acccess_token or provider_access_token (wx-token-broker: this broker did not issue this token, or it expired; fetch one from the broker's /cgi-bin/service/get_suite_token with your broker key)", 200, "wecom");
	}
	const suiteId = name === SUITE_NAME ? suiteIdOf(owner.appid) : undefined;
	const corpid = name === PROVIDER_NAME ? providerIdOf(owner.appid) : undefined;
	const app = suiteId !== undefined ? await findSuite(c.env, config, suiteId).then((found) => found && suiteAsProfile(found))
		: corpid !== undefined ? withoutSecret(providerAppOf(owner.appid, config)) : undefined;
	if (!app) throw refused("not_a_service_token", `this is not a ${name} of a suite or provider on this broker`, url.pathname);
	return { appid: owner.appid, app, index: presented.index, name };
}
