/**
 * What the suite- and provider-token tests share: the simulated service-provider side's control API, suite_ticket
 * pushes delivered to the broker's instruction URL as WeCom sends them, and the objects' alarms.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { authority, suiteAuthority } from "../../src/authority/stub";
import type { TestSuite } from "./fixtures";
import { simUrl, travel } from "./helpers";

export async function simSuite(path: string, body?: unknown): Promise<any> {
	const res = await fetch(`${simUrl}/__sim/wecom/suites/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) });
	const parsed = await res.json();
	if (res.status !== 200) throw new Error(JSON.stringify(parsed));
	return parsed;
}

/** Registers `suite` in the simulator again with some of its behaviour changed (reused_expires_in, lifetimes…). */
export async function suiteInSim(suite: TestSuite, changes: Record<string, unknown>): Promise<void> {
	const res = await fetch(`${simUrl}/__sim/wecom/suites`, { method: "POST", body: JSON.stringify({ ...suite, ...changes }) });
	if (res.status !== 200) throw new Error(await res.text());
	await res.text();
}

/** The simulator's call counts for the suite (wecom_get_suite_token, …) and for its provider corpid (wecom_get_provider_token). */
export async function serviceStats(suite: TestSuite): Promise<{ suite: Record<string, number>; provider: Record<string, number> }> {
	const res = await fetch(`${simUrl}/__sim/wecom/suites/${suite.suite_id}`);
	const body = (await res.json()) as { stats: Record<string, number>; provider_stats: Record<string, number> | null };
	return { suite: body.stats, provider: body.provider_stats ?? {} };
}

/** A fresh suite_ticket push made by the simulator and delivered to the broker's instruction URL; the answer's text. */
export async function pushSuiteTicket(suite: TestSuite, timeStampS?: number): Promise<string> {
	await simSuite(`${suite.suite_id}/take`);
	await simSuite(`${suite.suite_id}/push`, timeStampS === undefined ? {} : { time_stamp_s: timeStampS });
	const { pushes } = await simSuite(`${suite.suite_id}/take`) as { pushes: { query: string; body: string }[] };
	const push = pushes.at(-1)!;
	const res = await exports.default.fetch(new Request(`https://broker.test/wecom-suite/${suite.suite_id}/events?${push.query}`, {
		method: "POST", headers: { "content-type": "text/xml" }, body: push.body,
	}));
	return res.text();
}

const objectOf = (name: string) => (name.startsWith("suite:") ? suiteAuthority(env, name.slice("suite:".length)) : authority(env, name));

/** The armed alarm (ms) of an object named suite:<id> or provider:<corpid>, or null. */
export function alarmOf(name: string): Promise<number | null> {
	return runInDurableObject(objectOf(name), (_o, state) => state.storage.getAlarm());
}

/** Moves the clock to the object's alarm (if ahead) and delivers it; throws when none is armed. */
export async function ring(name: string): Promise<number> {
	const at = await alarmOf(name);
	if (at === null) throw new Error(`${name} has no alarm armed`);
	const ahead = Math.max(0, Math.ceil((at - Date.now()) / 1_000));
	if (ahead > 0) await travel(ahead);
	await runDurableObjectAlarm(objectOf(name));
	return ahead;
}

/**
 * A company installed on `suite` the way WeCom does it: a fresh ticket pushed, the company's consent at the
 * simulator, its create_auth push delivered to the instruction URL and exchanged; the app the broker made of it.
 */
export async function installCompany(suite: TestSuite, corpid: string): Promise<string> {
	// A ticket newer than one an earlier test may have pushed to the same suite.
	await travel(1);
	if (await pushSuiteTicket(suite) !== "success") throw new Error(`${suite.suite_id}: the ticket push was refused`);
	await simSuite(`${suite.suite_id}/take`);
	await simSuite(`${suite.suite_id}/install`, { corpid, push: true });
	const { pushes } = await simSuite(`${suite.suite_id}/take`) as { pushes: { info_type: string; query: string; body: string }[] };
	const create = pushes.find((p) => p.info_type === "create_auth");
	if (!create) throw new Error(`${suite.suite_id}: no create_auth push for ${corpid}`);
	const res = await exports.default.fetch(new Request(`https://broker.test/wecom-suite/${suite.suite_id}/events?${create.query}`, {
		method: "POST", headers: { "content-type": "text/xml" }, body: create.body,
	}));
	if (await res.text() !== "success") throw new Error(`${suite.suite_id}: create_auth for ${corpid} was not answered success`);
	await suiteAuthority(env, suite.suite_id).idle();
	const rows = await suiteAuthority(env, suite.suite_id).listInstalls(suite.suite_id, null, 100);
	const appid = rows.find((r) => r.corpid === corpid)?.appid;
	if (!appid) throw new Error(`${suite.suite_id}: ${corpid} is not among its installs: ${JSON.stringify(rows)}`);
	return appid;
}

/** The object's /status entry (its token, incident, calls). */
export async function statusOfObject(name: string): Promise<Record<string, any>> {
	return (await objectOf(name).status(name)) as unknown as Record<string, any>;
}
