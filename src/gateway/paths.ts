/**
 * The gateway's paths (routes.ts has what each does): the WeChat endpoints the broker answers itself, the
 * API families it forwards, and the one it refuses. No imports, so the OpenAPI test
 * (test/e2e/openapi.test.ts) can check in Node that public/openapi.json documents every one.
 */
export const ANSWERED_PATHS = [
	"/cgi-bin/token",
	"/cgi-bin/stable_token",
	"/cgi-bin/ticket/getticket",
	// WeCom (qyapi.weixin.qq.com): its paths live beside WeChat's under /cgi-bin/ and never collide with them.
	"/cgi-bin/gettoken",
	"/cgi-bin/get_jsapi_ticket",
	"/cgi-bin/ticket/get",
	// The open platform: the component token, for a broker key as component_appsecret.
	"/cgi-bin/component/api_component_token",
	// WeCom's service providers: the suite token, for a broker key as suite_secret.
	"/cgi-bin/service/get_suite_token",
] as const;
export type AnsweredPath = (typeof ANSWERED_PATHS)[number];

/**
 * WeChat server-API families that take an access_token. Every one is forwarded only with a token this broker
 * issued, so a wider list costs no safety; anything outside it is not a WeChat API the broker knows and gets
 * the broker's own 404.
 */
export const FORWARDED_PREFIXES = [
	"/cgi-bin/", // official accounts and most mini program server APIs (messages, media, menus, users, tickets…)
	"/wxa/", // mini programs: codes, security checks, phone numbers, subscribe messages
	"/wxaapi/", // mini program subscribe-message templates
	"/datacube/", // analytics
	"/card/", // cards and coupons
	"/customservice/", // customer-service accounts and sessions
	"/merchant/", // the WeChat store
	"/semantic/", // semantic understanding
	"/shop/", // mini program transaction components
	"/product/", // mini program shop products
	"/union/", // promotion union
	"/wxopen/", // mini program template library
	"/tcb/", // cloud development (cloud functions, database)
	"/channels/", // channels (视频号) e-commerce
] as const;

/** Users' OAuth tokens and the mini program login: refused (routes.ts). */
export const REFUSED_PREFIX = "/sns/";
