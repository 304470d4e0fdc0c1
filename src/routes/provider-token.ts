/**
 * GET /provider-token?corpid=… → {"provider_access_token", "expires_in"} (DESIGN.md, "WeCom service
 * providers"): a service provider's token (get_provider_token, for login info and corpid conversion) for its
 * own code (owner-token.ts), for keys allowed `provider:<corpid>` (or "*"). The provider is a suite's
 * provider_corpid with a provider_secret, in WECOM_SUITES or brought by PUT /admin/suites; its token lives in
 * its own object, provider:<corpid>.
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
		howToAdd: (id) => `give a suite its provider_corpid ${id} and provider_secret, in WECOM_SUITES or with PUT /admin/suites/<suite_id>`,
		// A registry suite's provider is known to its own object only, which answers not_found for any other
		// (with how to add one): with the registry on, the read asks it (memory, KV, then the object).
		exists: async (_env, config, id) => providerAppOf(providerObjectName(id), config) ?? (config.registry ? true : undefined),
		read: readProviderToken,
	});
}
