/**
 * WeCom's token endpoint, answered by the broker: a WeCom SDK whose base URL is the broker (WxJava
 * `WxCpConfigStorage.setBaseApiUrl`) and whose corpsecret is a broker API key gets the entry's current token
 * in WeCom's shape, `{"errcode":0,"errmsg":"ok","access_token","expires_in"}`, and never learns the Secret.
 *
 *   GET /cgi-bin/gettoken?corpid=<CorpID>&corpsecret=<broker API key>
 *
 * Which entry: WeCom keys a token by (corpid, secret), and each agent has its own secret, so corpid alone
 * does not name an entry when a corp has several. The entry is the one of that corp *the key may use*: a key
 * whose scope (API_KEYS "apps") holds exactly one entry of the corp gets that entry's token. A key that may
 * use several (an unscoped "*" key on a corp with two agents) is refused with a message saying to scope a
 * key to the one entry the service is: guessing would hand an agent another agent's token, which WeCom
 * answers with 48002 or, worse, accepts for the wrong app. The SDK sends nothing else that could say
 * which agent it means, so the key's scope is the only unambiguous place for it.
 *
 * The key is checked first (as in token-endpoints.ts), so a caller without one learns nothing about the
 * corps this broker serves; a scoped key learns nothing about entries outside its scope.
 */
import type { Context } from "hono";
import { authenticate, inScope, type AuthVariables } from "../access/auth";
import { findApp, registeredCorpEntries } from "../registry/lookup";
import type { AppProfile, BrokerConfig } from "../config/config";
import type { AppEnv } from "../env";
import { expiresInS } from "../core/lifetime";
import { log } from "../core/log";
import { rememberIssued } from "./ownership";
import { MAX_SECRET_CHARS } from "./token-endpoints";
import { credentialFor, ERRCODE, WECOM_ERRCODE, WeChatError } from "./wechat-errors";

type GatewayContext = Context<{ Bindings: AppEnv; Variables: AuthVariables }>;

function wecomError(errcode: number, message: string): WeChatError {
	return new WeChatError(errcode, message, 200, "wecom");
}

export async function weComTokenEndpoint(c: GatewayContext): Promise<Response> {
	if (c.req.method !== "GET") throw wecomError(ERRCODE.requireGet, "require GET method (wx-token-broker: /cgi-bin/gettoken is a GET)");
	const corpid = c.req.query("corpid");
	const secret = c.req.query("corpsecret");
	if (!corpid) throw wecomError(WECOM_ERRCODE.corpidMissing, "corpid missing (wx-token-broker: send the CorpID of a WeCom app this broker serves)");
	if (!secret) throw wecomError(WECOM_ERRCODE.secretMissing, "corpsecret missing (wx-token-broker: send your broker API key as the corpsecret)");
	const config = c.get("config");
	const key = secret.length <= MAX_SECRET_CHARS ? await authenticate(c.env, config, secret) : undefined;
	if (!key) {
		log("warn", "auth_refused", { reason: "unknown_key", path: c.req.path });
		throw wecomError(WECOM_ERRCODE.invalidSecret, "invalid credential (wx-token-broker: the corpsecret must be a broker API key from API_KEYS, not the app's Secret; ask the broker's operator for one)");
	}
	const app = entryFor(await corpEntries(c.env, config, corpid), corpid, key.name, key.apps);
	const token = await credentialFor(c.env, app.appid, "token", "wecom");
	rememberIssued(token.value, app.appid, token.expiresAt);
	return c.json({ errcode: 0, errmsg: "ok", access_token: token.value, expires_in: expiresInS(token, Date.now()) });
}

/** The corp's WeCom entries, from WECHAT_APPS and the registry. */
async function corpEntries(env: AppEnv, config: BrokerConfig, corpid: string): Promise<AppProfile[]> {
	const fromSecret = [...config.apps.values()].filter((app) => app.platform === "wecom" && app.corpid === corpid);
	const registered = await Promise.all((await registeredCorpEntries(env, config, corpid)).map((id) => findApp(env, config, id)));
	return [...fromSecret, ...registered.filter((app): app is AppProfile => app !== undefined && app.corpid === corpid)];
}

/** The one WeCom entry of `corpid` the key may use, or WeCom's refusal saying how to fix the key or the corpid. */
function entryFor(ofCorp: readonly AppProfile[], corpid: string, keyName: string, scope: "*" | ReadonlySet<string>): AppProfile {
	const usable = ofCorp.filter((app) => inScope(scope, app));
	if (usable.length === 1) return usable[0]!;
	if (usable.length > 1) {
		log("warn", "auth_refused", { reason: "wecom_entry_ambiguous", key: keyName, corpid });
		throw wecomError(WECOM_ERRCODE.invalidSecret, `invalid credential (wx-token-broker: the key "${keyName}" may use ${usable.length} entries of corp ${corpid} (${usable.map((a) => a.appid).join(", ")}) and gettoken cannot say which one you mean; ask the operator for a key whose apps in API_KEYS hold only your entry)`);
	}
	if (scope === "*") {
		throw wecomError(WECOM_ERRCODE.invalidCorpid, `invalid corpid (wx-token-broker: corp ${safe(corpid)} has no WeCom entry on this broker; check the corpid or ask the operator to add the app to WECHAT_APPS)`);
	}
	// A scoped key learns nothing about entries outside its scope, configured or not.
	log("warn", "auth_refused", { reason: "app_out_of_scope", key: keyName, corpid });
	throw wecomError(WECOM_ERRCODE.invalidSecret, `invalid credential (wx-token-broker: the key "${keyName}" may use no WeCom entry of corp ${safe(corpid)}; ask the operator to add your entry to the key's apps in API_KEYS)`);
}

/** A corpid as sent, in an errmsg only when it looks like one. */
function safe(corpid: string): string {
	return /^[A-Za-z0-9_-]{1,64}$/.test(corpid) ? corpid : "?";
}
