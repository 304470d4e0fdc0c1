/**
 * Who is calling: a bearer API key from API_KEYS, compared in constant time, with its app scope and role.
 *
 * Keys are compared as SHA-256 digests with `crypto.subtle.timingSafeEqual`: hashing first makes every
 * comparison the same length (timingSafeEqual needs that), and lets operators store only `sha256:<hex>`.
 * Every configured key is compared on every request, so the time taken does not say which key came close.
 */
import { bearerAuth } from "hono/bearer-auth";
import type { MiddlewareHandler } from "hono";
import type { ApiKeyConfig, BrokerConfig } from "./config";
import { BrokerError } from "./errors";
import { log } from "./log";

export interface Principal {
	readonly name: string;
	readonly apps: ApiKeyConfig["apps"];
	readonly admin: boolean;
}

export type AuthVariables = { config: BrokerConfig; principal: Principal };

const encoder = new TextEncoder();
const plainDigests = new WeakMap<ApiKeyConfig, Promise<ArrayBuffer>>();

function sha256(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

function keyDigest(key: ApiKeyConfig): Promise<ArrayBuffer | Uint8Array> {
	if (key.sha256) return Promise.resolve(key.sha256);
	let digest = plainDigests.get(key);
	if (!digest) {
		digest = sha256(key.plain ?? "");
		plainDigests.set(key, digest);
	}
	return digest;
}

/** The key that matches `presented`, if any. */
export async function findKey(keys: readonly ApiKeyConfig[], presented: string): Promise<ApiKeyConfig | undefined> {
	const digest = await sha256(presented);
	let match: ApiKeyConfig | undefined;
	for (const key of keys) {
		// No early exit: the loop takes as long for the first key as for none.
		if (crypto.subtle.timingSafeEqual(digest, await keyDigest(key))) match ??= key;
	}
	return match;
}

const challenge = 'Bearer realm="wx-token-broker"';

/** Requires a valid key; sets `principal`. 401 with `WWW-Authenticate: Bearer` otherwise. */
export function apiKeyAuth(): MiddlewareHandler<{ Variables: AuthVariables }> {
	return bearerAuth({
		realm: "wx-token-broker",
		async verifyToken(presented, c) {
			const key = await findKey(c.get("config").keys, presented);
			if (!key) {
				log("warn", "auth_refused", { reason: "unknown_key", path: c.req.path });
				return false;
			}
			c.set("principal", { name: key.name, apps: key.apps, admin: key.admin });
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

export function requireApp(principal: Principal, appid: string): void {
	if (principal.apps === "*" || principal.apps.has(appid)) return;
	log("warn", "auth_refused", { reason: "app_out_of_scope", key: principal.name, appid });
	throw new BrokerError("forbidden", `The key "${principal.name}" is not allowed to use app ${appid}; ask the operator to add it to the key's apps in API_KEYS.`);
}

export function requireAdmin(principal: Principal): void {
	if (principal.admin) return;
	log("warn", "auth_refused", { reason: "not_admin", key: principal.name });
	throw new BrokerError("forbidden", `The key "${principal.name}" is not an admin key; this route needs one ("admin": true in API_KEYS).`);
}
