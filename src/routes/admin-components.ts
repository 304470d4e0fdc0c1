/**
 * The admin API for open-platform components (DESIGN.md, "The open platform"):
 *   PUT /admin/components/{component_appid}  {"secret", "token", "encoding_aes_key", "daily_quota"?}
 *   GET /admin/components/{component_appid}  the component and its ticket's age; never a secret or the ticket
 * The secret, message token and EncodingAESKey go to the component's own object, which seals them
 * (authority/component.ts); the catalog and KV get only the profile. An admin key scoped to
 * `component:<component_appid>` manages that component.
 */
import type { Context, Hono } from "hono";
import { requireAdmin, requireApp } from "../access/auth";
import type { BrokerEnv } from "../access/reads";
import { componentAuthority } from "../authority/stub";
import { APPID_PATTERN, ConfigError, type ComponentProfile } from "../config/config";
import { COMPONENT_EXAMPLE, parseComponentEntry } from "../config/components";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import { noteComponent } from "../registry/lookup";
import { registry, type ComponentRow } from "../registry/registry";
import { readAdminBody } from "./admin-input";

const BODY_FIELDS = ["secret", "token", "encoding_aes_key", "daily_quota"] as const;

function componentParam(c: Context<BrokerEnv>): string {
	const id = c.req.param("component_appid") ?? "";
	if (!APPID_PATTERN.test(id)) throw new BrokerError("bad_request", "The component_appid in the path must be 1-64 letters, digits, _ or -.");
	return id;
}

function publicComponent(profile: ComponentProfile, row: Pick<ComponentRow, "created_at" | "updated_at"> | null, ticket: { createTime: number; receivedAt: number } | null): Record<string, unknown> {
	return {
		component_appid: profile.componentAppid, source: profile.source, daily_quota: profile.dailyQuota,
		...(row && { created_at: new Date(row.created_at).toISOString(), updated_at: new Date(row.updated_at).toISOString() }),
		event_url_path: `/open/${profile.componentAppid}/events`,
		// When WeChat last pushed a ticket that was kept: the first thing to check when tokens fail.
		verify_ticket: ticket ? { create_time: new Date(ticket.createTime * 1_000).toISOString(), received_at: new Date(ticket.receivedAt).toISOString() } : null,
	};
}

export function mountAdminComponents(app: Hono<BrokerEnv>): void {
	app.put("/admin/components/:component_appid", async (c) => {
		const principal = c.get("principal");
		requireAdmin(principal);
		const id = componentParam(c);
		requireApp(principal, `component:${id}`);
		const config = c.get("config");
		if (config.components.has(id)) {
			throw new BrokerError("conflict", `Component ${id} is configured in the WECHAT_COMPONENTS secret, which the admin API cannot change; edit it there, or remove it there first to manage it here.`);
		}
		if (config.apps.has(id)) throw new BrokerError("conflict", `${id} is an app of WECHAT_APPS; a component's appid is not an account's.`);
		const body = await readAdminBody(c, BODY_FIELDS, COMPONENT_EXAMPLE.replace(/"component_appid":"wx…",/, ""));
		let entry;
		try {
			entry = parseComponentEntry({ ...body, component_appid: id }, "The body", "registry");
		} catch (error) {
			if (error instanceof ConfigError) throw new BrokerError("bad_request", error.message);
			throw error;
		}
		const { secret, token, encodingAesKey, ...profile } = entry;
		const stub = componentAuthority(c.env, id);
		const result = await stub.configureComponent(profile, { secret, token, encodingAesKey });
		if (!result.stored) throw new BrokerError("config_error", result.failure.message);
		const { created, row } = await registry(c.env).putComponent(profile, result.kid);
		noteComponent(id, profile);
		log("info", "admin_component_put", { component_appid: id, key: principal.name, created });
		return c.json({ component: publicComponent(profile, row, await stub.componentTicket(id)) }, created ? 201 : 200);
	});

	app.get("/admin/components/:component_appid", async (c) => {
		const principal = c.get("principal");
		requireAdmin(principal);
		const id = componentParam(c);
		requireApp(principal, `component:${id}`);
		const config = c.get("config");
		const fromSecret = config.components.get(id);
		const row = fromSecret || !config.registry ? null : await registry(c.env).getComponent(id);
		const profile: ComponentProfile | undefined = fromSecret ? { componentAppid: id, source: "secret", dailyQuota: fromSecret.dailyQuota } : row?.profile;
		if (!profile) throw new BrokerError("not_found", `Component ${id} is not configured on this broker; PUT /admin/components/${id} adds it.`);
		return c.json({ component: publicComponent(profile, row, await componentAuthority(c.env, id).componentTicket(id)) });
	});
}
