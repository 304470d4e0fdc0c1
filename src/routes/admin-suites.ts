/**
 * The admin API for WeCom suites (DESIGN.md, "WeCom service providers"):
 *   PUT /admin/suites/{suite_id}  {"secret", "token", "encoding_aes_key", "provider_corpid"?, "provider_secret"?}
 *   GET /admin/suites/{suite_id}  the suite and its ticket's age; never a secret or the ticket
 * The secrets go to the suite's own object, which seals them (authority/suite.ts); the catalog and KV get only
 * the profile. An admin key scoped to `suite:<suite_id>` (or to every app) manages that suite.
 */
import type { Context, Hono } from "hono";
import { requireAdmin, requireApp } from "../access/auth";
import type { BrokerEnv } from "../access/reads";
import { authority, suiteAuthority } from "../authority/stub";
import type { SuiteState } from "../authority/suite";
import { providerObjectName } from "../authority/suite-token";
import { APPID_PATTERN, ConfigError, type SuiteProfile } from "../config/config";
import { parseSuiteEntry, SUITE_EXAMPLE } from "../config/suites";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import { noteSuite } from "../registry/lookup";
import { registry, type SuiteRow } from "../registry/registry";
import { tokenSummary } from "./admin-apps";
import { readAdminBody } from "./admin-input";

const BODY_FIELDS = ["secret", "token", "encoding_aes_key", "provider_corpid", "provider_secret"] as const;

function suiteParam(c: Context<BrokerEnv>): string {
	const id = c.req.param("suite_id") ?? "";
	if (!APPID_PATTERN.test(id)) throw new BrokerError("bad_request", "The suite_id in the path must be 1-64 letters, digits, _ or -.");
	return id;
}

function publicSuite(profile: SuiteProfile, row: Pick<SuiteRow, "created_at" | "updated_at"> | null, { ticket, providerSecret }: SuiteState): Record<string, unknown> {
	return {
		suite_id: profile.suiteId, source: profile.source, provider_corpid: profile.providerCorpid ?? null,
		// Whether one is held, never the secret: get_provider_token needs it.
		provider_secret: providerSecret,
		...(row && { created_at: new Date(row.created_at).toISOString(), updated_at: new Date(row.updated_at).toISOString() }),
		callback_url_path: `/wecom-suite/${profile.suiteId}/events`,
		// When WeCom last pushed a ticket that was kept: the first thing to check when the suite token fails.
		suite_ticket: ticket ? { time_stamp: new Date(ticket.timeStamp * 1_000).toISOString(), received_at: new Date(ticket.receivedAt).toISOString() } : null,
	};
}

export function mountAdminSuites(app: Hono<BrokerEnv>): void {
	app.put("/admin/suites/:suite_id", async (c) => {
		const principal = c.get("principal");
		requireAdmin(principal);
		const id = suiteParam(c);
		requireApp(principal, `suite:${id}`);
		if (c.get("config").suites.has(id)) {
			throw new BrokerError("conflict", `Suite ${id} is configured in the WECOM_SUITES secret, which the admin API cannot change; edit it there, or remove it there first to manage it here.`);
		}
		const body = await readAdminBody(c, BODY_FIELDS, SUITE_EXAMPLE.replace(/"suite_id":"ww…",/, ""));
		let entry;
		try {
			entry = parseSuiteEntry({ ...body, suite_id: id }, "The body", "registry");
		} catch (error) {
			if (error instanceof ConfigError) throw new BrokerError("bad_request", error.message);
			throw error;
		}
		const { secret, token, encodingAesKey, providerSecret, ...profile } = entry;
		const stub = suiteAuthority(c.env, id);
		const result = await stub.configureSuite(profile, { secret, token, encodingAesKey, ...(providerSecret !== undefined && { providerSecret }) });
		if (!result.stored) throw new BrokerError("config_error", result.failure.message);
		const { created, row } = await registry(c.env).putSuite(profile, result.kid);
		noteSuite(id, profile);
		// The provider's token lives in the provider's own object (provider:<corpid>, shared by its suites):
		// the secret is sealed there too, and its first token fetched now, so a wrong one is reported here.
		const providerToken = providerSecret !== undefined && profile.providerCorpid !== undefined
			? await authority(c.env, providerObjectName(profile.providerCorpid)).configureProvider(profile.providerCorpid, providerSecret)
			: null;
		log("info", "admin_suite_put", { suite_id: id, key: principal.name, created, provider_token_ok: providerToken?.ok ?? null });
		return c.json({
			suite: publicSuite(profile, row, await stub.suiteState(id)),
			...(providerToken && { provider_token: tokenSummary(providerToken) }),
		}, created ? 201 : 200);
	});

	app.get("/admin/suites/:suite_id", async (c) => {
		const principal = c.get("principal");
		requireAdmin(principal);
		const id = suiteParam(c);
		requireApp(principal, `suite:${id}`);
		const config = c.get("config");
		const fromSecret = config.suites.get(id);
		const row = fromSecret || !config.registry ? null : await registry(c.env).getSuite(id);
		const profile: SuiteProfile | undefined = fromSecret
			? { suiteId: id, source: "secret", ...(fromSecret.providerCorpid !== undefined && { providerCorpid: fromSecret.providerCorpid }) }
			: row?.profile;
		if (!profile) throw new BrokerError("not_found", `Suite ${id} is not configured on this broker; PUT /admin/suites/${id} adds it.`);
		return c.json({ suite: publicSuite(profile, row, await suiteAuthority(c.env, id).suiteState(id)) });
	});
}
