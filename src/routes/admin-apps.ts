/**
 * The admin API for apps (DESIGN.md, "Apps and keys at runtime: the registry"):
 *   PUT    /admin/apps/{appid}   create or replace a registry app; its first token is fetched at once
 *   GET    /admin/apps           every app, both sources, in appid order, paged
 *   GET    /admin/apps/{appid}   one app
 *   DELETE /admin/apps/{appid}   a registry app, with everything its object holds
 * An app's secret goes to that app's own object, which seals it (authority/registered-app.ts); the catalog
 * (registry/registry.ts) and KV get everything but the secret, and no answer ever carries it.
 * An admin key scoped to some apps manages only those.
 */
import type { Context, Hono } from "hono";
import { requireAdmin, requireApp, inScope } from "../access/auth";
import { forget, remember, type BrokerEnv } from "../access/reads";
import { authority } from "../authority/stub";
import { APPID_PATTERN, ConfigError, type AppConfig, type AppProfile } from "../config/config";
import { parseAppEntry } from "../config/apps";
import { CREDENTIAL_TYPES } from "../core/credentials";
import { BrokerError } from "../core/errors";
import { expiresInS } from "../core/lifetime";
import { log } from "../core/log";
import type { Outcome } from "../core/outcome";
import { noteApp } from "../registry/lookup";
import { registry, type AppRow } from "../registry/registry";
import { decodeCursor, pageLimit, pageOf, readAdminBody } from "./admin-input";

/** GET /admin/apps pages: DESIGN.md's bound. */
const MAX_APPS_PAGE = 500;
const DEFAULT_APPS_PAGE = 100;

const WECHAT_FIELDS = ["kind", "secret", "mode", "daily_quota", "ticket_daily_quota"] as const;
const WECOM_FIELDS = ["kind", "corpid", "agentid", "secret", "daily_quota"] as const;
const APP_EXAMPLE = '{"secret": "<AppSecret>", "mode": "stable"} (WeCom: {"kind": "wecom", "corpid": "ww…", "agentid": "1000002", "secret": "…"})';

/** An app as the admin API shows it: never its secret. */
function publicApp(app: AppProfile, row?: Pick<AppRow, "created_at" | "updated_at">): Record<string, unknown> {
	return {
		appid: app.appid, source: app.source, kind: app.platform, mode: app.mode,
		...(app.corpid !== undefined && { corpid: app.corpid }),
		...(app.agentid !== undefined && { agentid: app.agentid }),
		daily_quota: app.dailyQuota,
		...(app.platform === "wechat" && { ticket_daily_quota: app.ticketDailyQuota }),
		...(row && { created_at: new Date(row.created_at).toISOString(), updated_at: new Date(row.updated_at).toISOString() }),
	};
}

/** The first token fetch's outcome, as the PUT answer reports it: never the token itself. */
export function tokenSummary(outcome: Outcome): Record<string, unknown> {
	if (outcome.ok) return { ok: true, expires_in: expiresInS(outcome.record, Date.now()) };
	const { code, message, wechatErrcode } = outcome.failure;
	return { ok: false, error: code, message, ...(wechatErrcode !== undefined && { wechat_errcode: wechatErrcode }) };
}

function appidParam(c: Context<BrokerEnv>): string {
	const appid = c.req.param("appid") ?? "";
	if (!APPID_PATTERN.test(appid)) throw new BrokerError("bad_request", "The appid in the path must be 1–64 letters, digits, _ or - (a WeChat AppID, or a WeCom entry's id).");
	return appid;
}

function fromSecretConflict(appid: string): BrokerError {
	return new BrokerError("conflict", `App ${appid} is configured in the WECHAT_APPS secret, which the admin API cannot change; edit it there (\`wrangler secret put WECHAT_APPS\`), or remove it there first to manage it here.`);
}

/** The body as an app entry named by the path, validated as WECHAT_APPS entries are; 400 with the fix otherwise. */
async function readAppBody(c: Context<BrokerEnv>, appid: string): Promise<AppConfig> {
	const body = await readAdminBody(c, [...new Set([...WECHAT_FIELDS, ...WECOM_FIELDS])], APP_EXAMPLE);
	const allowed: readonly string[] = body.kind === "wecom" ? WECOM_FIELDS : WECHAT_FIELDS;
	const misplaced = Object.keys(body).find((field) => !allowed.includes(field));
	if (misplaced !== undefined) {
		throw new BrokerError("bad_request", `${misplaced} is a field of ${body.kind === "wecom" ? "official accounts" : 'WeCom entries ("kind": "wecom")'}; a${body.kind === "wecom" ? " WeCom entry" : "n official account or mini program"} takes ${allowed.join(", ")}.`);
	}
	try {
		const entry = body.kind === "wecom" ? { ...body, id: appid } : { ...body, appid };
		return parseAppEntry(entry, "The body", "registry");
	} catch (error) {
		if (error instanceof ConfigError) throw new BrokerError("bad_request", error.message);
		throw error;
	}
}

export function mountAdminApps(app: Hono<BrokerEnv>): void {
	app.put("/admin/apps/:appid", async (c) => {
		const principal = c.get("principal");
		requireAdmin(principal);
		const appid = appidParam(c);
		const config = c.get("config");
		// The entry as it is now and as it will be must both be the admin's (a corp: scope admits by corpid).
		const existing = config.registry ? (await registry(c.env).getApp(appid))?.profile : undefined;
		requireApp(principal, existing ?? appid);
		if (config.apps.has(appid)) throw fromSecretConflict(appid);
		if (existing?.mode === "authorizer") {
			// Its refresh token comes from WeChat's authorisation, never from a person: a PUT would overwrite it.
			throw new BrokerError("conflict", `App ${appid} is an authorizer of component ${existing.componentAppid ?? "?"}: WeChat's authorisation registers and updates it; it cannot be PUT by hand. To re-authorise it, POST /open/${existing.componentAppid ?? "<component_appid>"}/auth-url.`);
		}
		const entry = await readAppBody(c, appid);
		requireApp(principal, entry);
		if (entry.corpid !== undefined) await requireWholeCorp(c, entry);
		if (Math.floor(entry.dailyQuota * config.quotaGuardShare) < 1) {
			throw new BrokerError("bad_request", `daily_quota ${entry.dailyQuota} × QUOTA_GUARD_SHARE ${config.quotaGuardShare} leaves no forced refresh at all; raise daily_quota so that the product is at least 1.`);
		}
		const { secret, ...profile } = entry;
		// The object seals the secret and records the app in the catalog (one admin change at a time, there).
		const result = await authority(c.env, appid).configure(profile, secret);
		if (!result.stored) throw new BrokerError("config_error", result.failure.message);
		const { created, row } = result;
		noteApp(appid, row.profile);
		// This isolate serves what the object holds now (a replaced secret may have replaced the token).
		for (const type of CREDENTIAL_TYPES) forget(appid, type);
		if (result.token.ok) remember(appid, "token", result.token.record);
		log("info", "admin_app_put", { appid, key: principal.name, created, token_ok: result.token.ok });
		return c.json({ app: publicApp(row.profile, row), token: tokenSummary(result.token) }, created ? 201 : 200);
	});

	app.get("/admin/apps/:appid", async (c) => {
		const principal = c.get("principal");
		requireAdmin(principal);
		const appid = appidParam(c);
		const fromSecret = c.get("config").apps.get(appid);
		const row = !fromSecret && c.get("config").registry ? await registry(c.env).getApp(appid) : null;
		// Checked against the entry itself (a corp: scope admits by corpid); an unknown one by its id alone.
		requireApp(principal, fromSecret ?? row?.profile ?? appid);
		if (fromSecret) return c.json({ app: publicApp(fromSecret) });
		if (!row) throw new BrokerError("not_found", `App ${appid} is not configured on this broker; PUT /admin/apps/${appid} adds it.`);
		return c.json({ app: publicApp(row.profile, row) });
	});

	app.get("/admin/apps", async (c) => {
		const principal = c.get("principal");
		requireAdmin(principal);
		const limit = pageLimit(c.req.query("limit"), DEFAULT_APPS_PAGE, MAX_APPS_PAGE);
		const after = decodeCursor(c.req.query("cursor"), APPID_PATTERN);
		const config = c.get("config");
		const fromSecret = [...config.apps.values()].filter((a) => (after === null || a.appid > after) && inScope(principal.apps, a)).map((a) => ({ profile: a as AppProfile, row: undefined }));
		// One page more than asked tells whether another page follows. A scoped admin sees the registry apps
		// its scope names; for "*", one indexed range of the catalog.
		const registered = !config.registry ? [] : principal.apps === "*"
			? (await registry(c.env).listApps(after, limit + 1)).map((row) => ({ profile: row.profile, row: row as AppRow | undefined }))
			: await scopedRegistryApps(c, principal.apps, after);
		// An appid in both sources is the secret's (WECHAT_APPS wins everywhere): listed once.
		const merged = [...fromSecret, ...registered.filter((a) => !config.apps.has(a.profile.appid))].sort((a, b) => (a.profile.appid < b.profile.appid ? -1 : 1));
		const page = pageOf(merged, (a) => a.profile.appid, limit);
		return c.json({ apps: page.items.map((a) => publicApp(a.profile, a.row)), next_cursor: page.next_cursor });
	});

	app.delete("/admin/apps/:appid", async (c) => {
		const principal = c.get("principal");
		requireAdmin(principal);
		const appid = appidParam(c);
		const config = c.get("config");
		const row = config.registry ? await registry(c.env).getApp(appid) : null;
		requireApp(principal, config.apps.get(appid) ?? row?.profile ?? appid);
		log("info", "admin_app_delete_requested", { appid, key: principal.name });
		const inSecret = config.apps.has(appid);
		if (inSecret && !row) throw fromSecretConflict(appid);
		// Wiped even when the catalog had no row: a half-finished earlier PUT may have configured the object.
		// An app also in WECHAT_APPS keeps its credentials: only the registry's copy (its sealed secret) goes.
		const { existed, kvPending } = await authority(c.env, appid).wipe(appid, { keepCredentials: inSecret });
		if (!inSecret) {
			noteApp(appid, null);
			for (const type of CREDENTIAL_TYPES) forget(appid, type);
		}
		if (!existed) throw new BrokerError("not_found", `App ${appid} is not in the registry; nothing was deleted.`);
		log("info", "admin_app_deleted", { appid, key: principal.name, still_in_wechat_apps: inSecret });
		return c.json({
			deleted: appid,
			...(inSecret && { note: "the app stays: it is also in WECHAT_APPS, which serves it" }),
			// KV refused some deletes (e.g. its one write a second per key): the Registry retries them every 2 s.
			...(kvPending > 0 && { kv_writes_pending: kvPending }),
		});
	});
}

/**
 * A scoped admin may add or move an entry into a corp only when every other entry of that corp is its own:
 * otherwise it could make the corp's gettoken ambiguous for its services, or change their ticket share.
 */
async function requireWholeCorp(c: Context<BrokerEnv>, entry: AppConfig): Promise<void> {
	const principal = c.get("principal");
	if (principal.apps === "*" || principal.apps.has(`corp:${entry.corpid}`)) return;
	const config = c.get("config");
	const others = [
		...[...config.apps.values()].filter((a) => a.corpid === entry.corpid),
		...(config.registry ? await registry(c.env).corpEntries(entry.corpid!) : []).map((appid) => ({ appid, corpid: entry.corpid })),
	].filter((a) => a.appid !== entry.appid);
	const foreign = others.find((other) => !inScope(principal.apps, other));
	if (foreign) {
		log("warn", "auth_refused", { reason: "corp_out_of_scope", key: principal.name, corpid: entry.corpid ?? null });
		throw new BrokerError("forbidden", `The key "${principal.name}" may not add an entry to corp ${entry.corpid}: the corp has entries outside the key's apps; ask for "corp:${entry.corpid}" in its apps.`);
	}
}

/** The registry apps a scoped admin's scope names (appids and corps), after `after`, in appid order. */
async function scopedRegistryApps(c: Context<BrokerEnv>, scope: ReadonlySet<string>, after: string | null): Promise<{ profile: AppProfile; row: AppRow | undefined }[]> {
	const store = registry(c.env);
	const ids = new Set<string>();
	for (const entry of scope) {
		if (entry.startsWith("corp:")) for (const id of await store.corpEntries(entry.slice("corp:".length))) ids.add(id);
		else ids.add(entry);
	}
	const rows: (AppRow | null)[] = await Promise.all([...ids].filter((id) => after === null || id > after).map(async (id) => (await store.getApp(id)) as AppRow | null));
	return rows.filter((row): row is AppRow => row !== null).map((row) => ({ profile: row.profile, row }));
}

