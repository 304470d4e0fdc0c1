/**
 * GET /component-token?component_appid=… → {"component_access_token", "expires_in"} (DESIGN.md, "The open
 * platform"): the component's token for a vendor's own code (owner-token.ts), for keys allowed
 * `component:<component_appid>` (or "*"). expires_in ends at the broker's planned refresh: no overlap after a
 * refresh is assumed (core/lifetime.ts, no_overlap).
 */
import type { Hono } from "hono";
import { readComponentToken, type BrokerEnv } from "../access/reads";
import { findComponent } from "../registry/lookup";
import { mountOwnerToken } from "./owner-token";

export const COMPONENT_TOKEN_PATH = "/component-token";

export function mountComponentToken(app: Hono<BrokerEnv>): void {
	mountOwnerToken(app, {
		path: COMPONENT_TOKEN_PATH, param: "component_appid", describe: "AppID of the open-platform component", example: "wx",
		scope: "component", field: "component_access_token",
		howToAdd: (id) => `add it to WECHAT_COMPONENTS or PUT /admin/components/${id}`,
		exists: (env, config, id) => findComponent(env, config, id),
		read: readComponentToken,
	});
}
