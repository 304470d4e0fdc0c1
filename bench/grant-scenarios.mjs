// @ts-check
/**
 * The grant scenarios of `npm run bench` (run.mjs): the open platform at N authorizers (issue 18) and a WeCom
 * suite at N installed companies (issue 19), each N its own broker and simulator, each run's line on stderr
 * and its reads held to the bench's rule (failures.mjs: a refused token, a 503 or any other failure fails it).
 */
import { requireSuccess } from "./failures.mjs";
import { measureOpenPlatform } from "./scenarios/open-platform.mjs";
import { measureWecomSuite } from "./scenarios/wecom-suite.mjs";

/** @param {{ total: number, unavailable_503: number, other_failures: number, refused_by_wechat: number, first_error: string | null }} reads @param {string} label */
function readsOutcome(reads, label) {
	return { label, requests: reads.total, failed: reads.unavailable_503 + reads.other_failures + reads.refused_by_wechat, firstError: reads.first_error ?? undefined };
}

/**
 * @param {{ settings: import("./settings.mjs").Settings, only: ReadonlySet<string>, step: (message: string) => void }} options
 */
export async function runGrantScenarios({ settings, only, step }) {
	/** @type {any[] | null} */
	let openPlatform = null;
	if (only.has("open-platform")) {
		openPlatform = [];
		for (const n of settings.openSizes) {
			const run = await measureOpenPlatform({ n, pushes: settings.openPushes, trafficS: settings.openTrafficS, quietS: settings.openQuietS, step });
			const c = run.component_token;
			const b = run.ticket_burst;
			console.error(`  open N=${n}: authorised in ${run.register_s} s; ${run.reads.refused_by_wechat} refused, ${run.reads.unavailable_503} × 503 of ${run.reads.total} reads; `
				+ `${run.alarms.late} of ${run.alarms.count} alarms late (p99 ${run.alarms.delay_p99_ms} ms); component token ${c.calls} calls (${c.planned} planned) over ${c.lifetimes} lifetimes, ${c.calls_per_lifetime}/lifetime (naive: ${c.naive_calls_per_lifetime}); `
				+ `${run.authorizer_token.refreshes.made} authorizer refreshes of ${run.authorizer_token.refreshes.planned} planned; 61023/40001 logged: ${run.errcodes_61023_40001}; `
				+ `burst ${b.pushes_per_s} pushes/s (p99 ${b.p99_ms} ms), ${b.wrong_answers} wrong, newest kept: ${b.newest_kept}; workerd ${run.workerd_rss_mib.after_traffic} MiB`);
			requireSuccess("open-platform", [
				readsOutcome(run.reads, `open N=${n} reads`),
				{ label: `open N=${n} ticket burst`, requests: b.pushes, failed: b.wrong_answers + (b.newest_kept ? 0 : b.pushes), firstError: b.first_wrong ? JSON.stringify(b.first_wrong) : undefined },
			]);
			openPlatform.push(run);
		}
	}

	/** @type {any[] | null} */
	let wecomSuite = null;
	if (only.has("wecom-suite")) {
		wecomSuite = [];
		for (const n of settings.wecomSizes) {
			const run = await measureWecomSuite({ n, trafficS: settings.wecomTrafficS, quietS: settings.wecomQuietS, step });
			const s = run.suite_token;
			console.error(`  wecom N=${n}: installed in ${run.install_s} s; ${run.reads.refused_by_wechat} refused, ${run.reads.unavailable_503} × 503 of ${run.reads.total} reads; `
				+ `${run.alarms.late} of ${run.alarms.count} alarms late (p99 ${run.alarms.delay_p99_ms} ms); suite token ${s.calls} calls (${s.planned} planned) over ${s.lifetimes} lifetimes, ${s.calls_per_lifetime}/lifetime (naive: ${s.naive_calls_per_lifetime}); `
				+ `${run.corp_token.refreshes.made} corp refreshes of ${run.corp_token.refreshes.planned} planned; 40082/40084/42009/40014 logged: ${JSON.stringify(run.errcodes_refusing)}; workerd ${run.workerd_rss_mib.after_traffic} MiB`);
			requireSuccess("wecom-suite", [readsOutcome(run.reads, `wecom N=${n} reads`)]);
			wecomSuite.push(run);
		}
	}
	return { openPlatform, wecomSuite };
}
