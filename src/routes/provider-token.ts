/**
 * GET /provider-token?corpid=… → {"provider_access_token", "expires_in"} (DESIGN.md, "WeCom service
 * providers"): a service provider's token (get_provider_token, for login info and corpid conversion) for its
 * own code (owner-token.ts), for keys allowed `provider:<corpid>` (or "*"). The provider is one of
 * WECOM_SUITES' provider_corpid with a provider_secret; its token lives in its own object, provider:<corpid>.
 */
import type { Hono } from "hono";
import { readProviderToken, type BrokerEnv } from "../access/reads";
import { providerAppOf, providerObjectName } from "../authority/suite-token";
import { mountOwnerToken } from "./owner-token";

export const PROVIDER_TOKEN_PATH = "/provider-token";

export function mountProviderToken(app: Hono<BrokerEnv>): void {
	mountOwnerToken(app, {
		path: PROVIDER_TOKEN_PATH, param: "corpid", describe: "CorpID of the WeCom service provider", example: "ww",
		scope: "provider", field: "provider_access_token",
		howToAdd: (id) => `give a suite of WECOM_SUITES its provider_corpid ${id} and provider_secret`,
		exists: async (_env, config, id) => providerAppOf(providerObjectName(id), config),
		read: readProviderToken,
	});
}
