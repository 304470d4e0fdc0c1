/**
 * The gateway's token endpoints of credential owners that are not apps, answered by the broker in the
 * platform's own shape (DESIGN.md, "The open platform", "WeCom service providers"): an SDK whose host is the
 * broker and whose secret field holds a broker API key gets the owner's current token, and never needs the
 * real secret or a ticket (the ticket field is ignored: the broker holds the tickets). The key is checked like
 * any key (authenticate) before the owner is looked up, and must be allowed `<scope>:<id>`.
 *
 * component-token-endpoint.ts (api_component_token) and suite-token-endpoint.ts (get_suite_token) say only
 * what differs: field names, errcodes, words.
 */
import type { Context } from "hono";
import { authenticate, inScope, type AuthVariables } from "../access/auth";
import type { BrokerConfig } from "../config/config";
import { APPID_PATTERN } from "../config/config";
import { BrokerError } from "../core/errors";
import { expiresInS, type CredentialRecord } from "../core/lifetime";
import { log } from "../core/log";
import type { AppEnv } from "../env";
import { rememberIssued } from "./ownership";
import { MAX_SECRET_CHARS, readJsonBody } from "./token-endpoints";
import { failureAsWeChat, WeChatError, type Platform } from "./wechat-errors";

type GatewayContext = Context<{ Bindings: AppEnv; Variables: AuthVariables }>;

export interface OwnerTokenEndpoint {
	readonly platform: Platform;
	/** The key scope prefix, also the owner's object name prefix (`component`, `suite`). */
	readonly scope: string;
	/** The request's id and secret fields, the answer's token field. */
	readonly idField: string;
	readonly secretField: string;
	readonly tokenField: string;
	/** The endpoint's own name, and what the owner's real secret is called, for the messages. */
	readonly endpoint: string;
	readonly ownSecret: string;
	/** The platform's errcodes: POST required, missing id, missing secret, bad secret (key), unknown owner. */
	readonly errcodes: { readonly requirePost: number; readonly dataFormat: number; readonly idMissing: number; readonly secretMissing: number; readonly badSecret: number; readonly unknown: number };
	/** The platform's errmsg for each, before the broker's own words in parentheses. */
	readonly errmsgs: { readonly requirePost: string; readonly dataFormat: string; readonly idMissing: string; readonly secretMissing: string; readonly badSecret: string; readonly unknown: string };
	find(env: AppEnv, config: BrokerConfig, id: string): Promise<unknown>;
	read(env: AppEnv, id: string): Promise<CredentialRecord>;
}

export function ownerTokenEndpoint(spec: OwnerTokenEndpoint): (c: GatewayContext) => Promise<Response> {
	const { platform, errcodes: code, errmsgs: said } = spec;
	const refuse = (which: keyof OwnerTokenEndpoint["errcodes"], why: string) => new WeChatError(code[which], `${said[which]} (wx-token-broker: ${why})`, 200, platform);
	return async function ownerToken(c) {
		if (c.req.method !== "POST") throw refuse("requirePost", `${spec.endpoint} is a POST with a JSON body`);
		const body = await readJsonBody(c, `{"${spec.idField}":"…","${spec.secretField}":"<broker key>"}`);
		const id = body[spec.idField];
		const secret = body[spec.secretField];
		if ([id, secret].some((v) => v !== undefined && typeof v !== "string")) throw refuse("dataFormat", `${spec.idField} and ${spec.secretField} are strings`);
		if (!id) throw refuse("idMissing", `send the ${spec.idField} of a ${spec.scope} this broker serves`);
		if (!secret) throw refuse("secretMissing", `send your broker API key as the ${spec.secretField}`);
		const config = c.get("config");
		const key = (secret as string).length <= MAX_SECRET_CHARS ? await authenticate(c.env, config, secret as string) : undefined;
		if (!key) {
			log("warn", "auth_refused", { reason: "unknown_key", path: c.req.path });
			throw refuse("badSecret", `the ${spec.secretField} must be a broker API key, not ${spec.ownSecret}; ask the broker's operator for one`);
		}
		const ownerId = id as string;
		const known = APPID_PATTERN.test(ownerId) ? await spec.find(c.env, config, ownerId) : undefined;
		if (!known) {
			throw refuse("unknown", `${spec.scope} ${APPID_PATTERN.test(ownerId) ? ownerId : "?"} is not configured on this broker; check the ${spec.idField} or ask the operator to add it`);
		}
		const scope = `${spec.scope}:${ownerId}`;
		if (!inScope(key.apps, scope)) {
			log("warn", "auth_refused", { reason: `${spec.scope}_out_of_scope`, key: key.name, [spec.idField]: ownerId });
			throw refuse("badSecret", `the key "${key.name}" may not use ${spec.scope} ${ownerId}; ask the operator to add "${scope}" to the key's apps`);
		}
		let token;
		try {
			token = await spec.read(c.env, ownerId);
		} catch (error) {
			if (error instanceof BrokerError) throw failureAsWeChat(error, platform);
			throw error;
		}
		rememberIssued(token.value, scope, token.expiresAt);
		return c.json({ [spec.tokenField]: token.value, expires_in: expiresInS(token, Date.now()) });
	};
}
