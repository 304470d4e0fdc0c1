/**
 * The cron trigger is a watchdog, not the refresh engine: each app's object refreshes from its own alarm
 * (authority/alarm-chain.ts). A run asks the schedule index (one subrequest) which apps are overdue by more
 * than WATCHDOG_MARGIN_MS and which WECHAT_APPS apps have no row yet, and wakes only those, at most
 * MAX_WAKES_PER_RUN of them: when nothing is late a run costs one subrequest whatever the number of apps,
 * and never more than 1 + MAX_WAKES_PER_RUN, inside the Free plan's 50 per invocation.
 *
 * Waking an app runs what its alarm would (TokenAuthority.wake): what is due is refreshed, the alarm armed
 * again and the app's row sent, so a woken app is not overdue on the next run. An app that has never run
 * (a WECHAT_APPS entry, before any request or alarm) gets its first token and its chain this way. Apps are
 * independent: one failing app never stops the others.
 */
import { authority } from "../authority/stub";
import { loadConfig } from "../config/config";
import type { AppEnv } from "../env";
import { log } from "../core/log";
import { scheduleIndex } from "../schedule/client";
import type { ScheduleIndex } from "../schedule/schedule-index";

/**
 * An alarm this late is not coming: alarms fire within seconds of their moment, and one whose handler threw
 * has been retried by the platform (2, 4 … 32 s: 62 s for the first five) before this margin runs out.
 * 60 s plus the cron's own minute keeps a stable token's refresh, planned 270 s before it expires, inside
 * WeChat's last-300-s rotation window even when its alarm never fires (core/lifetime.ts).
 */
export const WATCHDOG_MARGIN_MS = 60_000;
/**
 * Objects one run may wake: with the index's call, 41 subrequests, inside the Free plan's 50. A backlog
 * (a deploy of many new WECHAT_APPS entries, or a platform outage of alarms) drains at 40 apps a minute.
 */
export const MAX_WAKES_PER_RUN = 40;

export interface WatchdogReport {
	/** Apps whose alarm was overdue, woken. */
	readonly overdue: string[];
	/** WECHAT_APPS apps with no row in the index, woken so that their chain starts. */
	readonly started: string[];
	/** Wakes that threw (the object did not answer). */
	readonly failed: string[];
	/** Subrequests the run made: the index query plus one per woken app. */
	readonly subrequests: number;
}

export async function watchdog(env: AppEnv, index: Pick<DurableObjectStub<ScheduleIndex>, "overdue"> = scheduleIndex(env), now = Date.now()): Promise<WatchdogReport> {
	const configured = [...loadConfig(env).apps.keys()];
	const found = await index.overdue({ now, marginMs: WATCHDOG_MARGIN_MS, configured, limit: MAX_WAKES_PER_RUN });
	const overdue = found.overdue;
	const started = found.unstarted.slice(0, MAX_WAKES_PER_RUN - overdue.length);
	const woken = [...overdue, ...started];
	const settled = await Promise.allSettled(woken.map((appid) => authority(env, appid).wake(appid)));
	const failed = woken.filter((_, i) => settled[i]!.status === "rejected");
	const report: WatchdogReport = { overdue, started, failed, subrequests: 1 + woken.length };
	log(overdue.length > 0 || failed.length > 0 ? "warn" : "info", "watchdog_run", { ...report });
	return report;
}
