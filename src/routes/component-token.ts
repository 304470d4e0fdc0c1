/**
 * GET /component-token?component_appid=… → {"component_access_token", "expires_in"} (DESIGN.md, "The open
 * platform"): the component's token for a vendor's own code, read like /token (isolate memory, the KV edge
 * copy, the component's object), for keys allowed `component:<component_appid>` (or "*"). expires_in ends
 * at the broker's planned refresh: no overlap after a refresh is assumed (core/lifetime.ts, no_overlap).
 */
import type { Hono } from "hono";
import { apiKeyAuth, inScope } from "../access/auth";
import { readComponentToken, type BrokerEnv } from "../access/reads";
import { APPID_PATTERN } from "../config/config";
import { componentObjectName } from "../core/storage-keys";
import { BrokerError } from "../core/errors";
import { expiresInS } from "../core/lifetime";
import { log } from "../core/log";
import { rememberIssued } from "../gateway/ownership";
import { findComponent } from "../registry/lookup";

export const COMPONENT_TOKEN_PATH = "/component-token";

export function mountComponentToken(app: Hono<BrokerEnv>): void {
	app.use(COMPONENT_TOKEN_PATH, apiKeyAuth());
	app.get(COMPONENT_TOKEN_PATH, async (c) => {
		const id = c.req.query("component_appid");
		if (!id || !APPID_PATTERN.test(id)) {
			throw new BrokerError("bad_request", "component_appid is required: the AppID of the open-platform component (1-64 letters, digits, _ or -), e.g. ?component_appid=wx….");
		}
		const principal = c.get("principal");
		// The scope first: a key without it learns nothing about which components exist.
		if (!inScope(principal.apps, `component:${id}`)) {
			log("warn", "auth_refused", { reason: "component_out_of_scope", key: principal.name, component_appid: id });
			throw new BrokerError("forbidden", `The key "${principal.name}" is not allowed to use component ${id}; ask the operator to add "component:${id}" to the key's apps (${principal.source === "secret" ? "in API_KEYS" : `PUT /admin/keys/${principal.name}`}).`);
		}
		if (!(await findComponent(c.env, c.get("config"), id))) {
			throw new BrokerError("not_found", `Component ${id} is not configured on this broker; add it to WECHAT_COMPONENTS or PUT /admin/components/${id}.`);
		}
		const token = await readComponentToken(c.env, id);
		// The gateway recognises it in this isolate at once, even before KV holds its issued record.
		rememberIssued(token.value, componentObjectName(id), token.expiresAt);
		return c.json({ component_access_token: token.value, expires_in: expiresInS(token, Date.now()) });
	});
}
