/**
 * Every storage and KV key the broker uses, built in one place.
 *
 * Durable Object storage (one object per app, `idFromName(appid)`):
 *   "state" → AuthorityState (engine/state.ts): per credential kind (token, jsapi, wx_card, agent_config)
 *             the current CredentialRecord, the previous value and when it stops being accepted (by WeChat,
 *             and by the gateway: issuedUntil), the last refresh and last error, the failure backoff, the
 *             forced-refresh stamp, the in-flight marker, the record KV holds and when KV last refused a
 *             write of it (edgeFailedAt); and for the app today's (and this hour's) upstream call counts, the incident and
 *             queued alerts.
 *   "gateway" → the app's gateway calls and heals today (authority/gateway-usage.ts), added in batches.
 *   "registered" → RegisteredApp (authority/registered-app.ts), for an app added through the admin API: its
 *             profile and its secret sealed with REGISTRY_KEY (registry/seal.ts). The secret never leaves
 *             this object; it is opened in memory when a credential is fetched.
 *   the object's alarm (not a key) → its next due moment (authority/alarm-chain.ts, engine/next-wake.ts).
 *
 * The ScheduleIndex Durable Object (one per deployment, `idFromName("schedule:v1")`, SQLite;
 * schedule/schedule-index.ts): table apps (appid, source, due_at, serving_until, fetched, last_refresh_at,
 *   incident_since, incident_reason, updated_at), one row per app sent by its object when its plan changes;
 *   what the watchdog cron, /status and /health read.
 *
 * Durable Object storage of an open-platform component (a TokenAuthority named "component:<component_appid>",
 * so that it never shares an object with an app of the same id; authority/component.ts):
 *   "component" → StoredComponent, for a component added through the admin API: its profile and its secret,
 *             message token and EncodingAESKey, sealed together with REGISTRY_KEY (the component appid bound).
 *   "component_ticket" → StoredTicket: the newest component_verify_ticket WeChat pushed (by CreateTime), its
 *             CreateTime and when it arrived. Not sealed: without the component's secret it opens nothing, and
 *             it never leaves this object.
 *   "state" → AuthorityState, as an app's: the engine sees the component as an app whose appid is the
 *             object's name, component:<id> (authority/component-token.ts), and its component_access_token is
 *             that app's `token` slot. So its KV edge copy is "cred:v2:component:<id>:token", its issued
 *             records name appid "component:<id>" (no real appid has a `:`), and its row in the schedule
 *             index is "component:<id>".
 *
 *   "auth_code:<sha256 hex of an authorization code>" → CodeExchange (authority/authorizations.ts): a code
 *             WeChat pushed or the vendor's redirect page brought, pending (the code itself, until exchanged)
 *             or exchanged (which authorizer, its func_info): each code goes to api_query_auth once.
 *   "auth_pending:<sha256 hex of a code>" → { code, receivedAt }: a pushed code whose exchange has not yet
 *             succeeded (an evicted instance, WeChat unreachable); the component's alarm retries it.
 *
 * Durable Object storage of an authorizer (an account that authorised a component; its TokenAuthority is
 * named by its appid, like any app's; authority/authorizer.ts):
 *   "registered" → as a registry app's, with mode `authorizer` and its component: the "secret" sealed there is
 *             its authorizer_refresh_token, replaced (sealed again) whenever an answer carries a new one.
 *   "authorizer" → AuthorizerMark: since when it needs re-authorisation (61023 / 61003), or was revoked.
 *
 * Durable Object storage of a WeCom suite (a TokenAuthority named "suite:<suite_id>", its own name space
 * apart from apps and components; authority/suite.ts):
 *   "suite" → StoredSuite, for a suite added through the admin API: its profile and its secret, message
 *             token, EncodingAESKey and provider secret, sealed together with REGISTRY_KEY (the suite_id bound).
 *   "suite_ticket" → StoredSuiteTicket: the newest suite_ticket WeCom pushed (by its TimeStamp), that
 *             TimeStamp and when it arrived. Not sealed: without the suite's secret it opens nothing, and it
 *             never leaves this object.
 *   "install_code:<sha256 hex>" / "install_pending:<sha256 hex>" → the install codes' ledger, as a component's
 *             auth_code / auth_pending (authority/code-ledger.ts): each goes to get_permanent_code once.
 *   "install:<corpid>" → InstallRecord (authority/suite-installs.ts): the company's app (`<corpid>-<agentid>`),
 *             its name, when installed or uninstalled, and its permanent code sealed with REGISTRY_KEY (owner
 *             "suite:<suite_id>:corp:<corpid>"): the copy a sync re-adopts a company's object from if that
 *             object lost its storage (WeCom has no API that lists permanent codes).
 *
 * Durable Object storage of an installed company's app (mode `suite_corp`, named `<corpid>-<agentid>`):
 *   "registered" → as an authorizer's, the "secret" sealed there being its permanent code;
 *   "authorizer" → GrantMark (authority/sealed-grant.ts): since when it must install again (40084 / 40082),
 *             or when it was uninstalled (cancel_auth).
 *
 * The Registry Durable Object (one per deployment, `idFromName("registry")`, SQLite; registry/registry.ts):
 *   table apps (appid, profile JSON without secret, sealed_kid, created_at, updated_at): what /admin/apps pages;
 *   table keys (name, digest, apps JSON, admin, created_at, updated_at): the registered API keys, digests only;
 *   table components (component_appid, profile JSON without secrets, sealed_kid, created_at, updated_at);
 *   table suites (suite_id, profile JSON without secrets, sealed_kid, created_at, updated_at);
 *   table kv_outbox (key, value or NULL for a delete): KV writes not yet confirmed, retried from its alarm;
 *   table kv_outbox_owner (key, appid): the app whose deletion queued a delete, dropped if it is added again.
 *
 * Workers KV (TOKEN_CACHE), written only by the app's TokenAuthority, read by every Worker isolate:
 *   "cred:v2:<appid>:<type>" → CredentialRecord as JSON (type: token, jsapi, wx_card, agent_config), with a
 *             KV expiration no earlier than the value stops being served (and at least KV's 60 s minimum).
 *             Bump the version when the value's shape changes (v1 was "token:v1:<appid>", a TokenRecord).
 *   "issued:v1:<sha256 hex of a token>" → IssuedRecord (edge/issued-index.ts): which app issued the token
 *             and until when the gateway honours it, written before the token becomes current and beside each
 *             edge copy, rewritten when it is replaced (deleted after an admin refresh or a stable force_refresh), so the gateway can
 *             tell a token this broker issued (current, or replaced and still honoured) from a forged one;
 *             KV expires it with its `until` (at least KV's 60 s).
 *
 *
 * Workers KV (TOKEN_CACHE), written only by the Registry object (its kv_outbox), read on the hot path:
 *   "app:v1:<appid>" → AppProfile (config/types.ts) of a registry app: everything but the secret.
 *   "apikey:v1:<sha256 hex of the key>" → RegisteredKey (registry/lookup.ts): name, apps, admin.
 *   "corp:v1:<corpid>" → the ids of the corp's WeCom registry entries (for /cgi-bin/gettoken by corpid).
 *   "component:v1:<component_appid>" → ComponentProfile (config/types.ts) of a registry component: no secrets.
 *   "suite:v1:<suite_id>" → SuiteProfile (config/types.ts) of a registry suite: no secrets.
 *
 * Isolate memory (edge/memory-cache.ts): the same "cred:v2:<appid>:<type>" keys, for at most MEMORY_TTL_MS
 * each; registry/lookup.ts keeps what it read of "app:", "apikey:", "corp:", "component:" and "suite:" for REGISTRY_MEMORY_TTL_MS.
 */
import type { CredentialType } from "./credentials";

export const STATE_KEY = "state";
export const GATEWAY_USAGE_KEY = "gateway";

export function edgeKey(appid: string, type: CredentialType = "token"): string {
	return `cred:v2:${appid}:${type}`;
}

/** The token's SHA-256 in hex, not the token: a KV listing must not hand out usable tokens. */
export function issuedKey(tokenSha256Hex: string): string {
	return `issued:v1:${tokenSha256Hex}`;
}

/** The Registry object's name: one catalog per deployment. */
export const REGISTRY_OBJECT_NAME = "registry";
export const REGISTERED_APP_KEY = "registered";

export function appProfileKey(appid: string): string {
	return `app:v1:${appid}`;
}

/** The key's SHA-256 in hex: KV never holds a usable key. */
export function apiKeyKey(keySha256Hex: string): string {
	return `apikey:v1:${keySha256Hex}`;
}

export function corpEntriesKey(corpid: string): string {
	return `corp:v1:${corpid}`;
}

/** A component's object: its own name space, apart from the appids of accounts. */
export function componentObjectName(componentAppid: string): string {
	return `component:${componentAppid}`;
}

export const COMPONENT_KEY = "component";
/** A provider's object (provider:<corpid>): a registry suite's ProviderSecret, sealed (authority/registry-provider.ts). */
export const PROVIDER_KEY = "provider";
export const COMPONENT_TICKET_KEY = "component_ticket";
export const AUTHORIZER_MARK_KEY = "authorizer";

/** An authorization code's entry in its component's object: the code's digest, never the code. */
export const AUTH_CODE_PREFIX = "auth_code:";
export function authCodeKey(codeSha256Hex: string): string {
	return `${AUTH_CODE_PREFIX}${codeSha256Hex}`;
}

/** The same code's place in time (ms, 13 digits, so keys sort by time): what the ledger's prune reads. */
export const AUTH_CODE_TIME_PREFIX = "auth_code_at:";
export function authCodeTimeKey(ms: number, codeSha256Hex: string): string {
	return `${AUTH_CODE_TIME_PREFIX}${String(ms).padStart(13, "0")}:${codeSha256Hex}`;
}

/** Set once the ledger's entries stored before the time keys existed have theirs (authority/code-ledger.ts). */
export const CODE_LEDGER_INDEXED_KEY = "auth_code_ledger_indexed";

/** A pushed code not yet exchanged (the code itself, until it is): what the component's alarm retries. */
export const AUTH_PENDING_PREFIX = "auth_pending:";

/** Where a code ledger keeps its entries (authority/code-ledger.ts): by digest, by time, pending, and its marker. */
export interface LedgerKeys {
	readonly entryPrefix: string;
	readonly timePrefix: string;
	readonly pendingPrefix: string;
	readonly indexedKey: string;
}

export function ledgerEntryKey(keys: LedgerKeys, codeSha256Hex: string): string {
	return `${keys.entryPrefix}${codeSha256Hex}`;
}

/** A code's place in time (ms, 13 digits, so keys sort by time): what the ledger's prune reads. */
export function ledgerTimeKey(keys: LedgerKeys, ms: number, codeSha256Hex: string): string {
	return `${keys.timePrefix}${String(ms).padStart(13, "0")}:${codeSha256Hex}`;
}

/** A component's authorisation codes. */
export const AUTH_CODE_LEDGER: LedgerKeys = {
	entryPrefix: AUTH_CODE_PREFIX, timePrefix: AUTH_CODE_TIME_PREFIX, pendingPrefix: AUTH_PENDING_PREFIX, indexedKey: CODE_LEDGER_INDEXED_KEY,
};

export function componentProfileKey(componentAppid: string): string {
	return `component:v1:${componentAppid}`;
}

/** A WeCom suite's object: its own name space, apart from apps and components. */
export function suiteObjectName(suiteId: string): string {
	return `suite:${suiteId}`;
}

export const SUITE_KEY = "suite";
export const SUITE_TICKET_KEY = "suite_ticket";

/**
 * A suite's install codes (authority/suite-installs.ts): entries by the code's digest, never the code, and
 * pushed ones (create_auth, reset_permanent_code) not yet exchanged, what the suite's alarm retries.
 */
export const INSTALL_CODE_LEDGER: LedgerKeys = {
	entryPrefix: "install_code:", timePrefix: "install_code_at:", pendingPrefix: "install_pending:", indexedKey: "install_code_ledger_indexed",
};

/** A company's install in its suite's object: its app, and a sealed copy of its permanent code (recovery). */
export const INSTALL_PREFIX = "install:";
export function installKey(corpid: string): string {
	return `${INSTALL_PREFIX}${corpid}`;
}

export function suiteProfileKey(suiteId: string): string {
	return `suite:v1:${suiteId}`;
}
