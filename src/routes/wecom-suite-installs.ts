/**
 * The install flow of a WeCom suite (DESIGN.md, "WeCom service providers"), for admin keys allowed the suite
 * (`suite:<id>`):
 *   POST /wecom-suite/{suite_id}/install-url  {"redirect_uri", "state"?, "auth_type"? 0|1}
 *        → {"url", "expires_in"}: WeCom's install page with a fresh pre_auth_code (1200 s); auth_type 1 makes
 *        it a test install (set_session_info)
 *   POST /wecom-suite/{suite_id}/installs     {"auth_code"} → {"corpid", "appid", "expires_in"}: the code the
 *        browser brought back to the vendor's redirect page, exchanged once (the same code pushed as
 *        `create_auth` is not exchanged again: authority/code-ledger.ts)
 *   GET  /wecom-suite/{suite_id}/installs?limit=&cursor=  each company, its app and state (never a code)
 *   POST /wecom-suite/{suite_id}/installs/sync  companies whose objects lost their permanent code get it back
 *        from the suite's sealed copy (authority/suite-installs.ts says what is recoverable)
 */
import type { Context, Hono } from "hono";
import type { BrokerEnv } from "../access/reads";
import { suiteAuthority } from "../authority/stub";
import { APPID_PATTERN } from "../config/config";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import type { ExchangeFailure } from "../authority/code-ledger";
import { findSuite, noteApp } from "../registry/lookup";
import { registry } from "../registry/registry";
import { decodeCursor, encodeCursor, ownerParam, pageLimit, readAdminBody } from "./admin-input";
import { redirectUri } from "./open-authorizations";

/** WeCom's install page (OPEN-PLATFORM.md §10). */
const INSTALL_PAGE = "https://open.work.weixin.qq.com/3rdapp/install";
const MAX_STATE_CHARS = 128;
const MAX_CODE_CHARS = 1024;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 500;
const INSTALL_URL_EXAMPLE = '{"redirect_uri": "https://vendor.example/installed", "state": "…", "auth_type": 0}';

function iso(ms: number): string {
	return new Date(ms).toISOString();
}

function refused(failure: ExchangeFailure): BrokerError {
	return new BrokerError(failure.code, failure.message, failure.wechatErrcode !== undefined ? { wechatErrcode: failure.wechatErrcode } : {});
}

function suiteParam(c: Context<BrokerEnv>): Promise<string> {
	return ownerParam(c, "suite_id", "suite", (id) => findSuite(c.env, c.get("config"), id),
		(id) => `Suite ${id} is not configured on this broker; add it to WECOM_SUITES or PUT /admin/suites/${id}.`);
}

export function mountWeComSuiteInstalls(app: Hono<BrokerEnv>): void {
	app.post("/wecom-suite/:suite_id/install-url", async (c) => {
		const id = await suiteParam(c);
		const body = await readAdminBody(c, ["redirect_uri", "state", "auth_type"], INSTALL_URL_EXAMPLE);
		const redirect = redirectUri(body.redirect_uri, { platform: "WeCom", example: INSTALL_URL_EXAMPLE, domain: "the suite's 可信域名 / redirect domain" });
		const { state, auth_type: authType } = body;
		if (state !== undefined && (typeof state !== "string" || state.length > MAX_STATE_CHARS || !/^[A-Za-z0-9_-]*$/.test(state))) {
			throw new BrokerError("bad_request", `state must be at most ${MAX_STATE_CHARS} letters, digits, _ or - (WeCom hands it back on the redirect).`);
		}
		if (authType !== undefined && authType !== 0 && authType !== 1) throw new BrokerError("bad_request", "auth_type must be 0 (a normal install) or 1 (a test install, for the suite's test companies).");
		const code = await suiteAuthority(c.env, id).suiteInstallCode(id, authType as 0 | 1 | undefined);
		if (!code.ok) throw refused(code.failure);
		const query = new URLSearchParams({ suite_id: id, pre_auth_code: code.code, redirect_uri: redirect, state: (state as string | undefined) ?? "" });
		log("info", "install_url_made", { suite_id: id, key: c.get("principal")?.name ?? null, auth_type: (authType as number | undefined) ?? null });
		return c.json({ url: `${INSTALL_PAGE}?${query.toString()}`, expires_in: code.expiresIn });
	});

	app.post("/wecom-suite/:suite_id/installs", async (c) => {
		const id = await suiteParam(c);
		const body = await readAdminBody(c, ["auth_code"], '{"auth_code": "<the auth_code your redirect page received>"}');
		const code = body.auth_code;
		if (typeof code !== "string" || code === "" || code.length > MAX_CODE_CHARS) {
			throw new BrokerError("bad_request", "auth_code is required: the auth_code query parameter WeCom appended to your redirect_uri.");
		}
		const outcome = await suiteAuthority(c.env, id).exchangeInstall(id, code);
		if (!outcome.ok) throw refused(outcome.failure);
		return c.json({ corpid: outcome.corpid, appid: outcome.appid, expires_in: outcome.expiresIn });
	});

	app.get("/wecom-suite/:suite_id/installs", async (c) => {
		const id = await suiteParam(c);
		const limit = pageLimit(c.req.query("limit"), DEFAULT_PAGE, MAX_PAGE);
		const after = decodeCursor(c.req.query("cursor"), APPID_PATTERN);
		const records = await suiteAuthority(c.env, id).listInstalls(id, after, limit + 1);
		const page = records.slice(0, limit);
		const profiles = await registry(c.env).profilesOf(page.map((r) => r.appid));
		return c.json({
			installs: page.map((r) => {
				const profile = profiles[r.appid];
				const state = r.uninstalledAt !== undefined ? "uninstalled" : profile?.reauthoriseSince !== undefined ? "needs_reinstall" : profile ? "serving" : "not_serving";
				return {
					corpid: r.corpid, appid: r.appid, corp_name: r.corpName, state, installed_at: iso(r.installedAt), updated_at: iso(r.updatedAt),
					...(r.uninstalledAt !== undefined && { uninstalled_at: iso(r.uninstalledAt) }),
					...(profile?.reauthoriseSince !== undefined && { needs_reinstall_since: iso(profile.reauthoriseSince) }),
				};
			}),
			next_cursor: records.length > limit ? encodeCursor(page.at(-1)!.corpid) : null,
		});
	});

	app.post("/wecom-suite/:suite_id/installs/sync", async (c) => {
		const id = await suiteParam(c);
		const outcome = await suiteAuthority(c.env, id).syncInstalls(id);
		if (!outcome.ok) throw refused(outcome.failure);
		const { ok: _ok, profiles, ...counts } = outcome;
		// This isolate serves the recovered apps at once (one it had noted as deleted, too); others within their memory bound.
		for (const profile of profiles) noteApp(profile.appid, profile);
		log("info", "installs_sync_requested", { suite_id: id, key: c.get("principal")?.name ?? null });
		return c.json(counts);
	});
}
