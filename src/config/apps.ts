/**
 * WECHAT_APPS: the official accounts and mini programs (`appid`, `secret`, `mode`) and the WeCom apps
 * (`"kind": "wecom"`, `corpid`, `agentid`, `secret`) the broker holds credentials for. Validated once per
 * isolate with messages that say how to fix the entry, never quoting a secret.
 */
import { ConfigError } from "./error";
import type { AppConfig, TokenMode } from "./types";


/** WeChat appids are `wx` + 16 hex digits and WeCom corpids `ww…`; anything outside this set is a typo. */
export const APPID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * WeChat's daily token quotas (WECHAT-API.md): /cgi-bin/token 2000 a day for an official account;
 * /cgi-bin/stable_token 500,000 a day; WeCom limits by minute and hour, not by day. Mini programs and test
 * accounts differ: set `daily_quota`.
 */
export const DEFAULT_DAILY_QUOTA: Record<Exclude<TokenMode, "component" | "suite" | "provider">, number> = {
	classic: 2_000, stable: 500_000, wecom: 150_000,
	// api_authorizer_token's quota per authorizer is unconfirmed (OPEN-PLATFORM.md §7); 2,000 is the lowest reported.
	authorizer: 2_000,
	// WeCom limits get_corp_token by frequency, not by day (as gettoken): the same allowance as a WeCom entry.
	suite_corp: 150_000,
};
/** getticket: "the call count is very limited"; 10,000 a day is the documented test allowance. */
export const DEFAULT_TICKET_DAILY_QUOTA = 10_000;

const APPS_EXAMPLE = '[{"appid":"wx…","secret":"…","mode":"stable"}, {"kind":"wecom","corpid":"ww…","agentid":"1000002","secret":"…"}]';
const AGENTID_PATTERN = /^[0-9]{1,12}$/;

export function parseApps(entries: readonly unknown[]): Map<string, AppConfig> {
	const apps = new Map<string, AppConfig>();
	entries.forEach((entry, index) => {
		const where = `WECHAT_APPS[${index}]`;
		if (!isRecord(entry)) throw new ConfigError(`${where} must be an object like ${APPS_EXAMPLE.slice(1, -1)}.`);
		const app = parseAppEntry(entry, where, "secret");
		if (apps.has(app.appid)) {
			throw new ConfigError(`${where}: ${app.appid} is listed twice; keep one entry per app${app.platform === "wecom" ? ' (give WeCom entries distinct "id"s)' : ""}.`);
		}
		apps.set(app.appid, app);
	});
	const perCorp = new Map<string, number>();
	for (const app of apps.values()) if (app.corpid) perCorp.set(app.corpid, (perCorp.get(app.corpid) ?? 0) + 1);
	for (const [id, app] of apps) if (app.corpid) apps.set(id, { ...app, corpEntries: perCorp.get(app.corpid)! });
	return apps;
}

/** One entry, from WECHAT_APPS or an admin API body; ConfigError names `where` and what to fix. */
export function parseAppEntry(entry: Record<string, unknown>, where: string, source: AppConfig["source"]): AppConfig {
	return entry.kind === "wecom" ? parseWeCom(entry, where, source) : parseWeChat(entry, where, source);
}

function parseWeChat(entry: Record<string, unknown>, where: string, source: AppConfig["source"]): AppConfig {
	const { appid, secret, mode = "stable", daily_quota: dailyQuota, ticket_daily_quota: ticketQuota, kind } = entry;
	if (kind !== undefined && kind !== "wechat") {
		throw new ConfigError(`${where}.kind must be "wecom" for a WeCom app, or left out for an official account or mini program.`);
	}
	if (typeof appid !== "string" || !APPID_PATTERN.test(appid)) {
		throw new ConfigError(`${where}.appid must be the app's AppID (letters, digits, _ or -, e.g. wx1234567890abcdef).`);
	}
	requireSecret(secret, `${where}.secret (app ${appid}) must be the AppSecret from the WeChat admin console.`);
	if (mode !== "stable" && mode !== "classic") {
		throw new ConfigError(`${where}.mode (app ${appid}) must be "stable" (default, /cgi-bin/stable_token) or "classic" (/cgi-bin/token).`);
	}
	return {
		appid, source, platform: "wechat", secret: secret as string, mode,
		dailyQuota: positiveInteger(dailyQuota, `${where}.daily_quota (app ${appid})`, "the app's daily quota for its token endpoint") ?? DEFAULT_DAILY_QUOTA[mode],
		ticketDailyQuota: positiveInteger(ticketQuota, `${where}.ticket_daily_quota (app ${appid})`, "the app's daily getticket quota") ?? DEFAULT_TICKET_DAILY_QUOTA,
	};
}

function parseWeCom(entry: Record<string, unknown>, where: string, source: AppConfig["source"]): AppConfig {
	const { corpid, agentid, secret, id, daily_quota: dailyQuota } = entry;
	if (typeof corpid !== "string" || !APPID_PATTERN.test(corpid)) {
		throw new ConfigError(`${where}.corpid must be the WeCom CorpID (ww…, from 我的企业 → 企业信息 in the WeCom admin console).`);
	}
	if (agentid !== undefined && (typeof agentid !== "string" || !AGENTID_PATTERN.test(agentid))) {
		throw new ConfigError(`${where}.agentid (corp ${corpid}) must be the app's AgentId as a string of digits, e.g. "1000002".`);
	}
	if (id !== undefined && (typeof id !== "string" || !APPID_PATTERN.test(id))) {
		throw new ConfigError(`${where}.id (corp ${corpid}) must be 1–64 letters, digits, _ or -: the name clients use as ?appid=.`);
	}
	if (id === undefined && agentid === undefined) {
		throw new ConfigError(`${where} (corp ${corpid}) has no agentid, so it needs an "id" (e.g. "${corpid}-contacts"): clients address it as ?appid=<id>.`);
	}
	const appid = (id as string | undefined) ?? `${corpid}-${agentid as string}`;
	requireSecret(secret, `${where}.secret (${appid}) must be the Secret of that WeCom app (each app, and the contacts sync, has its own).`);
	return {
		appid, source, platform: "wecom", secret: secret as string, mode: "wecom", corpid,
		...(agentid !== undefined && { agentid: agentid as string }),
		dailyQuota: positiveInteger(dailyQuota, `${where}.daily_quota (${appid})`, "a daily budget of gettoken calls") ?? DEFAULT_DAILY_QUOTA.wecom,
		ticketDailyQuota: DEFAULT_TICKET_DAILY_QUOTA,
	};
}

function requireSecret(secret: unknown, message: string): void {
	if (typeof secret !== "string" || secret.trim() === "") throw new ConfigError(message);
}

function positiveInteger(value: unknown, label: string, what: string): number | undefined {
	if (value === undefined) return undefined;
	if (typeof value !== "number" || !Number.isInteger(value) || value < 1) throw new ConfigError(`${label} must be a positive integer: ${what}.`);
	return value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}
