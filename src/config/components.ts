/**
 * WECHAT_COMPONENTS (and the body of PUT /admin/components/{component_appid}): the open-platform components
 * (第三方平台) the broker receives events and holds tokens for. Each has its AppSecret, the message token and
 * EncodingAESKey its event URL's pushes are signed and encrypted with (wechat/callback-crypto.ts), and the
 * daily quota of api_component_token. Validated with messages that say how to fix the entry, never quoting
 * a secret, the token or the key.
 */
import { APPID_PATTERN, isRecord } from "./apps";
import { ConfigError } from "./error";
import type { ComponentConfig } from "./types";

/**
 * api_component_token's daily quota is not documented: one user read 10,000 a day, another claims 2,000
 * (OPEN-PLATFORM.md §4). The lower one, so the quota guard errs on the safe side; set `daily_quota`.
 */
export const DEFAULT_COMPONENT_DAILY_QUOTA = 2_000;
/** The console generates 43 characters of [A-Za-z0-9] (WeChat's 消息加解密 plan). */
export const ENCODING_AES_KEY_PATTERN = /^[A-Za-z0-9]{43}$/;
/** The console accepts a token of 3-32 letters and digits. */
export const MESSAGE_TOKEN_PATTERN = /^[A-Za-z0-9]{3,32}$/;
export const COMPONENT_EXAMPLE = '{"component_appid":"wx…","secret":"<AppSecret>","token":"<message token>","encoding_aes_key":"<43 characters>"}';
export const COMPONENT_FIELDS = ["component_appid", "secret", "token", "encoding_aes_key", "daily_quota"] as const;

export function parseComponents(raw: string | undefined, apps: ReadonlyMap<string, unknown>): Map<string, ComponentConfig> {
	const components = new Map<string, ComponentConfig>();
	if (raw === undefined || raw.trim() === "") return components;
	let entries: unknown;
	try {
		entries = JSON.parse(raw);
	} catch {
		throw new ConfigError(`WECHAT_COMPONENTS is not valid JSON: it must be a JSON array like [${COMPONENT_EXAMPLE}], or unset.`);
	}
	if (!Array.isArray(entries)) throw new ConfigError(`WECHAT_COMPONENTS must be a JSON array like [${COMPONENT_EXAMPLE}].`);
	entries.forEach((entry, index) => {
		const where = `WECHAT_COMPONENTS[${index}]`;
		if (!isRecord(entry)) throw new ConfigError(`${where} must be an object like ${COMPONENT_EXAMPLE}.`);
		const component = parseComponentEntry(entry, where, "secret");
		if (components.has(component.componentAppid)) throw new ConfigError(`${where}: ${component.componentAppid} is listed twice; keep one entry per component.`);
		// One object per id: a component appid is never an account's (WeChat gives each its own appid).
		if (apps.has(component.componentAppid)) throw new ConfigError(`${where}: ${component.componentAppid} is also in WECHAT_APPS; a component's appid is not an account's, so list it in one place only.`);
		components.set(component.componentAppid, component);
	});
	return components;
}

export function parseComponentEntry(entry: Record<string, unknown>, where: string, source: ComponentConfig["source"]): ComponentConfig {
	const unknown = Object.keys(entry).find((field) => !(COMPONENT_FIELDS as readonly string[]).includes(field));
	if (unknown !== undefined) throw new ConfigError(`${where}: unknown field ${JSON.stringify(unknown.slice(0, 64))}; the fields are ${COMPONENT_FIELDS.join(", ")}.`);
	const { component_appid, secret, token, encoding_aes_key, daily_quota = DEFAULT_COMPONENT_DAILY_QUOTA } = entry;
	if (typeof component_appid !== "string" || !APPID_PATTERN.test(component_appid)) {
		throw new ConfigError(`${where}: component_appid must be the component's AppID (1-64 letters, digits, _ or -).`);
	}
	if (typeof secret !== "string" || secret.trim() === "") throw new ConfigError(`${where} (${component_appid}): secret must be the component's AppSecret, a non-empty string.`);
	if (typeof token !== "string" || !MESSAGE_TOKEN_PATTERN.test(token)) {
		throw new ConfigError(`${where} (${component_appid}): token must be the message token set in the component's console, 3-32 letters and digits.`);
	}
	if (typeof encoding_aes_key !== "string" || !ENCODING_AES_KEY_PATTERN.test(encoding_aes_key)) {
		throw new ConfigError(`${where} (${component_appid}): encoding_aes_key must be the console's EncodingAESKey, 43 letters and digits.`);
	}
	if (!Number.isSafeInteger(daily_quota) || (daily_quota as number) < 1) {
		throw new ConfigError(`${where} (${component_appid}): daily_quota must be a whole number of api_component_token calls a day, at least 1.`);
	}
	return { componentAppid: component_appid, source, secret, token, encodingAesKey: encoding_aes_key, dailyQuota: daily_quota as number };
}
