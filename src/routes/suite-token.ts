/**
 * GET /suite-token?suite_id=… → {"suite_access_token", "expires_in"} (DESIGN.md, "WeCom service providers"):
 * a WeCom suite's token for a service provider's own code (owner-token.ts), for keys allowed
 * `suite:<suite_id>` (or "*"). expires_in never runs past the deadline WeCom's first answer set, even when
 * WeCom hands the same token back with 7200 again (core/lifetime.ts, sameValueAgain).
 */
import type { Hono } from "hono";
import { readSuiteToken, type BrokerEnv } from "../access/reads";
import { findSuite } from "../registry/lookup";
import { mountOwnerToken } from "./owner-token";

export const SUITE_TOKEN_PATH = "/suite-token";

export function mountSuiteToken(app: Hono<BrokerEnv>): void {
	mountOwnerToken(app, {
		path: SUITE_TOKEN_PATH, param: "suite_id", describe: "SuiteID of the WeCom suite (第三方应用 or 代开发 template)", example: "ww",
		scope: "suite", field: "suite_access_token",
		howToAdd: (id) => `add it to WECOM_SUITES or PUT /admin/suites/${id}`,
		exists: (env, config, id) => findSuite(env, config, id),
		read: readSuiteToken,
	});
}
