/**
 * The schedule index knows which suite an installed company belongs to, and counts objects named by their kind
 * (component:, suite:, provider:) from either source: a key scoped `suite:<id>` sees the suite and every
 * company that installed it in /status, and the watchdog wakes a WECHAT_SUITES suite whose alarm is overdue.
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect, it } from "vitest";
import { suiteAuthority } from "../../src/authority/stub";
import { scheduleIndex } from "../../src/schedule/client";
import type { ScheduleIndex } from "../../src/schedule/schedule-index";
import { installTestSuite } from "./fixtures";
import { call } from "./helpers";
import { registryKey } from "./component-helpers";
import { pushSuiteTicket, simSuite } from "./suite-helpers";

interface Push { info_type: string; query: string; body: string }

/** A company installs `suite` from the market and its create_auth reaches the broker; the company's appid. */
async function installCompany(suite: ReturnType<typeof installTestSuite>, corpid: string): Promise<string> {
	await simSuite(`${suite.suite_id}/take`);
	await simSuite(`${suite.suite_id}/install`, { corpid, push: true });
	const { pushes } = await simSuite(`${suite.suite_id}/take`) as { pushes: Push[] };
	const push = pushes.find((p) => p.info_type === "create_auth")!;
	const res = await exports.default.fetch(new Request(`https://broker.test/wecom-suite/${suite.suite_id}/events?${push.query}`, {
		method: "POST", headers: { "content-type": "text/xml" }, body: push.body,
	}));
	expect(await res.text()).toBe("success");
	await suiteAuthority(env, suite.suite_id).idle();
	const rows = await suiteAuthority(env, suite.suite_id).listInstalls(suite.suite_id, null, 100);
	return rows.find((r) => r.corpid === corpid)!.appid;
}

it("a key scoped suite:<id> lists the suite and every company that installed it in /status, and nothing of another suite", async () => {
	const [mine, other] = [installTestSuite(18), installTestSuite(19)];
	expect(await pushSuiteTicket(mine)).toBe("success");
	expect(await pushSuiteTicket(other)).toBe("success");
	const companies = [await installCompany(mine, "wwscopecorp1"), await installCompany(mine, "wwscopecorp2")];
	const foreign = await installCompany(other, "wwscopecorp3");

	const key = await registryKey(`suite-scope-${Date.now()}`, [`suite:${mine.suite_id}`], true);
	const status = await call("/status?limit=100", { key });
	expect(status.status).toBe(200);
	const listed = (status.body.apps as { appid: string }[]).map((a) => a.appid);
	expect(listed).toEqual(expect.arrayContaining([`suite:${mine.suite_id}`, ...companies]));
	expect(listed).not.toContain(foreign);
	expect(listed).not.toContain(`suite:${other.suite_id}`);
	expect((status.body.summary as { apps: number }).apps).toBe(3);
});

it("the watchdog's overdue list and /status count a WECHAT_SUITES suite's object and a provider's, as a component's", async () => {
	const now = Date.now();
	const overdue = await runInDurableObject(scheduleIndex(env), (index: ScheduleIndex) => {
		for (const appid of ["suite:wwscopeoverdue", "provider:wwscopeprovider", "component:wxscopeoverdue"]) {
			index.put({ appid, source: "secret", dueAt: now - 3_600_000, servingUntil: 0, fetched: false, lastRefreshAt: null, incident: null, memberOf: null });
		}
		return index.overdue({ now, marginMs: 60_000, configured: [], limit: 1_000 }).overdue;
	});
	expect(overdue).toEqual(expect.arrayContaining(["suite:wwscopeoverdue", "provider:wwscopeprovider", "component:wxscopeoverdue"]));
});
