/**
 * POST /cgi-bin/component/api_component_token, answered by the broker (DESIGN.md, "The open platform";
 * owner-token-endpoint.ts): a vendor's SDK whose host is the broker and whose component_appsecret is a broker
 * API key gets the component's current component_access_token in WeChat's own shape, errors included. The
 * component_verify_ticket field is ignored (the broker holds the tickets).
 */
import { readComponentToken } from "../access/reads";
import { findComponent } from "../registry/lookup";
import { ownerTokenEndpoint } from "./owner-token-endpoint";
import { ERRCODE } from "./wechat-errors";

/** WeChat's answer for an appid that is not a component (61011 invalid component). */
const INVALID_COMPONENT = 61011;

export const componentTokenEndpoint = ownerTokenEndpoint({
	platform: "wechat", scope: "component", endpoint: "api_component_token", ownSecret: "the component's AppSecret",
	idField: "component_appid", secretField: "component_appsecret", tokenField: "component_access_token",
	errcodes: {
		requirePost: ERRCODE.requirePost, dataFormat: ERRCODE.dataFormat, idMissing: ERRCODE.appidMissing,
		secretMissing: ERRCODE.appSecretMissing, badSecret: ERRCODE.invalidAppSecret, unknown: INVALID_COMPONENT,
	},
	errmsgs: {
		requirePost: "require POST method", dataFormat: "data format error", idMissing: "appid missing",
		secretMissing: "appsecret missing", badSecret: "invalid appsecret", unknown: "invalid component",
	},
	find: findComponent,
	read: readComponentToken,
});
