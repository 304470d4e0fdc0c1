/**
 * WeChat's token endpoints, answered by the broker: an SDK whose host is the broker and whose "secret" is
 * a broker API key gets the app's current token in WeChat's own shape, and never learns the AppSecret.
 *
 *   GET  /cgi-bin/token?grant_type=client_credential&appid=APPID&secret=<API key>
 *   POST /cgi-bin/stable_token {"grant_type":"client_credential","appid":…,"secret":<API key>,"force_refresh":…}
 *
 * Both serve the broker's one token for the app, whatever the app's mode: two endpoints with two token
 * families exist only at WeChat. The key is checked exactly like a bearer key (findKey: SHA-256, constant
 * time, every key compared) and must be scoped to the app. The key is checked before the appid, so a caller
 * without a key cannot learn which apps the broker serves. `force_refresh` forces only for an admin key: any
 * other key gets the current token (a service's SDK must not be able to revoke everyone's token).
 */
import type { Context } from "hono";
import { authenticate, inScope, type AuthVariables } from "../access/auth";
import { findApp } from "../registry/lookup";
import { APPID_PATTERN, type AppProfile } from "../config/config";
import { forceRefreshHere } from "../access/reads";
import type { AppEnv } from "../env";
import { expiresInS, type CredentialRecord } from "../core/lifetime";
import { log } from "../core/log";
import type { Outcome } from "../authority/token-authority";
import { rememberIssued, replacedHere } from "./ownership";
import { readUpTo } from "./streams";
import { credentialFor, ERRCODE, failureAsWeChat, WeChatError } from "./wechat-errors";

type GatewayContext = Context<{ Bindings: AppEnv; Variables: AuthVariables }>;

/** A stable_token request is ~150 bytes of JSON; anything this large is not one. */
export const MAX_TOKEN_REQUEST_BYTES = 4 * 1024;
/** Longer than any key the broker accepts; hashing arbitrary megabytes would only cost CPU. */
export const MAX_SECRET_CHARS = 1_024;
const CLIENT_CREDENTIAL = "client_credential";

export async function classicTokenEndpoint(c: GatewayContext): Promise<Response> {
	if (c.req.method !== "GET") throw new WeChatError(ERRCODE.requireGet, "require GET method (wx-token-broker: /cgi-bin/token is a GET)");
	const query = new URL(c.req.url).searchParams;
	return tokenAnswer(c, await tokenFor(c, query.get("grant_type"), query.get("appid"), query.get("secret"), false));
}

export async function stableTokenEndpoint(c: GatewayContext): Promise<Response> {
	if (c.req.method !== "POST") throw new WeChatError(ERRCODE.requirePost, "require POST method (wx-token-broker: /cgi-bin/stable_token is a POST with a JSON body)");
	const body = await readJsonBody(c);
	const { grant_type: grantType, appid, secret, force_refresh: forceRefresh = false } = body;
	const wrongType = [grantType, appid, secret].some((v) => v !== undefined && typeof v !== "string") || typeof forceRefresh !== "boolean";
	if (wrongType) {
		throw new WeChatError(ERRCODE.dataFormat, 'data format error (wx-token-broker: grant_type, appid and secret are strings, force_refresh is true or false)');
	}
	return tokenAnswer(c, await tokenFor(c, grantType as string | undefined, appid as string | undefined, secret as string | undefined, forceRefresh));
}

interface Served {
	readonly appid: string;
	readonly token: CredentialRecord;
}

async function tokenFor(c: GatewayContext, grantType: string | null | undefined, appid: string | null | undefined, secret: string | null | undefined, force: boolean): Promise<Served> {
	if (grantType !== CLIENT_CREDENTIAL) throw new WeChatError(ERRCODE.invalidGrantType, "invalid grant_type (wx-token-broker: use grant_type=client_credential)");
	if (!appid) throw new WeChatError(ERRCODE.appidMissing, "appid missing (wx-token-broker: send the appid of an app this broker serves)");
	if (!secret) throw new WeChatError(ERRCODE.appSecretMissing, "appsecret missing (wx-token-broker: send your broker API key as the secret)");
	const config = c.get("config");
	const key = secret.length <= MAX_SECRET_CHARS ? await authenticate(c.env, config, secret) : undefined;
	if (!key) {
		log("warn", "auth_refused", { reason: "unknown_key", path: c.req.path });
		throw new WeChatError(ERRCODE.invalidAppSecret, "invalid appsecret (wx-token-broker: the secret must be a broker API key, not the app's AppSecret; ask the broker's operator for one)");
	}
	const app = APPID_PATTERN.test(appid) ? await findApp(c.env, config, appid) : undefined;
	checkApp(app, appid, key.name, key.apps);
	if (force && !key.admin) log("info", "gateway_force_ignored", { appid, key: key.name });
	if (force && key.admin) {
		const token = unwrap(await forceRefreshHere(c.env, appid, "token"));
		// The token it replaced is forced out: this isolate's gateway stops honouring it now (ownership.ts).
		replacedHere(appid, token.value, token.expiresAt);
		return { appid, token };
	}
	return { appid, token: await credentialFor(c.env, appid, "token") };
}

function checkApp(app: AppProfile | undefined, appid: string, keyName: string, scope: "*" | ReadonlySet<string>): void {
	if (!app) {
		throw new WeChatError(ERRCODE.invalidAppid, `invalid appid (wx-token-broker: app ${APPID_PATTERN.test(appid) ? appid : "?"} is not configured on this broker; check the appid or ask the operator to add it)`);
	}
	if (!inScope(scope, app)) {
		log("warn", "auth_refused", { reason: "app_out_of_scope", key: keyName, appid });
		throw new WeChatError(ERRCODE.invalidAppSecret, `invalid appsecret (wx-token-broker: the key "${keyName}" may not use app ${appid}; ask the operator to add the app to the key's apps in API_KEYS)`);
	}
}

function unwrap(outcome: Outcome): CredentialRecord {
	if (outcome.ok) return outcome.record;
	throw failureAsWeChat(outcome.failure);
}

/** WeChat's success shape; the token is remembered as issued, so the SDK's first business call needs no lookup. */
function tokenAnswer(c: GatewayContext, { appid, token }: Served): Response {
	rememberIssued(token.value, appid, token.expiresAt);
	return c.json({ access_token: token.value, expires_in: expiresInS(token, Date.now()) });
}

export async function readJsonBody(c: GatewayContext, shape = '{"grant_type":"client_credential","appid":"wx…","secret":"<broker key>"}'): Promise<Record<string, unknown>> {
	const read = c.req.raw.body ? await readUpTo(c.req.raw.body, MAX_TOKEN_REQUEST_BYTES) : { complete: true as const, bytes: new Uint8Array() };
	if (!read.complete) {
		await read.stream.cancel();
		throw new WeChatError(ERRCODE.dataFormat, `data format error (wx-token-broker: the body is larger than ${MAX_TOKEN_REQUEST_BYTES} bytes)`);
	}
	let body: unknown;
	try {
		body = JSON.parse(new TextDecoder().decode(read.bytes));
	} catch {
		body = null;
	}
	if (typeof body !== "object" || body === null || Array.isArray(body)) {
		throw new WeChatError(ERRCODE.dataFormat, `data format error (wx-token-broker: the body must be JSON like ${shape})`);
	}
	return body as Record<string, unknown>;
}
