/**
 * The HTTP contract (DESIGN.md): routes, their auth, and one error shape for everything that goes wrong.
 */
import type { Context, MiddlewareHandler } from "hono";
// hono/tiny: the same Hono with its PatternRouter, which is a fraction of the default SmartRouter's code;
// a dozen routes do not need a compiled RegExpRouter.
import { Hono } from "hono/tiny";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { ipRestriction } from "hono/ip-restriction";
import { apiKeyAuth, findKey, requireAdmin, requireApp } from "../access/auth";
import { authority } from "../authority/stub";
import { ConfigError, loadConfig, type BrokerConfig } from "../config/config";
import { BrokerError } from "../core/errors";
import { rememberIssued, replacedHere } from "../gateway/ownership";
import { FORWARDED_PREFIXES, isGatewayPath, mountGateway } from "../gateway/routes";
import { take as takeGatewayCounts } from "../gateway/usage-counter";
import { asWeChatError, wechatErrorResponse } from "../gateway/wechat-errors";
import { checkApps, type AppHealth } from "../ops/health-check";
import { HEALTH_DIRECT_MAX_APPS, indexHealth, statusPage } from "../ops/status-page";
import { findApp } from "../registry/lookup";
import { mountTicketRoutes } from "./tickets";
import { expiresInS, type CredentialRecord } from "../core/lifetime";
import { log } from "../core/log";
import { forceRefreshHere, forget, readCredential, readJsonObject, remember, resolveApp, unwrap, type BrokerEnv } from "../access/reads";
import { MAX_TOKEN_CHARS } from "../wechat/client";
import { ADMIN_BODY_BYTES } from "./admin-input";
import { mountAdminApps } from "./admin-apps";
import { mountAdminKeys } from "./admin-keys";
import { mountAdminRegistry } from "./admin-registry";
import { ROUTES, STATIC_FILES } from "./route-table";
import { mountAdminComponents } from "./admin-components";
import { mountAdminSuites } from "./admin-suites";
import { mountOpenEvents } from "./open-events";
import { mountOpenAuthorizations } from "./open-authorizations";
import { mountWeComSuiteEvents } from "./wecom-suite-events";
import { mountWeComSuiteInstalls } from "./wecom-suite-installs";
import { mountComponentToken } from "./component-token";
import { mountSuiteToken } from "./suite-token";
import { mountProviderToken } from "./provider-token";


/** An invalidation report is an appid and a token (≤ 512 chars): 4 KiB is generous. */
export const MAX_BODY_BYTES = 4 * 1024;

export const app = new Hono<BrokerEnv>();


app.use(async (c, next) => {
	await next();
	// Tokens must never sit in a shared or browser cache.
	c.res.headers.set("Cache-Control", "no-store");
	// Nothing the Worker answers is a script or a style: the dashboard's policy admits its own files by 'self'.
	c.res.headers.set("X-Content-Type-Options", "nosniff");
});

app.get("/healthz", (c) => c.json({ ok: true }));

// The dashboard and the OpenAPI document are files in public/, which Cloudflare serves before the Worker runs;
// a GET reaches this only where the Worker runs without its static files (e.g. the bundle alone in Miniflare).
for (const [path, file] of Object.entries(STATIC_FILES)) {
	app.get(path, () => {
		throw new BrokerError("not_found", `${path} is a static file (${file}); run the broker with wrangler.toml's [assets], as \`wrangler deploy\` and \`npm start\` do.`);
	});
}

app.use(async (c, next) => {
	c.set("config", loadConfig(c.env));
	await next();
});

// WeChat's pushes to a component's event URL, and WeCom's callbacks to a suite's instruction URL: signed, not
// keyed, and from WeChat's and WeCom's addresses, so ahead of ALLOWED_IPS (which admits the broker's clients)
// and with their own body limit.
mountOpenEvents(app);
mountWeComSuiteEvents(app);

/**
 * ALLOWED_IPS, checked against CF-Connecting-IP: the address Cloudflare saw, which a client cannot set.
 * X-Forwarded-For is whatever the client wrote, so it is never consulted.
 */
const ipGuards = new WeakMap<BrokerConfig, MiddlewareHandler>();
app.use(async (c, next) => {
	const config = c.get("config");
	if (config.allowedIps.length === 0) return next();
	const address = c.req.header("cf-connecting-ip");
	if (!address) throw ipRefused(address);
	let guard = ipGuards.get(config);
	if (!guard) {
		guard = ipRestriction((ctx) => ctx.req.header("cf-connecting-ip") ?? "", { allowList: [...config.allowedIps] }, (remote) => {
			throw ipRefused(remote.addr);
		});
		ipGuards.set(config, guard);
	}
	try {
		return await guard(c, next);
	} catch (error) {
		// Hono answers an unparsable address with its own plain-text 403; keep the contract's JSON.
		if (error instanceof HTTPException && error.status === 403) throw ipRefused(address);
		throw error;
	}
});

function ipRefused(address: string | undefined): BrokerError {
	log("warn", "auth_refused", { reason: "ip_not_allowed", ip: address ?? null });
	return new BrokerError("forbidden", "This client's IP address is not in the broker's ALLOWED_IPS; ask its operator to add it.");
}

// The gateway (WeChat's own paths, for SDKs) sits behind the IP allowlist and ahead of the body limit:
// a media upload is far larger than anything the broker's own routes accept.
mountGateway(app);

// The admin API (registry): its own, larger body limit, ahead of the broker's 4 KiB one.
app.use("/admin/*", bodyLimit({
	maxSize: ADMIN_BODY_BYTES,
	onError: () => {
		throw new BrokerError("payload_too_large", `The request body is larger than ${ADMIN_BODY_BYTES} bytes; an app entry or a key is far smaller.`);
	},
}), apiKeyAuth());
mountAdminApps(app);
mountAdminKeys(app);
mountAdminRegistry(app);
mountAdminComponents(app);
mountAdminSuites(app);

/** What each route with a body expects, for the 413 that says what to send instead. */
const BODY_SHAPES: Readonly<Record<string, string>> = { "/jssdk/config": '{"appid", "url"}' };

app.use(bodyLimit({
	maxSize: MAX_BODY_BYTES,
	onError: (c) => {
		const shape = BODY_SHAPES[c.req.path] ?? '{"appid", "access_token"}';
		throw new BrokerError("payload_too_large", `The request body is larger than ${MAX_BODY_BYTES} bytes; send only ${shape}.`);
	},
}));

for (const [path, methods] of Object.entries(ROUTES)) {
	app.on(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], path, async (c, next) => {
		if (methods.includes(c.req.method) || (c.req.method === "HEAD" && methods.includes("GET"))) return next();
		throw new BrokerError("method_not_allowed", `${path} accepts ${methods.join(", ")}, not ${c.req.method}.`, { headers: { Allow: methods.join(", ") } });
	});
}

// "/token/*" matches "/token" itself too: one registration, one key check per request.
app.use("/token/*", apiKeyAuth());
app.use("/ticket/*", apiKeyAuth());
app.use("/jssdk/*", apiKeyAuth());
app.use("/status", apiKeyAuth());
app.use("/health", apiKeyAuth());
app.use("/open/:component_appid/auth-url", apiKeyAuth());
app.use("/open/:component_appid/authorizations", apiKeyAuth());
app.use("/open/:component_appid/authorizers", apiKeyAuth());
app.use("/open/:component_appid/authorizers/sync", apiKeyAuth());
app.use("/wecom-suite/:suite_id/install-url", apiKeyAuth());
app.use("/wecom-suite/:suite_id/installs", apiKeyAuth());
app.use("/wecom-suite/:suite_id/installs/sync", apiKeyAuth());
mountComponentToken(app);
mountSuiteToken(app);
mountProviderToken(app);
mountOpenAuthorizations(app);
mountWeComSuiteInstalls(app);

app.get("/token", async (c) => {
	const app = await resolveApp(c, c.req.query("appid"));
	requireApp(c.get("principal"), app);
	const token = await readCredential(c.env, app.appid, "token");
	// The gateway recognises it in this isolate at once, even before KV holds its issued record.
	rememberIssued(token.value, app.appid, token.expiresAt);
	return tokenResponse(c, token);
});

app.post("/token/invalidate", async (c) => {
	const { appid: rawAppid, access_token: reported } = await readJsonObject(c);
	if (rawAppid !== undefined && typeof rawAppid !== "string") throw new BrokerError("bad_request", "appid must be a string.");
	const app = await resolveApp(c, rawAppid);
	const { appid } = app;
	// Scope first: an app outside the key's scope gets the same 403 whatever else is wrong with the request.
	requireApp(c.get("principal"), app);
	if (typeof reported !== "string" || reported.length === 0 || reported.length > MAX_TOKEN_CHARS) {
		throw new BrokerError("bad_request", `access_token must be the token WeChat refused (a string of 1–${MAX_TOKEN_CHARS} characters).`);
	}
	// Even a refused report (429) is a hint the remembered token may be dead: the next read asks KV.
	forget(appid, "token");
	const token = remember(appid, "token", unwrap(await authority(c.env, appid).invalidate(appid, reported, c.get("principal").name)));
	replacedHere(appid, token.value, token.expiresAt);
	return tokenResponse(c, token);
});

app.post("/token/refresh", async (c) => {
	const app = await resolveApp(c, c.req.query("appid"));
	requireApp(c.get("principal"), app);
	requireAdmin(c.get("principal"));
	const token = unwrap(await forceRefreshHere(c.env, app.appid, "token"));
	// The token it replaced is forced out: this isolate's gateway stops honouring it now (ownership.ts).
	replacedHere(app.appid, token.value, token.expiresAt);
	return tokenResponse(c, token);
});

mountTicketRoutes(app);

/**
 * Admin: the summary over the key's apps and one page of them (ops/status-page.ts), `?limit=` (≤ 100) and
 * `?cursor=` (the previous page's next_cursor). An admin key scoped to some apps sees only those.
 */
app.get("/status", async (c) => {
	const principal = c.get("principal");
	requireAdmin(principal);
	return c.json(await statusPage(c.env, c.get("config"), principal.apps, { limit: c.req.query("limit"), cursor: c.req.query("cursor") }, takeGatewayCounts));
});

/**
 * For monitors: any key, its own apps only. 200 when all can serve a token with no open incident, else 503.
 * A key scoped to a few apps by appid asks their objects; a key for every app, for many, or for a component or
 * corp (whose members only the index knows) reads the schedule index, and `apps` then names only the
 * unhealthy ones (ops/status-page.ts).
 */
app.get("/health", async (c) => {
	const { apps: scope } = c.get("principal");
	const config = c.get("config");
	if (scope !== "*" && scope.size <= HEALTH_DIRECT_MAX_APPS && ![...scope].some((entry) => entry.includes(":"))) {
		// The key's own apps that exist, in the secret or the registry (a KV read each, cached per isolate).
		const named = [...scope];
		const found = await Promise.all(named.map((appid) => findApp(c.env, config, appid)));
		const appids = named.filter((_, i) => found[i] !== undefined);
		const health = await checkApps(c.env, appids, Date.now());
		const failing = health.filter((h) => !h.ok);
		if (failing.length === 0) return c.json({ ok: true, apps: health });
		return unhealthy(c, failing.length, health.length, failing, health);
	}
	const { apps, unhealthy: count, listed } = await indexHealth(c.env, config, scope);
	const failing = listed.map(({ appid, reason }) => ({ appid, ok: false, reason }));
	if (count === 0) return c.json({ ok: true, summary: { apps, unhealthy: 0 }, apps: [] });
	return unhealthy(c, count, apps, failing, failing, { summary: { apps, unhealthy: count } });
});

function unhealthy(c: Context<BrokerEnv>, count: number, total: number, failing: readonly AppHealth[], apps: readonly AppHealth[], extra: object = {}): Response {
	const more = count > failing.length ? ` (and ${count - failing.length} more)` : "";
	return c.json({
		ok: false,
		error: "unhealthy",
		message: `${count} of ${total} apps cannot serve a token or have an open incident: ${failing.map((h) => `${h.appid} (${h.reason})`).join("; ")}${more}. GET /status with an admin key has the details.`,
		...extra,
		apps,
	}, 503);
}

app.notFound(() => {
	throw new BrokerError("not_found", `No such route. Routes: ${Object.entries(ROUTES).map(([p, m]) => `${m.join("|")} ${p}`).join(", ")}, and WeChat's own API paths (${FORWARDED_PREFIXES.join(", ")}) through the gateway.`);
});

app.onError((error, c) => {
	if (isGatewayPath(c.req.path)) return wechatErrorResponse(asWeChatError(error, c.req.path));
	if (error instanceof BrokerError && error.code === "config_error") return brokerConfigErrorResponse(c, error);
	if (error instanceof BrokerError) {
		const headers: Record<string, string> = { ...error.headers };
		if (error.retryAfterS !== undefined) headers["Retry-After"] = String(error.retryAfterS);
		return c.json(error.toBody(), error.status, headers);
	}
	if (error instanceof ConfigError) return configErrorResponse(c, error);
	if (error instanceof HTTPException) return error.getResponse();
	log("error", "internal_error", { name: error.name, message: error.message, path: c.req.path });
	return c.json({ error: "internal_error", message: "Internal error in the broker; the details are in its logs." }, 500);
});

/**
 * The fix-it message goes to the logs, and to a caller holding an admin key; anyone else learns only that
 * the broker is misconfigured (the message may name apps and keys).
 */
async function configErrorResponse(c: Context<BrokerEnv>, error: ConfigError): Promise<Response> {
	log("error", "config_invalid", { message: error.message });
	const presented = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "")?.[1];
	const admin = presented !== undefined && error.adminKeys.length > 0 && (await findKey(error.adminKeys, presented)) !== undefined;
	const message = admin ? error.message : "The broker's configuration is invalid; its operator will find what to fix in the broker's logs (event config_invalid).";
	return c.json({ error: "config_error", message }, 500);
}

/** A configuration problem found at run time (REGISTRY_KEY): the message, like ConfigError's, for admins only. */
function brokerConfigErrorResponse(c: Context<BrokerEnv>, error: BrokerError): Response {
	log("error", "config_invalid", { message: error.message });
	const message = c.get("principal")?.admin ? error.message : "The broker's configuration is invalid; its operator will find what to fix in the broker's logs (event config_invalid).";
	return c.json({ error: "config_error", message }, 500);
}

/** The same shape WeChat returns, so an SDK's "token from elsewhere" hook takes it unchanged. */
function tokenResponse(c: Context<BrokerEnv>, token: CredentialRecord): Response {
	return c.json({ access_token: token.value, expires_in: expiresInS(token, Date.now()) });
}
