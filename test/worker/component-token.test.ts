/**
 * The component_access_token on the one refresh engine, in the component's own object (component:<id>):
 * fetched with the newest pushed ticket, single flight, refreshed by the object's alarm with no traffic, its
 * expires_in ending at the planned refresh (no overlap assumed), failures that keep a value WeChat still
 * accepts, incidents that name what to check, one api_start_push_ticket per incident; GET /component-token
 * and the `component:<id>` key scope.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { componentAuthority } from "../../src/authority/stub";
import { watchdog } from "../../src/ops/scheduled";
import { KEYS, registryTestComponent, testComponent, type TestApp, type TestComponent } from "./fixtures";
import { alertsFor, call, interceptUpstream, sim, simUrl, travel, wechatAnswer } from "./helpers";
import { componentAlarm, componentInfo, componentStats, componentStatus, pushTicket, registryKey, ringComponent, simOpen } from "./component-helpers";

const T = Array.from({ length: 16 }, (_, n) => testComponent("comptok", n)) as TestComponent[];
const tokenPath = (c: TestComponent) => `/component-token?component_appid=${c.component_appid}`;

/** How WeChat's business side judges a component token: 0 when accepted, else its errcode. */
async function check(component: TestComponent, token: string): Promise<number> {
	const res = await fetch(`${simUrl}/cgi-bin/component/api_get_authorizer_list?component_access_token=${encodeURIComponent(token)}`, {
		method: "POST", body: JSON.stringify({ component_appid: component.component_appid, offset: 0, count: 1 }),
	});
	return ((await res.json()) as { errcode?: number }).errcode ?? 0;
}

async function readToken(component: TestComponent, key: string = KEYS.all) {
	const res = await call(tokenPath(component), { key });
	return res;
}

describe("component_access_token", () => {
	it("is fetched with the newest pushed ticket, once for many concurrent readers, and promised only until its planned refresh", async () => {
		const c = T[0]!;
		expect(await pushTicket(c)).toBe("success");
		const answers = await Promise.all(Array.from({ length: 8 }, () => readToken(c)));
		for (const answer of answers) expect(answer.status, JSON.stringify(answer.body)).toBe(200);
		const tokens = new Set(answers.map((a) => a.body.component_access_token));
		expect(tokens.size).toBe(1);
		expect((await componentStats(c)).api_component_token).toBe(1);
		const [token] = [...tokens] as [string];
		expect(await check(c, token)).toBe(0);
		// 7200 s from WeChat, refreshed 900 s ahead: the promise ends at the refresh, with no 300 s overlap.
		expect(answers[0]!.body.expires_in).toBeLessThanOrEqual(6300);
		expect(answers[0]!.body.expires_in).toBeGreaterThan(6290);
		const status = await componentStatus(c);
		expect(status.calls_today.api_component_token).toBe(1);
		expect(status.component).toMatchObject({ component_appid: c.component_appid, ticket_age_s: 0 });
	});

	it("is refreshed by the object's alarm at its planned moment with no client traffic, and the one it replaced is no longer promised", async () => {
		const c = T[1]!;
		await pushTicket(c);
		const first = (await readToken(c)).body.component_access_token as string;
		// Pushes keep coming, as WeChat's do: the ticket never goes stale in this test.
		let moved = 0;
		while (moved < 6300) {
			const step = Math.min(600, 6300 - moved);
			await travel(step);
			moved += step;
			await pushTicket(c);
		}
		expect(await componentAlarm(c)).toBeLessThanOrEqual(Date.now());
		await ringComponent(c);
		expect((await componentStats(c)).api_component_token).toBe(2);
		const second = await readToken(c);
		expect(second.body.component_access_token).not.toBe(first);
		expect(second.body.expires_in).toBeGreaterThan(6290);
		expect((await componentStatus(c)).last_refresh.trigger).toBe("scheduled");
	});

	it("without any ticket sends nothing, fails naming the event URL, opens an incident, and asks WeChat once to restart its pushes", async () => {
		const c = T[2]!;
		const res = await readToken(c);
		expect(res.status).toBe(502);
		expect(res.body.message).toMatch(/no component_verify_ticket.*\/open\/<component_appid>\/events.*`success`/);
		expect((await componentStats(c)).api_component_token).toBe(0);
		await componentAuthority(env, c.component_appid).idle();
		const status = await componentStatus(c);
		expect(status.incident?.reason).toMatch(/no component_verify_ticket/);
		expect(status.calls_today.api_start_push_ticket).toBe(1);
		const alerts = await alertsFor({ appid: `component:${c.component_appid}` } as TestApp);
		expect(alerts.map((a) => a.content)).toEqual([expect.stringMatching(/component:wxcompcomptok02 \(component\) is unhealthy: component_access_token refresh failing.*`success`/)]);
		// The call goes out in the background; the second failure (its backoff over) asks no more.
		await travel(3);
		expect((await readToken(c)).status).toBe(502);
		expect((await componentStatus(c)).calls_today.api_start_push_ticket).toBe(1);
		expect((await componentStats(c)).api_start_push_ticket).toBe(1);
	});

	it("a ticket that arrives while the component has no token re-arms the alarm for now, and the alarm fetches the token", async () => {
		const c = T[3]!;
		expect((await readToken(c)).status).toBe(502);
		// The backoff of a fatal refusal is long; the push ends it.
		expect(await componentAlarm(c)).toBeGreaterThan(Date.now());
		await pushTicket(c);
		expect(await componentAlarm(c)).toBeLessThanOrEqual(Date.now());
		await ringComponent(c);
		expect((await componentStats(c)).api_component_token).toBe(1);
		const status = await componentStatus(c);
		expect(status.token).not.toBeNull();
		expect(status.incident).toBeNull();
		expect((await readToken(c)).status).toBe(200);
	});

	it("61005 at the planned refresh keeps the current token served until the retry, opens an incident naming the event URL, and restarts pushes once", async () => {
		const c = T[4]!;
		await pushTicket(c);
		const first = (await readToken(c)).body.component_access_token as string;
		await travel(1800);
		await pushTicket(c);
		await travel(1800);
		await pushTicket(c);
		await travel(1800);
		await pushTicket(c);
		await travel(900);
		await pushTicket(c);
		await sim.fault({ appid: c.component_appid, endpoint: "api_component_token", kind: "errcode", errcode: 61005, times: 1 });
		await ringComponent(c);
		const after = await readToken(c);
		expect(after.status).toBe(200);
		expect(after.body.component_access_token).toBe(first);
		expect(after.body.expires_in).toBeGreaterThan(0);
		expect(await check(c, first)).toBe(0);
		await componentAuthority(env, c.component_appid).idle();
		const status = await componentStatus(c);
		expect(status.incident?.reason).toMatch(/61005.*\/open\/<component_appid>\/events.*`success`/);
		expect(status.calls_today.api_start_push_ticket).toBe(1);
		// The retry (the fault is spent) succeeds and closes the incident.
		await ringComponent(c);
		const healed = await readToken(c);
		expect(healed.body.component_access_token).not.toBe(first);
		expect((await componentStatus(c)).incident).toBeNull();
	});

	it("61004 names the component's IP allowlist and the relay", async () => {
		const c = T[5]!;
		await pushTicket(c);
		const restore = interceptUpstream((url) => url.pathname.endsWith("/api_component_token") ? wechatAnswer({ errcode: 61004, errmsg: "access clientip is not registered" }) : undefined);
		const res = await readToken(c);
		restore();
		expect(res.status).toBe(502);
		expect(res.body.wechat_errcode).toBe(61004);
		expect(res.body.message).toMatch(/IP allowlist.*relay/);
		// Not a ticket problem: pushes are not restarted for it.
		await componentAuthority(env, c.component_appid).idle();
		expect((await componentStatus(c)).calls_today.api_start_push_ticket).toBeUndefined();
	});

	it("no push for 30 minutes is an incident the alarm opens with no traffic, naming the event URL; the next push closes it", async () => {
		const c = T[6]!;
		await pushTicket(c);
		expect((await readToken(c)).status).toBe(200);
		// WeChat's push service stops, as it sometimes does.
		await simOpen(`components/${c.component_appid}/schedule`, { running: false });
		// The alarm is armed for the moment the ticket goes stale, long before the token's refresh.
		const at = await componentAlarm(c);
		expect(at! - Date.now()).toBeLessThanOrEqual(30 * 60_000);
		await ringComponent(c);
		await componentAuthority(env, c.component_appid).idle();
		const status = await componentStatus(c);
		expect(status.incident?.reason).toMatch(/no component_verify_ticket pushed for 30 min.*`success`/);
		expect(status.calls_today.api_start_push_ticket).toBe(1);
		expect(status.component.ticket_age_s).toBeGreaterThanOrEqual(1800);
		// The broker's api_start_push_ticket started WeChat's pushes again.
		expect((await componentStats(c)).api_start_push_ticket).toBe(1);
		expect((await componentInfo(c)).schedule.running).toBe(true);
		// The token itself is fine meanwhile.
		expect((await readToken(c)).status).toBe(200);
		await pushTicket(c);
		expect((await componentStatus(c)).incident).toBeNull();
	});
});

describe("the watchdog", () => {
	it("pokes a component of WECHAT_COMPONENTS whose alarm is overdue, which then does what its alarm would", async () => {
		const c = T[13]!;
		await pushTicket(c);
		expect((await readToken(c)).status).toBe(200);
		// The alarm (due when the ticket goes stale) never fires: the platform lost it.
		await travel(32 * 60);
		const report = await watchdog({ ...env, WECHAT_APPS: "[]" });
		expect(report.overdue).toContain(`component:${c.component_appid}`);
		await componentAuthority(env, c.component_appid).idle();
		expect((await componentStatus(c)).incident?.reason).toMatch(/no component_verify_ticket pushed for 3\d min/);
	});
});

describe("a component added through the admin API", () => {
	it("starts its chain at once: the alarm finds no ticket (an incident), and the first push brings the token", async () => {
		const c = registryTestComponent(5);
		const put = await call(`/admin/components/${c.component_appid}`, { method: "PUT", key: KEYS.admin, body: { secret: c.secret, token: c.token, encoding_aes_key: c.encoding_aes_key } });
		expect(put.status).toBe(201);
		expect(await componentAlarm(c)).toBeLessThanOrEqual(Date.now());
		await ringComponent(c);
		await componentAuthority(env, c.component_appid).idle();
		expect((await componentStatus(c)).incident?.reason).toMatch(/no component_verify_ticket/);
		expect((await componentStats(c)).api_component_token).toBe(0);
		await pushTicket(c);
		await ringComponent(c);
		const res = await readToken(c);
		expect(res.status).toBe(200);
		expect((await componentStats(c)).api_component_token).toBe(1);
		expect((await componentStatus(c)).incident).toBeNull();
	});
});

describe("GET /component-token", () => {
	/** A vendor's key: the first component's token, and (later) its authorizers, nothing else. */
	let vendor: string;
	beforeAll(async () => {
		vendor = await registryKey("comptok-vendor", ["component:wxcompcomptok00"]);
	});

	it("answers a key scoped component:<id> for that component only, and that key reaches nothing else", async () => {
		const c = T[0]!;
		const mine = await readToken(c, vendor);
		expect(mine.status).toBe(200);
		expect(Object.keys(mine.body).sort()).toEqual(["component_access_token", "expires_in"]);
		const other = await readToken(T[1]!, vendor);
		expect(other.status).toBe(403);
		expect(other.body.message).toMatch(/component:wxcompcomptok01/);
		// Not configured: the scope is checked first, so the key learns nothing about what exists.
		expect((await call("/component-token?component_appid=wxnosuchcomponent", { key: vendor })).status).toBe(403);
		expect((await call("/token?appid=wxauths00", { key: vendor })).status).toBe(403);
		expect((await call("/status", { key: vendor })).status).toBe(403);
	});

	it("/status shows the component's entry: its token masked, its lifetime, its ticket's age; a component's admin key sees it alone", async () => {
		const c = T[0]!;
		// (Asked with a key of this component alone: an unscoped /status wakes every test app's object.)
		const admin = await registryKey("comptok-vendor-admin", ["component:wxcompcomptok00"], true);
		const page = await call("/status?limit=100", { key: admin });
		expect(page.status).toBe(200);
		const apps = page.body.apps as Record<string, any>[];
		expect(apps.map((a) => a.appid)).toEqual([`component:${c.component_appid}`]);
		const entry = apps[0]!;
		expect(entry.mode).toBe("component");
		expect(entry.token).toMatch(/…|\*/);
		expect(entry.expires_in).toBeGreaterThan(0);
		expect(entry.credentials[0].label).toBe("component_access_token");
		expect(entry.component.ticket_age_s).toBeGreaterThanOrEqual(0);
		expect(entry.schedule.started).toBe(true);
	});

	it("answers 404 naming how to add an unknown component, and 400 without a component_appid", async () => {
		const missing = await call("/component-token?component_appid=wxnosuchcomponent", { key: KEYS.all });
		expect(missing.status).toBe(404);
		expect(missing.body.message).toMatch(/PUT \/admin\/components\/wxnosuchcomponent/);
		const bad = await call("/component-token", { key: KEYS.all });
		expect(bad.status).toBe(400);
		expect((await call("/component-token?component_appid=a:b", { key: KEYS.all })).status).toBe(400);
		expect((await call(tokenPath(T[0]!), { key: "nope" })).status).toBe(401);
	});
});
