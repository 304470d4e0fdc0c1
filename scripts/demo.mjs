// @ts-check
/**
 * The demo apps and keys of `npm start`, shared with the dashboard test so that what the README shows is
 * what is tested. Local only: the simulator accepts these secrets, WeChat never sees them.
 */

/** @type {readonly { appid: string, secret: string, mode: "stable" | "classic" }[]} */
export const DEMO_APPS = [
	{ appid: "wxdemo0000000001", secret: "demo-secret-not-real", mode: "stable" },
	{ appid: "wxdemo0000000002", secret: "demo-secret-not-real-2", mode: "classic" },
];

/**
 * An app that is not in WECHAT_APPS: the printed demo adds it at runtime with `PUT /admin/apps/…` (the
 * registry). Only the simulator knows it from the start, as WeChat knows an account before the broker does.
 */
export const DEMO_REGISTRY_APP = { appid: "wxdemo0000000003", secret: "demo-registry-secret-not-real", mode: /** @type {const} */ ("stable") };

/** A WeCom self-built app (agent): clients address it as `<corpid>-<agentid>`. */
/** @type {readonly { kind: "wecom", corpid: string, agentid: string, secret: string }[]} */
export const DEMO_WECOM_APPS = [
	{ kind: "wecom", corpid: "wwdemo0000000001", agentid: "1000002", secret: "demo-wecom-secret-not-real" },
];

/**
 * An open-platform component (第三方平台) in WECHAT_COMPONENTS: the simulator pushes its
 * component_verify_ticket to the broker's event URL every minute, as WeChat does every ten.
 */
export const DEMO_COMPONENT = {
	component_appid: "wxdemocomponent01",
	secret: "demo-component-secret-not-real",
	token: "demoMessageToken",
	// 43 characters of base64, as the component's console shows one.
	encoding_aes_key: "demoEncodingAESKeyNotReal0123456789abcdefgh",
};
/** An account the printed demo authorises for the component (WeChat's consent page played by the simulator). */
export const DEMO_AUTHORIZER_APPID = "wxdemoauthorizer1";
/** Where the demo's auth link sends the browser back: the vendor's own page, never fetched here. */
export const DEMO_REDIRECT_URI = "https://vendor.example.com/wechat/authorized";
/**
 * A WeCom service provider's suite (第三方应用) in WECOM_SUITES: the simulator pushes its suite_ticket to the
 * broker's instruction URL every minute, as WeCom does every ten (7–15 observed).
 */
export const DEMO_SUITE = {
	suite_id: "wwdemosuite01",
	secret: "demo-suite-secret-not-real",
	token: "demoSuiteToken",
	// 43 characters of base64, as the suite's callback settings show one.
	encoding_aes_key: "demoSuiteEncodingAESKeyNotReal0123456789abc",
	provider_corpid: "wwdemoprovider01",
	provider_secret: "demo-provider-secret-not-real",
};
/** A company the printed demo installs the suite in (WeCom's install page played by the simulator). */
export const DEMO_SUITE_CORPID = "wwdemocustomer01";
/** The agent of that company's install (the printed install names it to the simulator): its app is `<corpid>-<agentid>`. */
export const DEMO_SUITE_AGENTID = "1000001";
/** Where the demo's install link sends the browser back: the vendor's own page, never fetched here. */
export const DEMO_SUITE_REDIRECT_URI = "https://vendor.example.com/wecom/installed";
/** The simulator's ticket pushes to the demo component's event URL and the demo suite's instruction URL, every minute. */
export const DEMO_PUSH_INTERVAL_S = 60;

/** Admin, every app: /status, /token/refresh and the dashboard. */
export const DEMO_ADMIN_KEY = "demo-key-change-me-0123456789";
/** Not admin, first app only: try it on /status or on the second app for a 403. */
export const DEMO_READER_KEY = "demo-reader-key-0123456789";

/** @type {readonly { name: string, key: string, apps: string[], admin?: boolean }[]} */
export const DEMO_KEYS = [
	{ name: "demo-admin", key: DEMO_ADMIN_KEY, apps: ["*"], admin: true },
	{ name: "demo-reader", key: DEMO_READER_KEY, apps: [DEMO_APPS[0]?.appid ?? ""] },
];
