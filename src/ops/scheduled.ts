/**
 * The cron trigger: every configured app's authority refreshes its token if it is due, so tokens are renewed
 * with no client traffic at all. Apps are independent: one failing app never stops the others.
 */
import { authority } from "../authority/stub";
import { loadConfig } from "../config/config";
import type { AppEnv } from "../env";
import { log } from "../core/log";
import type { CronReport } from "../authority/token-authority";

export async function refreshDueApps(env: AppEnv): Promise<CronReport[]> {
	const appids = [...loadConfig(env).apps.keys()];
	const settled = await Promise.allSettled(appids.map((appid) => authority(env, appid).refreshIfDue(appid)));
	const reports = settled.map((result, i): CronReport =>
		result.status === "fulfilled" ? result.value : { appid: appids[i]!, action: "failed" });
	const counts = Object.groupBy(reports, (r) => r.action);
	log("info", "cron_run", Object.fromEntries(Object.entries(counts).map(([action, list]) => [action, list!.map((r) => r.appid)])));
	return reports;
}
