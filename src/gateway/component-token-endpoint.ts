/**
 * POST /cgi-bin/component/api_component_token, answered by the broker (DESIGN.md, "The open platform"): a
 * vendor's SDK whose host is the broker and whose component_appsecret is a broker API key gets the
 * component's current component_access_token in WeChat's own shape, and never needs the AppSecret or a
 * ticket. The component_verify_ticket field is ignored (the broker holds the tickets). The key is checked
 * like any key (authenticate) before the component is looked up, and must be allowed `component:<id>`.
 */
import type { Context } from "hono";
import { authenticate, inScope, type AuthVariables } from "../access/auth";
import { readComponentToken } from "../access/reads";
import { APPID_PATTERN } from "../config/config";
import { BrokerError } from "../core/errors";
import { expiresInS } from "../core/lifetime";
import { log } from "../core/log";
import { componentObjectName } from "../core/storage-keys";
import type { AppEnv } from "../env";
import { findComponent } from "../registry/lookup";
import { rememberIssued } from "./ownership";
import { MAX_SECRET_CHARS, readJsonBody } from "./token-endpoints";
import { ERRCODE, failureAsWeChat, WeChatError } from "./wechat-errors";

type GatewayContext = Context<{ Bindings: AppEnv; Variables: AuthVariables }>;

/** WeChat's answer for an appid that is not a component (61011 invalid component). */
const INVALID_COMPONENT = 61011;

export async function componentTokenEndpoint(c: GatewayContext): Promise<Response> {
	if (c.req.method !== "POST") throw new WeChatError(ERRCODE.requirePost, "require POST method (wx-token-broker: api_component_token is a POST with a JSON body)");
	const { component_appid: id, component_appsecret: secret } = await readJsonBody(c, '{"component_appid":"wx…","component_appsecret":"<broker key>"}');
	if ([id, secret].some((v) => v !== undefined && typeof v !== "string")) {
		throw new WeChatError(ERRCODE.dataFormat, "data format error (wx-token-broker: component_appid and component_appsecret are strings)");
	}
	if (!id) throw new WeChatError(ERRCODE.appidMissing, "appid missing (wx-token-broker: send the component_appid of a component this broker serves)");
	if (!secret) throw new WeChatError(ERRCODE.appSecretMissing, "appsecret missing (wx-token-broker: send your broker API key as the component_appsecret)");
	const config = c.get("config");
	const key = (secret as string).length <= MAX_SECRET_CHARS ? await authenticate(c.env, config, secret as string) : undefined;
	if (!key) {
		log("warn", "auth_refused", { reason: "unknown_key", path: c.req.path });
		throw new WeChatError(ERRCODE.invalidAppSecret, "invalid appsecret (wx-token-broker: the component_appsecret must be a broker API key, not the component's AppSecret; ask the broker's operator for one)");
	}
	const componentAppid = id as string;
	const known = APPID_PATTERN.test(componentAppid) ? await findComponent(c.env, config, componentAppid) : undefined;
	if (!known) {
		throw new WeChatError(INVALID_COMPONENT, `invalid component (wx-token-broker: component ${APPID_PATTERN.test(componentAppid) ? componentAppid : "?"} is not configured on this broker; check the component_appid or ask the operator to add it)`);
	}
	if (!inScope(key.apps, `component:${componentAppid}`)) {
		log("warn", "auth_refused", { reason: "component_out_of_scope", key: key.name, component_appid: componentAppid });
		throw new WeChatError(ERRCODE.invalidAppSecret, `invalid appsecret (wx-token-broker: the key "${key.name}" may not use component ${componentAppid}; ask the operator to add "component:${componentAppid}" to the key's apps)`);
	}
	let token;
	try {
		token = await readComponentToken(c.env, componentAppid);
	} catch (error) {
		if (error instanceof BrokerError) throw failureAsWeChat(error);
		throw error;
	}
	rememberIssued(token.value, componentObjectName(componentAppid), token.expiresAt);
	return c.json({ component_access_token: token.value, expires_in: expiresInS(token, Date.now()) });
}
