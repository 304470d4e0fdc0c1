/**
 * A WeCom suite's suite_access_token and its service provider's provider_access_token, on the one refresh
 * engine (engine/kinds.ts: the `token` slot of each one's own object, policy independent, planned for the
 * expiry itself because WeCom hands out the same token until then), and the watch over the suite's
 * suite_tickets (pushed-ticket.ts) that the token is fetched with.
 *
 * - The engine sees a suite as an app whose appid is its object's name, `suite:<suite_id>`, and a provider
 *   as `provider:<corpid>` (as component-token.ts does for components): the schedule index, the watchdog,
 *   /status, the KV edge copy and the gateway's issued index then work for them unchanged, and no appid
 *   collides with them (appids have no `:`).
 * - One object per credential owner: every suite of one provider shares the provider's object, so the
 *   provider token is fetched once for all of them (W-90593: "do not call it frequently").
 * - No suite_ticket push for SUITE_TICKET_STALE_MS is an incident that names the instruction URL; WeCom has
 *   no API to restart its pushes (the open platform's api_start_push_ticket has no WeCom twin), so the
 *   message names the console's 刷新ticket button.
 */
import type { AppConfig, AppProfile, BrokerConfig, SuiteConfig, SuiteProfile } from "../config/config";
import { suiteObjectName, SUITE_TICKET_KEY } from "../core/storage-keys";
import type { StoredSuiteTicket } from "./suite";
import { PushedTicket } from "./pushed-ticket";

/**
 * WeCom pushes every ~10 min (7-15 observed) and a ticket lives 30 min: 25 min of silence is two missed
 * pushes, and leaves 5 min before the newest ticket dies (OPEN-PLATFORM.md: "alert when no push for >20-30 min").
 */
export const SUITE_TICKET_STALE_MS = 25 * 60_000;
/**
 * WeCom documents no daily quota for get_suite_token or get_provider_token, only "do not call frequently";
 * this is the broker's own budget for the quota guard: one token a lifetime is ~12 calls a day.
 */
export const SERVICE_TOKEN_DAILY_QUOTA = 2_000;
const SUITE_PREFIX = "suite:";
const PROVIDER_PREFIX = "provider:";

/** A provider's object: its own name space, apart from apps, components and suites. */
export function providerObjectName(corpid: string): string {
	return `${PROVIDER_PREFIX}${corpid}`;
}

const asApps = new WeakMap<SuiteConfig, AppConfig>();

/** The suite as the engine sees it: an app named suite:<suite_id> with one credential (kinds.ts). */
export function suiteAsApp(suite: SuiteConfig): AppConfig {
	let app = asApps.get(suite);
	if (!app) {
		app = { ...suiteAsProfile(suite), secret: suite.secret };
		asApps.set(suite, app);
	}
	return app;
}

/** The same without the secret: what an isolate knows of it. */
export function suiteAsProfile(suite: SuiteProfile): AppProfile {
	return {
		appid: suiteObjectName(suite.suiteId), suiteId: suite.suiteId, source: suite.source, platform: "wecom", mode: "suite",
		dailyQuota: SERVICE_TOKEN_DAILY_QUOTA, ticketDailyQuota: 0,
	};
}

/** The suite_id of an object name suite:<suite_id>, or undefined for any other name. */
export function suiteIdOf(appid: string): string | undefined {
	return appid.startsWith(SUITE_PREFIX) ? appid.slice(SUITE_PREFIX.length) : undefined;
}

/** The provider corpid of an object name provider:<corpid>, or undefined for any other name. */
export function providerIdOf(appid: string): string | undefined {
	return appid.startsWith(PROVIDER_PREFIX) ? appid.slice(PROVIDER_PREFIX.length) : undefined;
}

/**
 * What a suite's object (suite:<suite_id>) serves under that name: the suite of WECOM_SUITES, else the
 * registry one the object opened; undefined for any other name.
 */
export function suiteAppOf(appid: string, config: Pick<BrokerConfig, "suites">, opened: SuiteConfig | undefined): AppConfig | undefined {
	const id = suiteIdOf(appid);
	if (id === undefined) return undefined;
	const suite = config.suites.get(id) ?? (opened?.suiteId === id ? opened : undefined);
	return suite && suiteAsApp(suite);
}

const providers = new WeakMap<ReadonlyMap<string, SuiteConfig>, Map<string, AppConfig>>();

/**
 * The providers of WECOM_SUITES (a provider's corpid and secret, carried by its suites), as apps named
 * provider:<corpid>; one per corpid however many suites carry it (config/suites.ts checks they agree).
 */
export function providerAppOf(appid: string, config: Pick<BrokerConfig, "suites">): AppConfig | undefined {
	const corpid = providerIdOf(appid);
	if (corpid === undefined) return undefined;
	let known = providers.get(config.suites);
	if (!known) {
		known = new Map();
		for (const suite of config.suites.values()) {
			if (suite.providerCorpid === undefined || suite.providerSecret === undefined || known.has(suite.providerCorpid)) continue;
			known.set(suite.providerCorpid, providerAsApp(suite.providerCorpid, suite.providerSecret, suite.source));
		}
		providers.set(config.suites, known);
	}
	return known.get(corpid);
}

/** A provider as the engine sees it: an app named provider:<corpid> with one credential, its ProviderSecret the secret. */
export function providerAsApp(corpid: string, secret: string, source: AppConfig["source"]): AppConfig {
	return {
		appid: providerObjectName(corpid), corpid, source, platform: "wecom", mode: "provider",
		dailyQuota: SERVICE_TOKEN_DAILY_QUOTA, ticketDailyQuota: 0, secret,
	};
}

/** The suite's tickets (storage "suite_ticket", written by suite.ts): newest kept, silence watched. */
export function suiteTickets(storage: DurableObjectStorage): PushedTicket<StoredSuiteTicket> {
	return new PushedTicket<StoredSuiteTicket>(storage, {
		key: SUITE_TICKET_KEY, staleMs: SUITE_TICKET_STALE_MS, pushedAt: (stored) => stored.timeStamp,
		silence: (minutes) => `no suite_ticket pushed for ${minutes} min (WeCom pushes one every ~10 min, each valid 30 min): check that the suite's 指令回调URL is /wecom-suite/<suite_id>/events on this broker and answers \`success\`; 刷新ticket in the provider console pushes one at once`,
	});
}
