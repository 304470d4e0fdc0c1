/**
 * GET /status and GET /health answered from the schedule index (schedule/schedule-index.ts) instead of by
 * asking every app's object: both stay bounded in time and in subrequests whatever the number of apps.
 * - /status: the summary over the key's apps (one index call), then one page of apps in appid order, each
 *   with its object's detailed status (one call per app on the page: at most MAX_STATUS_LIMIT).
 * - /health for a key scoped to "*", or to more apps than HEALTH_DIRECT_MAX_APPS: the index's incident and
 *   not-serving rows (one call). A key scoped to a few apps asks those apps' objects (health-check.ts).
 */
import { authority } from "../authority/stub";
import type { AppStatus } from "../authority/token-authority";
import type { GatewayCounts } from "../authority/gateway-usage";
import type { BrokerConfig } from "../config/config";
import { BrokerError } from "../core/errors";
import type { AppEnv } from "../env";
import { scheduleIndex } from "../schedule/client";
import type { ScheduleRow } from "../schedule/row";
import type { Summary, Unhealthy } from "../schedule/schedule-index";
import { WATCHDOG_MARGIN_MS } from "./scheduled";

/** A page asks each of its apps' objects once: 100 is a tenth of a Paid invocation's default subrequests. */
export const MAX_STATUS_LIMIT = 100;
/** Inside the Free plan's 50 subrequests per invocation, with the index's call and room to spare. */
export const DEFAULT_STATUS_LIMIT = 25;
/** /health names at most this many unhealthy apps; the count covers them all. */
export const MAX_HEALTH_LISTED = 100;
/** A key scoped to at most this many apps gets /health from their objects (fresh to 10 s), more from the index. */
export const HEALTH_DIRECT_MAX_APPS = 20;
/** A cursor is an appid: WeChat's are 18 characters, WeCom ids a few dozen. */
const MAX_CURSOR_CHARS = 128;

export interface StatusQuery {
	readonly limit?: string;
	readonly cursor?: string;
}

export interface StatusPage {
	readonly now: string;
	readonly summary: Summary;
	readonly apps: unknown[];
	readonly next_cursor: string | null;
}

/**
 * The appids a scope names: its appids, each `component:<id>` and `suite:<id>` (the row of that object; the
 * index adds every row that belongs to it, its authorizers or installed companies: schedule-index.ts SCOPED),
 * and the WECHAT_APPS entries of each `corp:<corpid>` it names. (A registry WeCom entry under a
 * corp: scope is not found this way: its row does not carry its corpid.)
 */
function scopeAppids(config: BrokerConfig, scope: "*" | ReadonlySet<string>): string[] | null {
	if (scope === "*") return null;
	const appids = new Set([...scope].filter((entry) => !entry.includes(":") || entry.startsWith("component:") || entry.startsWith("suite:")));
	for (const app of config.apps.values()) if (app.corpid !== undefined && scope.has(`corp:${app.corpid}`)) appids.add(app.appid);
	return [...appids];
}

function iso(ms: number | null): string | null {
	return ms === null ? null : new Date(ms).toISOString();
}

export function parseStatusQuery({ limit, cursor }: StatusQuery): { limit: number; after: string | null } {
	const n = limit === undefined ? DEFAULT_STATUS_LIMIT : Number(limit);
	if (!Number.isInteger(n) || n < 1 || n > MAX_STATUS_LIMIT) {
		throw new BrokerError("bad_request", `limit must be a whole number from 1 to ${MAX_STATUS_LIMIT} (default ${DEFAULT_STATUS_LIMIT}).`);
	}
	if (cursor !== undefined && (cursor.length === 0 || cursor.length > MAX_CURSOR_CHARS)) {
		throw new BrokerError("bad_request", "cursor must be the next_cursor of the previous page, unchanged.");
	}
	return { limit: n, after: cursor ?? null };
}

/** What the index knows of an app beside its object's own view: its next wake-up and whether it is late. */
function scheduleOf(row: ScheduleRow | null, now: number): { next_wake: string | null; late: boolean; started: boolean } {
	return { next_wake: iso(row?.dueAt ?? null), late: row?.dueAt != null && row.dueAt < now - WATCHDOG_MARGIN_MS, started: row !== null };
}

export async function statusPage(
	env: AppEnv, config: BrokerConfig, scope: "*" | ReadonlySet<string>, query: StatusQuery,
	takeGatewayCounts: (appid: string) => GatewayCounts,
): Promise<StatusPage> {
	const { limit, after } = parseStatusQuery(query);
	const now = Date.now();
	const page = await scheduleIndex(env).page({
		now, marginMs: WATCHDOG_MARGIN_MS, configured: [...config.apps.keys()], scope: scopeAppids(config, scope), limit, after,
	});
	const apps = await Promise.all(page.entries.map(async ({ appid, row }) => {
		// This isolate's uncounted gateway use goes in first, so its own calls are never missing.
		const report = await authority(env, appid).statusReport(appid, takeGatewayCounts(appid)).catch(() => null);
		const status: Partial<AppStatus> = report?.status ?? { appid };
		const gateway = report ? { calls_today: report.gateway.calls, heals_today: report.gateway.heals } : null;
		return { ...status, appid, gateway, schedule: scheduleOf(row, now), ...(report === null && { error: "its Durable Object did not answer" }) };
	}));
	return { now: new Date(now).toISOString(), summary: page.summary, apps, next_cursor: page.next };
}

/** /health from the index: every app in scope counted, the unhealthy ones named (at most MAX_HEALTH_LISTED). */
export async function indexHealth(env: AppEnv, config: BrokerConfig, scope: "*" | ReadonlySet<string>): Promise<{ apps: number; unhealthy: number; listed: Unhealthy[] }> {
	return scheduleIndex(env).unhealthy({
		now: Date.now(), configured: [...config.apps.keys()], scope: scopeAppids(config, scope), limit: MAX_HEALTH_LISTED,
	});
}
