/**
 * POST /cgi-bin/service/get_suite_token, answered by the broker (DESIGN.md, "WeCom service providers";
 * owner-token-endpoint.ts): a service provider's SDK whose host is the broker and whose suite_secret is a
 * broker API key gets the suite's current suite_access_token in WeCom's own shape, errors included
 * (`{"errcode", "errmsg"}`, HTTP 200). The suite_ticket field is ignored: the broker holds the tickets WeCom
 * pushes to its instruction URL. Errcodes are WeCom's (OPEN-PLATFORM.md §10): 40083 invalid suite_id,
 * 40080 invalid suite_secret, 41024 secret missing.
 */
import { readSuiteToken } from "../access/reads";
import { findSuite } from "../registry/lookup";
import { ownerTokenEndpoint } from "./owner-token-endpoint";
import { WECOM_ERRCODE } from "./wechat-errors";

/** WeCom's errcodes of get_suite_token (sim/wecom.js has the same table). */
const SUITE_ERRCODE = { invalidSuiteSecret: 40080, invalidSuiteId: 40083, secretMissing: 41024, requirePost: 43002 } as const;

export const suiteTokenEndpoint = ownerTokenEndpoint({
	platform: "wecom", scope: "suite", endpoint: "get_suite_token", ownSecret: "the suite's Secret",
	idField: "suite_id", secretField: "suite_secret", tokenField: "suite_access_token",
	errcodes: {
		requirePost: SUITE_ERRCODE.requirePost, dataFormat: WECOM_ERRCODE.invalidParameter, idMissing: SUITE_ERRCODE.invalidSuiteId,
		secretMissing: SUITE_ERRCODE.secretMissing, badSecret: SUITE_ERRCODE.invalidSuiteSecret, unknown: SUITE_ERRCODE.invalidSuiteId,
	},
	errmsgs: {
		requirePost: "require POST method", dataFormat: "invalid parameter", idMissing: "invalid suite_id",
		secretMissing: "missing secret", badSecret: "invalid suite_secret", unknown: "invalid suite_id",
	},
	find: findSuite,
	read: readSuiteToken,
});
