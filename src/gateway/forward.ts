/**
 * Forwarding: a WeChat API call that carries a token this broker issued goes to the app's upstream with
 * the app's current token in its place; WeChat's answer comes back as WeChat sent it (status, content type,
 * body byte for byte, streamed). When the answer says the token is refused (40001, 40014, 42001), the broker
 * runs compare-and-refresh with the token it used and retries once with the new one, so the SDK sees the
 * success. That answer is evidence, not proof, like any report: a client can shape what comes back (a media
 * file it uploaded reads back byte for byte; a call about another credential fails with 40001 too), so the
 * object checks the token with one getcallbackip before anything that revokes it (engine/reports.ts).
 *
 * Only a few request headers go upstream (FORWARDED_REQUEST_HEADERS): never cookies, authorization,
 * Cloudflare's cf-* or x-forwarded-*, nor hop-by-hop headers; WECHAT_RELAY_HEADERS are added over them
 * (upstream.ts). Nothing here logs a query string: it
 * carries a token.
 */
import type { Context } from "hono";
import type { AuthVariables } from "../access/auth";
import { authority } from "../authority/stub";
import type { AppEnv } from "../env";
import { forget, remember } from "../access/reads";
import { log, maskToken } from "../core/log";
import { ownerOf, replacedHere } from "./ownership";
import type { AppProfile } from "../config/config";
import { findApp, findComponent } from "../registry/lookup";
import { componentAsProfile, componentIdOf } from "../authority/component-token";
import { findAccessToken, findComponentToken, withAccessToken, type TokenInQuery } from "./query";
import { readUpTo } from "./streams";
import { upstreamFor, type Upstream } from "./upstream";
import { countCall, countHeal, flushInBackground } from "./usage-counter";
import { credentialFor, ERRCODE, WECOM_ERRCODE, WeChatError, type Platform } from "./wechat-errors";
import { brokerOnlyService, serviceOwner, SERVICE_API_PREFIX } from "./service-calls";

type GatewayContext = Context<{ Bindings: AppEnv; Variables: AuthVariables }>;

/**
 * A request body up to this size is held in memory so the call can be sent again after a heal. JSON calls
 * are a few KB; 1 MiB also covers thumbnails (64 KB) and most images. A larger body (video, voice, big
 * images) streams through once: if WeChat refuses its token, the broker still refreshes the token, so an
 * SDK that sends the call again (WxJava) succeeds.
 */
export const REPLAY_MAX_BYTES = 1024 * 1024;
/** WeChat's token errors are ~100-byte JSON bodies: an answer longer than this is not one, and streams. */
const ERROR_PEEK_BYTES = 1024;
/** Until WeChat's answer starts (a 10 MB upload through a relay takes seconds); SDKs wait 60 s for media too. */
export const UPSTREAM_TIMEOUT_MS = 60_000;

const FORWARDED_REQUEST_HEADERS = ["accept", "accept-language", "content-type", "user-agent"] as const;
/** content-length and transfer-encoding are the runtime's to set; set-cookie and server are WeChat's business. */
const RETURNED_RESPONSE_HEADERS = ["content-type", "content-disposition"] as const;
/**
 * What a forwarded answer may never be on the broker's origin: a script (the dashboard's policy admits the
 * origin's own scripts), or a page that runs in that origin (sandbox gives it an opaque one). SDKs read
 * these answers as bytes and ignore both.
 */
const SCRIPT_TYPE = /(java|ecma|j|live)script/i;
const FORWARDED_CSP = "sandbox; default-src 'none'";
/** Statuses whose responses cannot carry a body (the Response constructor refuses one). */
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

interface OutgoingBody {
	/** For the first attempt. */
	readonly first: BodyInit | null;
	/** The same body again, or null when it was streamed and cannot be. */
	readonly again: (() => BodyInit | null) | null;
}

/** A request's access_token, when this broker issued it: the app it belongs to, and where it sits in the query. */
export interface OwnedToken {
	readonly appid: string;
	readonly app: AppProfile;
	/** Its position among the query's parameters (query.ts), and its name there. */
	readonly index: number;
	readonly name: string;
}

/** The open platform's component APIs: they take a component_access_token (or, some, an authorizer's access_token). */
export const COMPONENT_API_PREFIX = "/cgi-bin/component/";

/**
 * Component APIs the broker calls itself and never forwards: each mints an authorizer's token (which may
 * revoke the one the broker serves, no overlap assumed) or hands out refresh tokens, the sealed secrets the
 * broker keeps. A client gets the broker's routes for them instead.
 */
const BROKER_ONLY_COMPONENT_PATHS: ReadonlyMap<string, string> = new Map([
	["/cgi-bin/component/api_query_auth", "exchange an authorization code with POST /open/<component_appid>/authorizations"],
	["/cgi-bin/component/api_authorizer_token", "read the account's token with GET /token?appid=<authorizer_appid> or this gateway's /cgi-bin/token"],
	["/cgi-bin/component/api_get_authorizer_list", "list the accounts with GET /open/<component_appid>/authorizers"],
]);

/**
 * The app whose token the request carries, or the WeChat-shaped refusal (41001 without a token, 40001 for
 * one this broker did not issue; WeCom's 40014 on WeCom-only paths). Every gateway endpoint authorised by a
 * token goes through here: the forwarded calls below, and the broker-served ticket endpoints (ticket-endpoints.ts).
 * A component's token (its owner is the component's object, component:<id>) is a credential only on the
 * component APIs, and only there may the token be named component_access_token.
 */
export async function requestOwner(c: GatewayContext, platform: Platform = "wechat"): Promise<OwnedToken> {
	const url = new URL(c.req.url);
	// WeCom's service-provider APIs take a suite or provider token, never an access_token (service-calls.ts).
	if (url.pathname.startsWith(SERVICE_API_PREFIX)) return serviceOwner(c, url);
	const componentPath = url.pathname.startsWith(COMPONENT_API_PREFIX);
	const presented: TokenInQuery & { readonly name?: string } = componentPath ? findComponentToken(url.search) : findAccessToken(url.search);
	if (presented.kind === "missing") {
		throw new WeChatError(ERRCODE.accessTokenMissing, "access_token missing (wx-token-broker: send the access_token this broker gave you)", 200, platform);
	}
	const owner = presented.kind === "found" ? await ownerOf(c.env.TOKEN_CACHE, c.get("config"), presented.token, Date.now()) : null;
	if (presented.kind !== "found" || !owner) {
		log("warn", "gateway_refused", { reason: presented.kind === "found" ? "unknown_token" : "unusable_token", path: url.pathname, ...(presented.kind === "found" && { token: maskToken(presented.token) }) });
		// On a WeCom-only path the refusal is WeCom's "invalid access_token" (40014): there 40001 means a bad secret.
		if (platform === "wecom") {
			throw new WeChatError(WECOM_ERRCODE.invalidAccessToken, "invalid access_token (wx-token-broker: this broker did not issue this token, or it expired; fetch one from the broker's /cgi-bin/gettoken with your broker key)", 200, platform);
		}
		throw new WeChatError(ERRCODE.invalidCredential, "invalid credential, access_token is invalid or not latest (wx-token-broker: this broker did not issue this token, or it expired; fetch one from the broker's /cgi-bin/token with your broker key)");
	}
	const name = presented.name ?? "access_token";
	const componentId = componentIdOf(owner.appid);
	// A token of an app (or component) no longer configured (removed, deleted from the registry) is nobody's.
	const app = componentId !== undefined
		? (componentPath ? await findComponent(c.env, c.get("config"), componentId).then((found) => found && componentAsProfile(found)) : undefined)
		: name === "access_token" ? await findApp(c.env, c.get("config"), owner.appid) : undefined;
	if (!app) {
		const reason = componentId !== undefined && !componentPath ? "component_token_elsewhere" : name !== "access_token" && componentId === undefined ? "app_token_as_component_token" : "app_removed";
		log("warn", "gateway_refused", { reason, path: url.pathname, appid: owner.appid });
		const why = reason === "component_token_elsewhere" ? "a component_access_token works only on /cgi-bin/component/ APIs"
			: reason === "app_token_as_component_token" ? "this is an account's access_token, not a component_access_token"
			: "the app of this token is no longer on this broker";
		throw platform === "wecom"
			? new WeChatError(WECOM_ERRCODE.invalidAccessToken, `invalid access_token (wx-token-broker: ${why})`, 200, platform)
			: new WeChatError(ERRCODE.invalidCredential, `invalid credential, access_token is invalid or not latest (wx-token-broker: ${why})`);
	}
	return { appid: owner.appid, app, index: presented.index, name };
}

export async function forward(c: GatewayContext): Promise<Response> {
	const url = new URL(c.req.url);
	const service = brokerOnlyService(url.pathname);
	if (service) throw service;
	const instead = BROKER_ONLY_COMPONENT_PATHS.get(url.pathname);
	if (instead) {
		log("warn", "gateway_refused", { reason: "broker_only_component_api", path: url.pathname });
		throw new WeChatError(ERRCODE.apiUnauthorized, `api unauthorized (wx-token-broker: this call would mint an account's token behind the broker or hand out its refresh token; ${instead})`);
	}
	const { appid, app, index, name } = await requestOwner(c);
	const upstream = upstreamFor(c.get("config"), app);
	countCall(appid);
	flushInBackground(c.env, (promise) => c.executionCtx.waitUntil(promise));

	const body = await outgoingBody(c.req.raw);
	const target = (token: string) => `${upstream.base}${url.pathname}${withAccessToken(url.search, index, token, name)}`;
	// The broker's own read path (memory tier, KV, object): a token remembered there is never past its
	// planned refresh; one something else revoked is refused by WeChat, and compare-and-refresh below sees
	// a stale token and hands back the current one at no upstream cost.
	const used = (await credentialFor(c.env, appid, "token")).value;
	const first = await inspect(await send(c.req.raw, upstream, target(used), body.first));
	if (first.errcode === null || !upstream.tokenErrcodes.has(first.errcode)) return first.response;

	// A component or authorizer token's replacement may revoke it at once (no overlap assumed), and an
	// authorizer's heal may find the account gone (61003): this isolate stops serving it before the call, as
	// the object and the KV copy do (forceRefreshHere does the same for an admin's force).
	if (app.mode === "component" || app.mode === "authorizer") forget(appid, "token");
	const healed = await authority(c.env, appid).invalidate(appid, used, "gateway");
	const retry = healed.ok && healed.record.value !== used && body.again !== null;
	log(retry ? "info" : "warn", "gateway_token_refused", {
		appid, path: url.pathname, errcode: first.errcode, used: maskToken(used),
		outcome: !healed.ok ? healed.failure.code : body.again === null ? "refreshed_not_replayable" : retry ? "retried" : "same_token",
	});
	// Whatever happens to this call, the next one must carry the new token, not the one WeChat refused; and
	// this isolate honours the one it replaced only as its rewritten issued record says (a component
	// token's: not at all, since no overlap is assumed), not from memory.
	if (healed.ok) remember(appid, "token", healed.record);
	if (healed.ok && healed.record.value !== used) replacedHere(appid, healed.record.value, healed.record.expiresAt);
	if (!retry) return first.response;
	countHeal(appid);
	return passThrough(await send(c.req.raw, upstream, target(healed.record.value), body.again!()));
}

async function outgoingBody(request: Request): Promise<OutgoingBody> {
	if (request.method === "GET" || request.method === "HEAD" || request.body === null) return { first: null, again: () => null };
	const declared = request.headers.get("content-length");
	if (declared !== null && Number(declared) > REPLAY_MAX_BYTES) return { first: request.body, again: null };
	const read = await readUpTo(request.body, REPLAY_MAX_BYTES);
	if (!read.complete) return { first: read.stream, again: null };
	return { first: read.bytes, again: () => read.bytes };
}

async function send(original: Request, upstream: Upstream, target: string, body: BodyInit | null): Promise<Response> {
	const headers = new Headers();
	for (const name of FORWARDED_REQUEST_HEADERS) {
		const value = original.headers.get(name);
		if (value !== null) headers.set(name, value);
	}
	// Last, so a relay header named like a forwarded one (User-Agent) carries the configured value, not the client's.
	for (const [name, value] of Object.entries(upstream.relayHeaders)) headers.set(name, value);
	const controller = new AbortController();
	const timer = setTimeout(() => controller.abort(), UPSTREAM_TIMEOUT_MS);
	try {
		// Manual redirects: a redirect is WeChat's answer to pass back, never a reason to call another host.
		return await fetch(target, { method: original.method, headers, body, redirect: "manual", signal: controller.signal });
	} catch {
		// The error's own message names the URL, which carries the token: it is not logged or passed on.
		const why = controller.signal.aborted ? `WeChat did not answer within ${UPSTREAM_TIMEOUT_MS / 1_000} s` : "could not reach WeChat";
		throw new WeChatError(ERRCODE.systemError, `system error (wx-token-broker: ${why}; try again)`);
	} finally {
		clearTimeout(timer);
	}
}

/** WeChat's answer to pass back, and its errcode when it is a short JSON (or text) body. */
async function inspect(response: Response): Promise<{ response: Response; errcode: number | null }> {
	const type = response.headers.get("content-type") ?? "";
	// A file (media/get and the like comes with Content-Disposition) is WeChat's success, whatever it holds.
	const file = response.headers.has("content-disposition");
	if (response.body === null || file || !/json|text\/plain/i.test(type)) return { response: passThrough(response), errcode: null };
	const start = await readUpTo(response.body, ERROR_PEEK_BYTES);
	if (!start.complete) return { response: passThrough(response, start.stream), errcode: null };
	return { response: passThrough(response, start.bytes), errcode: errcodeOf(start.bytes) };
}

function errcodeOf(bytes: Uint8Array): number | null {
	try {
		const body: unknown = JSON.parse(new TextDecoder().decode(bytes));
		const errcode = typeof body === "object" && body !== null ? (body as Record<string, unknown>).errcode : undefined;
		return typeof errcode === "number" ? errcode : null;
	} catch {
		return null;
	}
}

function passThrough(response: Response, body: BodyInit | null = response.body): Response {
	const headers = new Headers();
	for (const name of RETURNED_RESPONSE_HEADERS) {
		const value = response.headers.get(name);
		if (value !== null) headers.set(name, value);
	}
	if (SCRIPT_TYPE.test(headers.get("content-type") ?? "")) headers.set("content-type", "application/octet-stream");
	headers.set("content-security-policy", FORWARDED_CSP);
	return new Response(NULL_BODY_STATUSES.has(response.status) ? null : body, { status: response.status, headers });
}
