/**
 * Configuration: parsed and validated once per isolate, with messages that say how to fix it.
 *
 * A broken configuration is an operator's mistake, not a client's: every route but /healthz answers 500
 * with the message below (never the secret itself), so the first request after a bad `wrangler secret put`
 * says exactly what is wrong.
 *
 * WECHAT_APPS entries are checked in config-apps.ts and API_KEYS entries in config-keys.ts; this module reads
 * the variables, checks the rest and caches the result.
 */
import { ipRestriction } from "hono/ip-restriction";
import { isRecord, parseApps } from "./apps";
import { ConfigError } from "./error";
import { KEYS_EXAMPLE, parseKeys } from "./keys";
import { parseComponents } from "./components";
import { parseSuites } from "./suites";
import type { ApiKeyConfig, AppConfig, ComponentConfig, SuiteConfig } from "./types";
import type { AppEnv } from "../env";

export { APPID_PATTERN } from "./apps";
export type { ApiKeyConfig, AppConfig, AppProfile, AppSource, ComponentConfig, ComponentProfile, SuiteConfig, SuiteProfile, TokenMode } from "./types";
export { ConfigError } from "./error";

export interface BrokerConfig {
	/** Without a trailing slash. */
	readonly apiBase: string;
	/** WeCom's upstream base, without a trailing slash. */
	readonly weComBase: string;
	/** The apps of WECHAT_APPS; the registry's are looked up by id (registry/lookup.ts). */
	readonly apps: ReadonlyMap<string, AppConfig>;
	/** The open-platform components of WECHAT_COMPONENTS; the registry's are looked up by id (registry/lookup.ts). */
	readonly components: ReadonlyMap<string, ComponentConfig>;
	/** The WeCom suites of WECOM_SUITES; the registry's are looked up by id (registry/lookup.ts). */
	readonly suites: ReadonlyMap<string, SuiteConfig>;
	/** The keys of API_KEYS; the registry's are looked up by digest (registry/lookup.ts). */
	readonly keys: readonly ApiKeyConfig[];
	/**
	 * REGISTRY_KEY is set, so the registry may hold apps and keys. Only its presence: a malformed key is
	 * refused where a secret is sealed or opened (registry/seal.ts), never here, so it cannot break the
	 * apps of WECHAT_APPS.
	 */
	readonly registry: boolean;
	/** CIDRs or addresses allowed to call the broker; empty means any. */
	readonly allowedIps: readonly string[];
	/** Optional incoming-webhook URL for alerts (WeCom, Feishu, Slack or any JSON receiver). */
	readonly alertWebhookUrl: string | null;
	/** Share of an app's daily quota after which refreshes that are not needed for correctness are refused. */
	readonly quotaGuardShare: number;
	/** Per upstream attempt. */
	readonly upstreamTimeoutMs: number;
	/** Added to every upstream WeChat/WeCom call (never to the alert webhook), so a relay can admit only the broker. */
	readonly relayHeaders: Readonly<Record<string, string>>;
}

export const DEFAULT_API_BASE = "https://api.weixin.qq.com";
export const DEFAULT_WECOM_API_BASE = "https://qyapi.weixin.qq.com";
/** Half the quota stays reserved for scheduled refreshes, whatever clients or admins ask for. */
export const DEFAULT_QUOTA_GUARD_SHARE = 0.5;
/** WeChat answers in well under a second; a relay or network that hangs must not hold readers long. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 5_000;

/** Hosts whose traffic never leaves the machine. */
const LOOPBACK_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

type ConfigSource = Pick<AppEnv, "API_KEYS"> & {
	WECHAT_APPS?: string;
	REGISTRY_KEY?: string;
	WECHAT_API_BASE?: string;
	WECOM_API_BASE?: string;
	ALLOWED_IPS?: string;
	ALERT_WEBHOOK_URL?: string;
	QUOTA_GUARD_SHARE?: string;
	WECHAT_TIMEOUT_MS?: string;
	WECHAT_RELAY_HEADERS?: string;
	WECHAT_COMPONENTS?: string;
	WECOM_SUITES?: string;
};

const OPTIONAL_VARS = ["WECOM_API_BASE", "ALLOWED_IPS", "ALERT_WEBHOOK_URL", "QUOTA_GUARD_SHARE", "WECHAT_TIMEOUT_MS", "WECHAT_RELAY_HEADERS", "WECHAT_COMPONENTS", "WECOM_SUITES"] as const;

let cached: { source: readonly (string | boolean | undefined)[]; result: BrokerConfig | ConfigError } | undefined;

/** The validated configuration; throws ConfigError. Parsed once per distinct set of values. */
export function loadConfig(env: ConfigSource): BrokerConfig {
	// Compared value by value on every request: the same strings each time, so this is cheap.
	const source = [env.WECHAT_APPS, env.API_KEYS, env.WECHAT_API_BASE, hasRegistryKey(env), ...OPTIONAL_VARS.map((name) => env[name])];
	if (!cached || source.some((value, i) => value !== cached!.source[i])) {
		let result: BrokerConfig | ConfigError;
		try {
			result = parseConfig(env);
		} catch (error) {
			if (!(error instanceof ConfigError)) throw error;
			result = error;
		}
		cached = { source, result };
	}
	if (cached.result instanceof ConfigError) throw cached.result;
	return cached.result;
}

function parseConfig(env: ConfigSource): BrokerConfig {
	try {
		return parseValidConfig(env);
	} catch (error) {
		if (error instanceof ConfigError) {
			try {
				error.adminKeys = parseKeys(parseJsonArray(env.API_KEYS, "API_KEYS", KEYS_EXAMPLE), null).filter((key) => key.admin);
			} catch {
				// API_KEYS is the broken part: nobody can be told more than "see the logs".
			}
		}
		throw error;
	}
}

function hasRegistryKey(env: ConfigSource): boolean {
	return env.REGISTRY_KEY !== undefined && env.REGISTRY_KEY.trim() !== "";
}

const APPS_EXAMPLE = '[{"appid":"wx…","secret":"…","mode":"stable"}]';

function parseValidConfig(env: ConfigSource): BrokerConfig {
	const registry = hasRegistryKey(env);
	// With a registry, apps may all be added through /admin/apps; without one, WECHAT_APPS is the only source.
	const apps = registry && (env.WECHAT_APPS === undefined || env.WECHAT_APPS.trim() === "" || env.WECHAT_APPS.trim() === "[]")
		? new Map<string, AppConfig>()
		: parseApps(parseJsonArray(env.WECHAT_APPS, "WECHAT_APPS", APPS_EXAMPLE, " (or set REGISTRY_KEY and add apps through PUT /admin/apps/{appid})"));
	return {
		registry,
		apiBase: parseApiBase(env.WECHAT_API_BASE, "WECHAT_API_BASE", DEFAULT_API_BASE),
		weComBase: parseApiBase(env.WECOM_API_BASE, "WECOM_API_BASE", DEFAULT_WECOM_API_BASE),
		apps,
		components: parseComponents(env.WECHAT_COMPONENTS, apps),
		suites: parseSuites(env.WECOM_SUITES),
		// A scope may name a registry app, which this isolate cannot see here: check scopes only without one.
		keys: parseKeys(parseJsonArray(env.API_KEYS, "API_KEYS", KEYS_EXAMPLE), registry ? null : apps),
		allowedIps: parseAllowedIps(env.ALLOWED_IPS),
		alertWebhookUrl: parseWebhookUrl(env.ALERT_WEBHOOK_URL),
		quotaGuardShare: parseQuotaGuardShare(env.QUOTA_GUARD_SHARE, apps),
		upstreamTimeoutMs: parseNumber(env.WECHAT_TIMEOUT_MS, "WECHAT_TIMEOUT_MS", DEFAULT_UPSTREAM_TIMEOUT_MS, 100, 60_000,
			"milliseconds per WeChat call, between 100 and 60000"),
		relayHeaders: parseRelayHeaders(env.WECHAT_RELAY_HEADERS),
	};
}

/**
 * Refused rather than reinterpreted: a guard of 0 calls (share 0, or a tiny daily_quota × share) would make
 * an idle app "quota nearly spent" and refuse every invalidation, which no operator means.
 */
function parseQuotaGuardShare(raw: string | undefined, apps: ReadonlyMap<string, AppConfig>): number {
	const share = parseNumber(raw, "QUOTA_GUARD_SHARE", DEFAULT_QUOTA_GUARD_SHARE, Number.MIN_VALUE, 1,
		"a share of the daily quota above 0 and at most 1, e.g. 0.5 (1 turns the guard off)");
	for (const app of apps.values()) {
		if (Math.floor(app.dailyQuota * share) < 1) {
			throw new ConfigError(`App ${app.appid}: daily_quota ${app.dailyQuota} × QUOTA_GUARD_SHARE ${share} leaves no forced refresh at all; raise the app's daily_quota or QUOTA_GUARD_SHARE so that the product is at least 1.`);
		}
	}
	return share;
}

/** RFC 9110 §5.1: a field name is a token. */
const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110 §5.5: a field value is visible characters, spaces and tabs; CR, LF or NUL would split the request. */
const HEADER_VALUE_PATTERN = /^[\t\x20-\x7e\x80-\xff]*$/;
/**
 * Headers the broker or the HTTP layer own: hop-by-hop ones (RFC 9110 §7.6.1) mean nothing past the next
 * hop, and Host, Content-Length and Content-Type describe the request the broker builds.
 */
const RESERVED_HEADERS = new Set([
	"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
	"transfer-encoding", "upgrade", "host", "content-length", "content-type",
]);
const RELAY_EXAMPLE = '{"X-Relay-Key": "<openssl rand -hex 24>"}';

/** Header names may be quoted in messages; values are secrets and never are. */
function parseRelayHeaders(raw: string | undefined): Record<string, string> {
	if (raw === undefined || raw.trim() === "") return {};
	let value: unknown;
	try {
		value = JSON.parse(raw);
	} catch {
		throw new ConfigError(`WECHAT_RELAY_HEADERS is not valid JSON: it must be a JSON object like ${RELAY_EXAMPLE}, or unset.`);
	}
	if (!isRecord(value)) throw new ConfigError(`WECHAT_RELAY_HEADERS must be a JSON object of header names to string values, like ${RELAY_EXAMPLE}.`);
	const headers: Record<string, string> = {};
	for (const [name, headerValue] of Object.entries(value)) {
		if (!HEADER_NAME_PATTERN.test(name)) {
			throw new ConfigError(`WECHAT_RELAY_HEADERS: ${JSON.stringify(name.slice(0, 64))} is not a valid header name; use letters, digits and - (e.g. X-Relay-Key).`);
		}
		if (RESERVED_HEADERS.has(name.toLowerCase())) {
			throw new ConfigError(`WECHAT_RELAY_HEADERS: ${name} is set by the broker or the HTTP connection itself; use a header of your own, e.g. X-Relay-Key.`);
		}
		if (typeof headerValue !== "string") {
			throw new ConfigError(`WECHAT_RELAY_HEADERS: the value of ${name} must be a string, like ${RELAY_EXAMPLE}.`);
		}
		if (!HEADER_VALUE_PATTERN.test(headerValue)) {
			throw new ConfigError(`WECHAT_RELAY_HEADERS: the value of ${name} contains a line break or control character; use printable characters only.`);
		}
		headers[name] = headerValue;
	}
	return headers;
}

function parseNumber(raw: string | undefined, name: string, fallback: number, min: number, max: number, what: string): number {
	if (raw === undefined || raw.trim() === "") return fallback;
	const value = Number(raw);
	if (!Number.isFinite(value) || value < min || value > max) throw new ConfigError(`${name} must be ${what}.`);
	return value;
}

/**
 * Each rule goes through Hono's own parser, which app.ts uses to match addresses, so a rule accepted here
 * is one it understands, and a bad one is named in the message.
 */
function parseAllowedIps(raw: string | undefined): string[] {
	if (raw === undefined || raw.trim() === "") return [];
	const rules = raw.split(",").map((rule) => rule.trim()).filter(Boolean);
	for (const rule of rules) {
		try {
			ipRestriction(() => "", { allowList: [rule] });
		} catch {
			throw new ConfigError(`ALLOWED_IPS: "${rule}" is not an IPv4 or IPv6 address or CIDR; use a comma-separated list like 203.0.113.0/24, 2001:db8::/32.`);
		}
	}
	return rules;
}

function parseWebhookUrl(raw: string | undefined): string | null {
	if (raw === undefined || raw.trim() === "") return null;
	let url: URL;
	try {
		url = new URL(raw.trim());
	} catch {
		// The URL usually embeds the webhook's own secret key: never quote it.
		throw new ConfigError("ALERT_WEBHOOK_URL is not a URL: set it to your WeCom, Feishu or Slack incoming-webhook URL, or remove it.");
	}
	if (url.protocol !== "https:" && url.protocol !== "http:") throw new ConfigError("ALERT_WEBHOOK_URL must be an http(s) URL.");
	return url.toString();
}

function parseApiBase(raw: string | undefined, name: string, fallback: string): string {
	const value = raw?.trim() || fallback;
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw new ConfigError(`${name} is not a URL: set it to ${fallback} or to your fixed-IP relay.`);
	}
	if (url.protocol !== "https:" && url.protocol !== "http:") {
		throw new ConfigError(`${name} must be an http(s) URL, e.g. ${fallback}.`);
	}
	// Classic mode puts the AppSecret in the URL and stable mode in the body: plain http only where it
	// cannot leave the machine (the simulator, a relay on the same host).
	if (url.protocol === "http:" && !LOOPBACK_HOSTS.test(url.hostname)) {
		throw new ConfigError(`${name} must use https:// (the AppSecret travels to it); plain http:// is allowed only for loopback (127.0.0.1, localhost, [::1]).`);
	}
	return value.replace(/\/+$/, "");
}

function parseJsonArray(raw: string | undefined, name: string, example: string, alternative = ""): unknown[] {
	if (raw === undefined || raw.trim() === "") {
		throw new ConfigError(`${name} is not set: run \`wrangler secret put ${name}\` (locally: add it to .dev.vars) with a JSON array like ${example}${alternative}.`);
	}
	let value: unknown;
	try {
		value = JSON.parse(raw);
	} catch {
		// JSON.parse's own message quotes the input, which holds secrets: never pass it on.
		throw new ConfigError(`${name} is not valid JSON: it must be a JSON array like ${example}.`);
	}
	if (!Array.isArray(value) || value.length === 0) {
		throw new ConfigError(`${name} must be a non-empty JSON array like ${example}${alternative}.`);
	}
	return value;
}
