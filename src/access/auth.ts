/**
 * Who is calling: a bearer API key from API_KEYS, compared in constant time, with its app scope and role.
 *
 * Keys are compared as SHA-256 digests with `crypto.subtle.timingSafeEqual`: hashing first makes every
 * comparison the same length (timingSafeEqual needs that), and lets operators store only `sha256:<hex>`.
 * Every configured key is compared each time, so the time taken does not say which key came close. A key
 * that matched is then recognised from this isolate's memory until the configuration changes (`verified`).
 */
import { bearerAuth } from "hono/bearer-auth";
import type { MiddlewareHandler } from "hono";
import type { ApiKeyConfig, AppProfile, BrokerConfig } from "../config/config";
import { findRegisteredKey, recentRegisteredKey } from "../registry/lookup";
import type { RegisteredKey } from "../registry/registry";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";

export interface Principal {
	readonly name: string;
	/** `"*"`, or appids and `corp:<corpid>` / `component:<component_appid>` scopes. */
	readonly apps: ApiKeyConfig["apps"];
	readonly admin: boolean;
	/** Where the key lives: API_KEYS, or the registry (the admin API). */
	readonly source: "secret" | "registry";
}

export type AuthVariables = { config: BrokerConfig; principal: Principal };

const encoder = new TextEncoder();
/** Each key list's digests, in order, computed once per configuration (plain keys are hashed here). */
const digestsOf = new WeakMap<readonly ApiKeyConfig[], Promise<ReadonlyArray<ArrayBuffer | Uint8Array>>>();

function sha256(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

function keyDigests(keys: readonly ApiKeyConfig[]): Promise<ReadonlyArray<ArrayBuffer | Uint8Array>> {
	let digests = digestsOf.get(keys);
	if (!digests) {
		digests = Promise.all(keys.map((key) => key.sha256 ?? sha256(key.plain ?? "")));
		digestsOf.set(keys, digests);
	}
	return digests;
}

/**
 * Keys this isolate has already verified, per key list: a hot client presents the same key on every request,
 * and hashing it again through crypto.subtle was the largest single cost of a hot read (bench/README.md).
 * Only matches are kept, so the map holds at most one entry per configured key, whatever strangers send; a
 * lookup's time depends on the presented string's length and, on a 32-bit hash collision with a valid key,
 * nothing an attacker can steer, and it only tells what the answer's status already says: valid or not.
 */
const verified = new WeakMap<readonly ApiKeyConfig[], Map<string, ApiKeyConfig>>();

/** The key that matches `presented`, if any. */
export async function findKey(keys: readonly ApiKeyConfig[], presented: string): Promise<ApiKeyConfig | undefined> {
	let known = verified.get(keys);
	const hit = known?.get(presented);
	if (hit) return hit;
	const [digest, digests] = await Promise.all([sha256(presented), keyDigests(keys)]);
	let match: ApiKeyConfig | undefined;
	for (let i = 0; i < keys.length; i++) {
		// No early exit: the loop takes as long for the first key as for none.
		if (crypto.subtle.timingSafeEqual(digest, digests[i]!)) match ??= keys[i];
	}
	if (match) {
		if (!known) verified.set(keys, (known = new Map()));
		known.set(presented, match);
	}
	return match;
}

/** Each registry key's principal, built once per KV read of the key (lookup.ts keeps that read). */
const registeredPrincipals = new WeakMap<RegisteredKey, Principal>();

/**
 * The principal a presented key authenticates as: API_KEYS first (compared in constant time against every
 * configured key), then the registry, found by the key's digest (registry/lookup.ts).
 */
export async function authenticate(env: { TOKEN_CACHE: KVNamespace }, config: BrokerConfig, presented: string): Promise<Principal | undefined> {
	// A registry key verified a moment ago skips the API_KEYS comparison: a key lives in one source only, and
	// which path answered says nothing an attacker can use (only a valid key takes it).
	const recent = recentRegisteredKey(config, presented);
	const key = recent ? undefined : await findKey(config.keys, presented);
	if (key) return { name: key.name, apps: key.apps, admin: key.admin, source: "secret" };
	const registered = recent ?? await findRegisteredKey(env, config, presented);
	if (!registered) return undefined;
	let principal = registeredPrincipals.get(registered);
	if (!principal) {
		principal = { name: registered.name, apps: registered.apps === "*" ? "*" : new Set(registered.apps), admin: registered.admin, source: "registry" };
		registeredPrincipals.set(registered, principal);
	}
	return principal;
}

const challenge = 'Bearer realm="wx-token-broker"';

/** Requires a valid key; sets `principal`. 401 with `WWW-Authenticate: Bearer` otherwise. */
export function apiKeyAuth(): MiddlewareHandler<{ Bindings: { TOKEN_CACHE: KVNamespace }; Variables: AuthVariables }> {
	return bearerAuth({
		realm: "wx-token-broker",
		async verifyToken(presented, c) {
			const principal = await authenticate(c.env, c.get("config"), presented);
			if (!principal) {
				log("warn", "auth_refused", { reason: "unknown_key", path: c.req.path });
				return false;
			}
			c.set("principal", principal);
			return true;
		},
		noAuthenticationHeader: {
			wwwAuthenticateHeader: challenge,
			message: { error: "unauthorized", message: "Send your API key as `Authorization: Bearer <key>`." },
		},
		invalidAuthenticationHeader: {
			wwwAuthenticateHeader: `${challenge}, error="invalid_request"`,
			message: { error: "bad_request", message: "The Authorization header must be `Bearer <key>` with a key from API_KEYS." },
		},
		invalidToken: {
			wwwAuthenticateHeader: `${challenge}, error="invalid_token"`,
			message: { error: "unauthorized", message: "This API key is not valid. Check the key, or ask the broker's operator for one." },
		},
	});
}

/** What a scope is checked against: the app's id, and the corp, component or suite it belongs to. */
export type ScopedApp = Pick<AppProfile, "appid" | "corpid" | "componentAppid" | "suiteId">;

/**
 * True when `scope` admits `app`: `"*"`, its appid, `corp:<its corpid>`, `component:<its component>`. A
 * component's own token is named `component:<id>` (a string), and an entry that records its component
 * (the component's object; later, each account that authorised it) is admitted by that component's scope.
 * A `component:` scope admits nothing else: no appid contains a `:`. `suite:<id>` admits the companies that
 * installed the suite (their entries record it), as `corp:<corpid>` admits each by its corpid.
 */
export function inScope(scope: Principal["apps"], app: ScopedApp | string): boolean {
	if (scope === "*") return true;
	if (typeof app === "string") return scope.has(app);
	return scope.has(app.appid) || (app.corpid !== undefined && scope.has(`corp:${app.corpid}`))
		|| (app.componentAppid !== undefined && scope.has(`component:${app.componentAppid}`))
		|| (app.suiteId !== undefined && scope.has(`suite:${app.suiteId}`));
}

export function requireApp(principal: Principal, app: ScopedApp | string): void {
	if (inScope(principal.apps, app)) return;
	const appid = typeof app === "string" ? app : app.appid;
	log("warn", "auth_refused", { reason: "app_out_of_scope", key: principal.name, appid });
	throw new BrokerError("forbidden", `The key "${principal.name}" is not allowed to use app ${appid}; ask the operator to add it to the key's apps (${principal.source === "secret" ? "in API_KEYS" : "PUT /admin/keys/" + principal.name}).`);
}

export function requireAdmin(principal: Principal): void {
	if (principal.admin) return;
	log("warn", "auth_refused", { reason: "not_admin", key: principal.name });
	throw new BrokerError("forbidden", `The key "${principal.name}" is not an admin key; this route needs one ("admin": true in API_KEYS or in POST /admin/keys).`);
}
