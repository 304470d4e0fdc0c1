/**
 * The token routes of credential owners that are not apps (DESIGN.md, "The open platform", "WeCom service
 * providers"): GET /component-token?component_appid=… and GET /suite-token?suite_id=…, each answering
 * {"<field>", "expires_in"} in the platform's own shape, read like /token (isolate memory, the KV edge copy,
 * the owner's object), for keys allowed `<scope>:<id>` (or "*"). The scope is checked before the owner is
 * looked up, so a key without it learns nothing about which owners exist (403 before 404).
 */
import type { Hono } from "hono";
import { apiKeyAuth, inScope } from "../access/auth";
import type { BrokerEnv } from "../access/reads";
import type { BrokerConfig } from "../config/config";
import { APPID_PATTERN } from "../config/config";
import { BrokerError } from "../core/errors";
import { expiresInS, type CredentialRecord } from "../core/lifetime";
import { log } from "../core/log";
import type { AppEnv } from "../env";
import { rememberIssued } from "../gateway/ownership";

export interface OwnerTokenRoute {
	readonly path: string;
	/** The query parameter naming the owner, and how the error messages describe it. */
	readonly param: string;
	readonly describe: string;
	/** An example value's beginning, for the 400 (`wx`, `ww`). */
	readonly example: string;
	/** The key scope prefix (`component`, `suite`), which is also the owner's object name prefix. */
	readonly scope: string;
	/** The answer's token field (WeChat's or WeCom's own name for it). */
	readonly field: string;
	/** Where an operator adds one, for the 404. */
	readonly howToAdd: (id: string) => string;
	exists(env: AppEnv, config: BrokerConfig, id: string): Promise<unknown>;
	read(env: AppEnv, id: string): Promise<CredentialRecord>;
}

export function mountOwnerToken(app: Hono<BrokerEnv>, route: OwnerTokenRoute): void {
	app.use(route.path, apiKeyAuth());
	app.get(route.path, async (c) => {
		const id = c.req.query(route.param);
		if (!id || !APPID_PATTERN.test(id)) {
			throw new BrokerError("bad_request", `${route.param} is required: the ${route.describe} (1-64 letters, digits, _ or -), e.g. ?${route.param}=${route.example}….`);
		}
		const principal = c.get("principal");
		const scope = `${route.scope}:${id}`;
		if (!inScope(principal.apps, scope)) {
			log("warn", "auth_refused", { reason: `${route.scope}_out_of_scope`, key: principal.name, [route.param]: id });
			throw new BrokerError("forbidden", `The key "${principal.name}" is not allowed to use ${route.scope} ${id}; ask the operator to add "${scope}" to the key's apps (${principal.source === "secret" ? "in API_KEYS" : `PUT /admin/keys/${principal.name}`}).`);
		}
		if (!(await route.exists(c.env, c.get("config"), id))) {
			throw new BrokerError("not_found", `${route.scope[0]!.toUpperCase()}${route.scope.slice(1)} ${id} is not configured on this broker; ${route.howToAdd(id)}.`);
		}
		const token = await route.read(c.env, id);
		// The gateway recognises it in this isolate at once, even before KV holds its issued record.
		rememberIssued(token.value, scope, token.expiresAt);
		return c.json({ [route.field]: token.value, expires_in: expiresInS(token, Date.now()) });
	});
}
