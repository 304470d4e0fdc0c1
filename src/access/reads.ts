/**
 * What the broker's own routes share: reading the request (appid, JSON body), reading a credential through
 * the isolate memory tier, the KV edge copy and the app's Durable Object, and turning an Outcome into the
 * HTTP contract's error.
 */
import type { Context } from "hono";
import { requireApp, type AuthVariables, type Principal } from "./auth";
import { authority, componentAuthority, suiteAuthority } from "../authority/stub";
import { APPID_PATTERN, type AppProfile } from "../config/config";
import { findApp } from "../registry/lookup";
import { readEdgeCopy } from "../edge/edge-cache";
import type { CredentialType } from "../core/credentials";
import type { AppEnv } from "../env";
import { BrokerError } from "../core/errors";
import { componentObjectName, edgeKey, suiteObjectName } from "../core/storage-keys";
import type { CredentialRecord } from "../core/lifetime";
import { MemoryTier } from "../edge/memory-cache";
import type { Outcome } from "../core/outcome";

export type BrokerEnv = { Bindings: AppEnv; Variables: AuthVariables };

/** This isolate's copy of the edge copies it has read or replaced (memory-cache.ts has the staleness bound). */
const memory = new MemoryTier<CredentialRecord>();

/**
 * A credential for a read: this isolate's memory, else the KV edge copy, else the app's object (`fromObject`:
 * how to ask it, when not getCredential, e.g. a component's componentAccessToken).
 */
export async function readCredential(env: AppEnv, appid: string, type: CredentialType, fromObject?: () => Promise<Outcome>): Promise<CredentialRecord> {
	const key = edgeKey(appid, type);
	const now = Date.now();
	const remembered = memory.get(key, now);
	if (remembered) return remembered;
	const edge = await readEdgeCopy(env.TOKEN_CACHE, appid, now, type);
	// Only what KV holds is remembered: a KV miss asks the object every time, as it did before this tier.
	if (edge) memory.put(key, edge, now);
	return edge ?? unwrap(await (fromObject ? fromObject() : authority(env, appid).getCredential(appid, type)));
}

/**
 * A component's component_access_token, read like an app's token: it is the `token` of the component's
 * object (named component:<id>; authority/component-token.ts), which answers with its own not-found message.
 */
export function readComponentToken(env: AppEnv, componentAppid: string): Promise<CredentialRecord> {
	return readCredential(env, componentObjectName(componentAppid), "token", () => componentAuthority(env, componentAppid).componentAccessToken(componentAppid));
}

/** A WeCom suite's suite_access_token, read the same way: the `token` of the suite's object (suite:<suite_id>). */
export function readSuiteToken(env: AppEnv, suiteId: string): Promise<CredentialRecord> {
	return readCredential(env, suiteObjectName(suiteId), "token", () => suiteAuthority(env, suiteId).suiteAccessToken(suiteId));
}

/** A WeCom service provider's provider_access_token: the `token` of the provider's object (provider:<corpid>). */
export function readProviderToken(env: AppEnv, corpid: string): Promise<CredentialRecord> {
	return readCredential(env, `provider:${corpid}`, "token", () => authority(env, `provider:${corpid}`).providerAccessToken(corpid));
}

/**
 * The object's answer to an invalidation or refresh replaces this isolate's memory entry at once, so the
 * isolate that told a client "here is the new token" never hands that client the old one again.
 */
export function remember(appid: string, type: CredentialType, record: CredentialRecord): CredentialRecord {
	memory.put(edgeKey(appid, type), record, Date.now());
	return record;
}

export function forget(appid: string, type: CredentialType): void {
	memory.delete(edgeKey(appid, type));
}

/**
 * An admin's forced refresh, through this isolate: a force can revoke the remembered value at once (stable
 * force_refresh), so this isolate stops serving it before the call, and keeps it forgotten if the call
 * fails, as the object and the KV copy do; the new value is remembered at once.
 */
export async function forceRefreshHere(env: AppEnv, appid: string, type: CredentialType): Promise<Outcome> {
	forget(appid, type);
	const outcome = await authority(env, appid).forceRefresh(appid, type);
	if (outcome.ok) remember(appid, type, outcome.record);
	return outcome;
}


/**
 * The app a request names (`?appid=` or the body's `appid`): WECHAT_APPS first, then the registry
 * (registry/lookup.ts: isolate memory, then KV; never the Registry object). The key's scope is the
 * caller's to check (requireApp), except that a scoped key naming an app that does not exist gets the
 * same 403 as for an app outside its scope: it learns nothing about which appids exist.
 */
export async function resolveApp(c: Context<BrokerEnv>, raw: string | undefined): Promise<AppProfile> {
	const config = c.get("config");
	const principal = c.get("principal");
	if (raw === undefined || raw === "") {
		// Without a registry, WECHAT_APPS is every app there is; with one, "the only app" cannot be known here.
		if (config.apps.size === 1 && !config.registry) return config.apps.values().next().value!;
		throw new BrokerError("bad_request", `appid is required: this broker serves ${config.registry ? "the apps of its registry and WECHAT_APPS" : `${config.apps.size} apps`} (?appid=wx… on GET, "appid" in a JSON body).`);
	}
	if (!APPID_PATTERN.test(raw)) throw new BrokerError("bad_request", "appid must be 1–64 letters, digits, _ or - (e.g. wx1234567890abcdef).");
	const app = await findApp(c.env, config, raw);
	if (app) return app;
	if (principal && principal.apps !== "*") requireApp(principal, raw);
	throw new BrokerError("not_found", `App ${raw} is not configured on this broker; check the appid, or ask the operator to add it (PUT /admin/apps/${raw}, or WECHAT_APPS).`);
}

export async function readJsonObject(c: Context<BrokerEnv>, hint = 'The body must be JSON like {"appid": "wx…", "access_token": "<the token WeChat refused>"}.'): Promise<Record<string, unknown>> {
	let body: unknown;
	try {
		body = await c.req.json();
	} catch {
		throw new BrokerError("bad_request", `${hint} It was not valid JSON.`);
	}
	if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BrokerError("bad_request", hint);
	return body as Record<string, unknown>;
}

/** A failed Outcome becomes the contract's error: 502 with wechat_errcode, 503 or 429 with Retry-After, 404. */
export function unwrap(outcome: Outcome): CredentialRecord {
	if (outcome.ok) return outcome.record;
	const { code, message, wechatErrcode, retryAfterS } = outcome.failure;
	throw new BrokerError(code, message, {
		...(wechatErrcode !== undefined && { wechatErrcode }),
		// WeChat refusing is not fixed by waiting a few seconds; only 429 and 503 carry Retry-After.
		...(retryAfterS !== undefined && code !== "wechat_error" && { retryAfterS }),
	});
}
