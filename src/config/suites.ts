/**
 * WECOM_SUITES (and the body of PUT /admin/suites/{suite_id}): the WeCom suites (第三方应用 and 代开发
 * templates) the broker receives instruction callbacks for. Each has its Secret, the message token and
 * EncodingAESKey its callbacks are signed and encrypted with (wechat/callback-crypto.ts), and optionally the
 * service provider's corpid and provider secret: the corpid is the receiver id of the URL check WeCom makes
 * when the callback URL is saved (OPEN-PLATFORM.md §1), the secret what get_provider_token takes. Validated
 * with messages that say how to fix the entry, never quoting a secret, the token or the key.
 */
import { APPID_PATTERN, isRecord } from "./apps";
import { ENCODING_AES_KEY_PATTERN, MESSAGE_TOKEN_PATTERN } from "./components";
import { ConfigError } from "./error";
import type { SuiteConfig } from "./types";

export const SUITE_EXAMPLE = '{"suite_id":"ww…","secret":"<suite Secret>","token":"<message token>","encoding_aes_key":"<43 characters>","provider_corpid":"ww…"}';
export const SUITE_FIELDS = ["suite_id", "secret", "token", "encoding_aes_key", "provider_corpid", "provider_secret"] as const;

export function parseSuites(raw: string | undefined): Map<string, SuiteConfig> {
	const suites = new Map<string, SuiteConfig>();
	if (raw === undefined || raw.trim() === "") return suites;
	let entries: unknown;
	try {
		entries = JSON.parse(raw);
	} catch {
		throw new ConfigError(`WECOM_SUITES is not valid JSON: it must be a JSON array like [${SUITE_EXAMPLE}], or unset.`);
	}
	if (!Array.isArray(entries)) throw new ConfigError(`WECOM_SUITES must be a JSON array like [${SUITE_EXAMPLE}].`);
	entries.forEach((entry, index) => {
		const where = `WECOM_SUITES[${index}]`;
		if (!isRecord(entry)) throw new ConfigError(`${where} must be an object like ${SUITE_EXAMPLE}.`);
		const suite = parseSuiteEntry(entry, where, "secret");
		if (suites.has(suite.suiteId)) throw new ConfigError(`${where}: ${suite.suiteId} is listed twice; keep one entry per suite.`);
		// One provider, one secret: its token lives in one object (provider:<corpid>) whichever suite carries it.
		const sibling = [...suites.values()].find((s) => s.providerCorpid === suite.providerCorpid && s.providerSecret !== undefined && suite.providerSecret !== undefined && s.providerSecret !== suite.providerSecret);
		if (sibling) throw new ConfigError(`${where} (${suite.suiteId}): provider_secret differs from ${sibling.suiteId}'s for the same provider_corpid ${suite.providerCorpid}; a provider has one ProviderSecret: give both suites the current one.`);
		suites.set(suite.suiteId, suite);
	});
	return suites;
}

export function parseSuiteEntry(entry: Record<string, unknown>, where: string, source: SuiteConfig["source"]): SuiteConfig {
	const unknown = Object.keys(entry).find((field) => !(SUITE_FIELDS as readonly string[]).includes(field));
	if (unknown !== undefined) throw new ConfigError(`${where}: unknown field ${JSON.stringify(unknown.slice(0, 64))}; the fields are ${SUITE_FIELDS.join(", ")}.`);
	const { suite_id, secret, token, encoding_aes_key, provider_corpid, provider_secret } = entry;
	if (typeof suite_id !== "string" || !APPID_PATTERN.test(suite_id)) {
		throw new ConfigError(`${where}: suite_id must be the suite's SuiteID from the provider console (1-64 letters, digits, _ or -).`);
	}
	if (typeof secret !== "string" || secret.trim() === "") throw new ConfigError(`${where} (${suite_id}): secret must be the suite's Secret, a non-empty string.`);
	if (typeof token !== "string" || !MESSAGE_TOKEN_PATTERN.test(token)) {
		throw new ConfigError(`${where} (${suite_id}): token must be the Token of the suite's callback settings, 3-32 letters and digits.`);
	}
	if (typeof encoding_aes_key !== "string" || !ENCODING_AES_KEY_PATTERN.test(encoding_aes_key)) {
		throw new ConfigError(`${where} (${suite_id}): encoding_aes_key must be the EncodingAESKey of the suite's callback settings, 43 letters and digits.`);
	}
	if (provider_corpid !== undefined && (typeof provider_corpid !== "string" || !APPID_PATTERN.test(provider_corpid))) {
		throw new ConfigError(`${where} (${suite_id}): provider_corpid must be the service provider's CorpID (1-64 letters, digits, _ or -), or left out.`);
	}
	if (provider_secret !== undefined) {
		if (typeof provider_secret !== "string" || provider_secret.trim() === "") {
			throw new ConfigError(`${where} (${suite_id}): provider_secret must be the provider's ProviderSecret, a non-empty string, or left out.`);
		}
		if (provider_corpid === undefined) throw new ConfigError(`${where} (${suite_id}): provider_secret needs provider_corpid (get_provider_token takes both); add the provider's CorpID.`);
	}
	return {
		suiteId: suite_id, source, secret, token, encodingAesKey: encoding_aes_key,
		...(provider_corpid !== undefined && { providerCorpid: provider_corpid as string }),
		...(provider_secret !== undefined && { providerSecret: provider_secret as string }),
	};
}
