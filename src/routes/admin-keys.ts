/**
 * The admin API for keys (DESIGN.md, "Apps and keys at runtime: the registry"):
 *   POST   /admin/keys          a new key: generated and shown once, or registered by its digest
 *   GET    /admin/keys          every key, both sources, by name, paged: names, scopes, roles, never a digest
 *   PUT    /admin/keys/{name}   a new scope or role (the key itself never changes)
 *   DELETE /admin/keys/{name}   revoked
 * Only an admin key scoped to every app manages keys. A registry key is stored as its SHA-256 only.
 */
import type { Context, Hono } from "hono";
import type { BrokerEnv } from "../access/reads";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import { noteKeysChanged } from "../registry/lookup";
import { registry, type KeyRow, type RegisteredKey } from "../registry/registry";
import { toHex } from "../registry/seal";
import { decodeCursor, pageLimit, pageOf, readAdminBody, requireFullAdmin } from "./admin-input";

const KEY_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const SHA256_KEY_PATTERN = /^sha256:([0-9a-f]{64})$/;
/** A scope entry: an appid, every WeCom entry of a corp, or a component and the accounts that authorised it. */
const SCOPE_PATTERN = /^(?:(?:corp|component|suite|provider):)?[A-Za-z0-9_-]{1,64}$/;
/** 24 random bytes, as `openssl rand -hex 24` would give; the prefix lets secret scanners find a leaked key. */
const GENERATED_KEY_BYTES = 24;
const GENERATED_KEY_PREFIX = "wxb_";
const MAX_KEYS_PAGE = 500;
const DEFAULT_KEYS_PAGE = 100;
const KEY_EXAMPLE = '{"name": "billing", "apps": ["wx…"], "admin": false}';

function nameParam(c: Context<BrokerEnv>): string {
	const name = c.req.param("name") ?? "";
	if (!KEY_NAME_PATTERN.test(name)) throw new BrokerError("bad_request", "A key name is 1–64 letters, digits, _ . or -.");
	return name;
}

function parseScope(raw: unknown): RegisteredKey["apps"] {
	if (!Array.isArray(raw) || raw.length === 0 || !raw.every((entry) => typeof entry === "string")) {
		throw new BrokerError("bad_request", 'apps must be a non-empty array: appids, "corp:<corpid>", "component:<component_appid>", "suite:<suite_id>", "provider:<corpid>", or ["*"] for every app.');
	}
	if (raw.includes("*")) return "*";
	const bad = raw.find((entry) => !SCOPE_PATTERN.test(entry));
	if (bad !== undefined) throw new BrokerError("bad_request", `apps: ${JSON.stringify(bad.slice(0, 80))} is not an appid, "corp:<corpid>", "component:<component_appid>", "suite:<suite_id>" or "provider:<corpid>".`);
	return [...new Set(raw as string[])].sort();
}

function parseAdmin(raw: unknown): boolean {
	if (raw === undefined) return false;
	if (typeof raw !== "boolean") throw new BrokerError("bad_request", "admin must be true or false.");
	return raw;
}

function publicKey(row: Pick<KeyRow, "name" | "apps" | "admin"> & Partial<KeyRow>, source: "secret" | "registry"): Record<string, unknown> {
	return {
		name: row.name, apps: row.apps, admin: row.admin, source,
		...(row.created_at !== undefined && { created_at: new Date(row.created_at).toISOString() }),
		...(row.updated_at !== undefined && { updated_at: new Date(row.updated_at).toISOString() }),
	};
}

function fromSecretConflict(name: string): BrokerError {
	return new BrokerError("conflict", `The key "${name}" is configured in the API_KEYS secret, which the admin API cannot change; edit it there (\`wrangler secret put API_KEYS\`).`);
}

async function sha256Hex(text: string): Promise<string> {
	return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

export function mountAdminKeys(app: Hono<BrokerEnv>): void {
	app.post("/admin/keys", async (c) => {
		requireFullAdmin(c.get("principal"));
		// Without REGISTRY_KEY the broker never looks registry keys up: a key made now would work nowhere.
		if (!c.get("config").registry) throw new BrokerError("bad_request", "REGISTRY_KEY is not set, so registry keys are not honoured: set it (`openssl rand -base64 32 | wrangler secret put REGISTRY_KEY`), or add the key to API_KEYS.");
		const body = await readAdminBody(c, ["name", "apps", "admin", "key"], KEY_EXAMPLE);
		if (typeof body.name !== "string" || !KEY_NAME_PATTERN.test(body.name)) {
			throw new BrokerError("bad_request", "name must be 1–64 letters, digits, _ . or -: the service that holds the key (it appears in logs).");
		}
		const name = body.name;
		const apps = parseScope(body.apps);
		const admin = parseAdmin(body.admin);
		if (body.key !== undefined && (typeof body.key !== "string" || !SHA256_KEY_PATTERN.test(body.key))) {
			throw new BrokerError("bad_request", 'key, when given, must be "sha256:" + the 64 lower-case hex digits of the key\'s SHA-256 (`printf %s "$KEY" | sha256sum`); leave it out to have a key generated.');
		}
		const config = c.get("config");
		if (config.keys.some((key) => key.name === name)) throw fromSecretConflict(name);
		const generated = body.key === undefined ? GENERATED_KEY_PREFIX + toHex(crypto.getRandomValues(new Uint8Array(GENERATED_KEY_BYTES))) : null;
		const digest = generated === null ? SHA256_KEY_PATTERN.exec(body.key as string)![1]! : await sha256Hex(generated);
		if (await matchesSecretKey(config.keys, digest)) {
			throw new BrokerError("conflict", "That key is already in API_KEYS under another name; register a different key.");
		}
		const result = await registry(c.env).createKey(name, digest, apps, admin);
		if (!result.ok) {
			throw new BrokerError("conflict", result.conflict === "name"
				? `A key named "${name}" exists; PUT /admin/keys/${name} changes it, DELETE revokes it.`
				: "That key is already registered under another name; register a different key.");
		}
		noteKeysChanged();
		log("info", "admin_key_created", { name, key: c.get("principal").name, admin, generated: generated !== null });
		// The only time the key is ever shown: the registry keeps its digest alone.
		return c.json({ ...publicKey(result.row, "registry"), ...(generated !== null && { key: generated }) }, 201);
	});

	app.get("/admin/keys", async (c) => {
		requireFullAdmin(c.get("principal"));
		const limit = pageLimit(c.req.query("limit"), DEFAULT_KEYS_PAGE, MAX_KEYS_PAGE);
		const after = decodeCursor(c.req.query("cursor"), KEY_NAME_PATTERN);
		const config = c.get("config");
		const fromSecret = config.keys.filter((key) => after === null || key.name > after)
			.map((key) => publicKey({ name: key.name, apps: key.apps === "*" ? "*" : [...key.apps], admin: key.admin }, "secret"));
		const registered = config.registry ? (await registry(c.env).listKeys(after, limit + 1)).map((row) => publicKey(row, "registry")) : [];
		const merged = [...fromSecret, ...registered].sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : 1));
		const page = pageOf(merged, (k) => k.name as string, limit);
		return c.json({ keys: page.items, next_cursor: page.next_cursor });
	});

	app.put("/admin/keys/:name", async (c) => {
		requireFullAdmin(c.get("principal"));
		const name = nameParam(c);
		if (c.get("config").keys.some((key) => key.name === name)) throw fromSecretConflict(name);
		const body = await readAdminBody(c, ["apps", "admin"], '{"apps": ["wx…"], "admin": false}');
		if (body.apps === undefined && body.admin === undefined) throw new BrokerError("bad_request", "Send apps, admin or both: the key's new scope or role.");
		const change = { ...(body.apps !== undefined && { apps: parseScope(body.apps) }), ...(body.admin !== undefined && { admin: parseAdmin(body.admin) }) };
		const row = await registry(c.env).updateKey(name, change);
		if (!row) throw new BrokerError("not_found", `There is no registry key named "${name}"; POST /admin/keys creates one.`);
		noteKeysChanged();
		log("info", "admin_key_changed", { name, key: c.get("principal").name });
		return c.json(publicKey(row, "registry"));
	});

	app.delete("/admin/keys/:name", async (c) => {
		requireFullAdmin(c.get("principal"));
		const name = nameParam(c);
		// The registry's key first: one that shares its name with a later API_KEYS entry can still be revoked.
		const deleted = c.get("config").registry ? await registry(c.env).deleteKey(name) : null;
		if (deleted === null && c.get("config").keys.some((key) => key.name === name)) throw fromSecretConflict(name);
		if (deleted === null) throw new BrokerError("not_found", `There is no registry key named "${name}".`);
		noteKeysChanged(deleted.digest);
		log("warn", "admin_key_revoked", { name, key: c.get("principal").name });
		// This isolate refuses the key at once; others once KV shows the delete (retried every 2 s if refused).
		return c.json({ revoked: name, ...(deleted.kvPending > 0 && { kv_writes_pending: deleted.kvPending }) });
	});
}

/** True when an API_KEYS key has this digest: one key must not authenticate as two names. */
async function matchesSecretKey(keys: readonly { sha256: Uint8Array | null; plain: string | null }[], digest: string): Promise<boolean> {
	for (const key of keys) {
		const hex = key.sha256 ? toHex(key.sha256) : await sha256Hex(key.plain ?? "");
		if (hex === digest) return true;
	}
	return false;
}
