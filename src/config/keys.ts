/**
 * API_KEYS: who may call the broker (`name`, `key` plain or as `sha256:<hex>`, the `apps` it may read, and
 * whether it is an `admin`). Validated once per isolate with messages that say how to fix the entry,
 * never quoting a key.
 */
import { isRecord } from "./apps";
import type { ApiKeyConfig, AppConfig } from "./types";
import { ConfigError } from "./error";


/** A plain key shorter than this is guessable; `openssl rand -hex 24` gives 48 characters. */
const MIN_PLAIN_KEY_CHARS = 16;
const SHA256_KEY_PATTERN = /^sha256:([0-9a-fA-F]{64})$/;
/** What a bearer token may contain (RFC 6750 §2.1 b64token); Hono's bearerAuth refuses anything else. */
const BEARER_KEY_PATTERN = /^[A-Za-z0-9._~+/-]+=*$/;
const KEY_HINT = "generate one with `openssl rand -hex 24`";
const GROUP_SCOPE_PATTERN = /^(?:corp|component|suite|provider):[A-Za-z0-9_-]{1,64}$/;
/** The shape of API_KEYS, quoted in messages about it. */
export const KEYS_EXAMPLE = '[{"name":"billing","key":"sha256:<hex>","apps":["wx…"],"admin":false}]';

/**
 * `entries`: API_KEYS already parsed as a non-empty JSON array. `apps` null: scopes are not checked against
 * WECHAT_APPS (it may be the broken part).
 */
export function parseKeys(entries: readonly unknown[], apps: ReadonlyMap<string, AppConfig> | null): ApiKeyConfig[] {
	const names = new Set<string>();
	return entries.map((entry, index) => {
		const where = `API_KEYS[${index}]`;
		if (!isRecord(entry)) throw new ConfigError(`${where} must be an object like ${KEYS_EXAMPLE.slice(1, -1)}.`);
		const { name, key, apps: scope, admin = false } = entry;
		if (typeof name !== "string" || name.trim() === "") {
			throw new ConfigError(`${where}.name must name the service that holds the key (it appears in logs).`);
		}
		if (names.has(name)) throw new ConfigError(`${where}: the name "${name}" is used twice; names must be unique.`);
		names.add(name);
		const label = `${where} ("${name}")`;
		if (typeof key !== "string") {
			throw new ConfigError(`${label}.key must be a string: the key itself, or "sha256:" + its hex SHA-256; ${KEY_HINT}.`);
		}
		const hashed = SHA256_KEY_PATTERN.exec(key);
		if (!hashed && key.startsWith("sha256:")) {
			throw new ConfigError(`${label}.key starts with "sha256:" but is not followed by 64 hex digits (\`printf %s "$KEY" | sha256sum\`).`);
		}
		if (!hashed && !BEARER_KEY_PATTERN.test(key)) {
			throw new ConfigError(`${label}.key has characters a bearer token cannot carry; use letters, digits and . _ ~ + / - only; ${KEY_HINT}.`);
		}
		if (!hashed && key.length < MIN_PLAIN_KEY_CHARS) {
			throw new ConfigError(`${label}.key is shorter than ${MIN_PLAIN_KEY_CHARS} characters; ${KEY_HINT}.`);
		}
		if (typeof admin !== "boolean") throw new ConfigError(`${label}.admin must be true or false.`);
		return {
			name,
			sha256: hashed ? hexToBytes(hashed[1]!) : null,
			plain: hashed ? null : key,
			apps: parseScope(scope, label, apps),
			admin,
		};
	});
}

function parseScope(scope: unknown, label: string, apps: ReadonlyMap<string, AppConfig> | null): "*" | Set<string> {
	if (!Array.isArray(scope) || scope.length === 0 || !scope.every((a) => typeof a === "string")) {
		throw new ConfigError(`${label}.apps must be a non-empty array of appids (or "corp:<corpid>", "component:<component_appid>", "suite:<suite_id>", "provider:<corpid>"), or ["*"] for every app.`);
	}
	if (scope.includes("*")) return "*";
	for (const appid of scope) {
		// `corp:<corpid>` (every WeCom entry of the corp) `component:<appid>` (a component and its authorizers) `suite:<suite_id>` (a WeCom suite) and `provider:<corpid>` (a WeCom service provider).
		if (GROUP_SCOPE_PATTERN.test(appid)) continue;
		if (apps && !apps.has(appid)) {
			throw new ConfigError(`${label}.apps names ${appid}, which is not in WECHAT_APPS; add the app or fix the appid.`);
		}
	}
	return new Set(scope);
}

function hexToBytes(hex: string): Uint8Array {
	const bytes = new Uint8Array(hex.length / 2);
	for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
	return bytes;
}
