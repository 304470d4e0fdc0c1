/**
 * GET /status pages and GET /health for a "*" key answer from the schedule index (src/ops/status-page.ts):
 * a request reaches only the objects of the page it shows, and /health none. Each test runs the broker with
 * WECHAT_APPS = this file's apps and counts the objects the request itself reaches.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it, vi } from "vitest";
import worker from "../../src/index";
import { nextQuotaReset } from "../../src/core/usage";
import { WATCHDOG_MARGIN_MS } from "../../src/ops/scheduled";
import { appsFor, KEYS, type TestApp } from "./fixtures";
import { getToken, settle, sim, travel } from "./helpers";

const next = appsFor("status");
const [early, later, third, broken, untouched] = [next("stable"), next("stable"), next("classic"), next("stable"), next("classic")];
const apps = [early, later, third, broken, untouched];
/** A stable token's planned refresh: 270 s before its 7200 s expire (core/lifetime.ts). */
const STABLE_DUE_S = 7200 - 270;

/** One request with WECHAT_APPS = this file's apps; returns the answer and the objects it reached. */
async function request(path: string, key: string = KEYS.admin): Promise<{ status: number; body: Record<string, any>; objects: string[] }> {
	const objects: string[] = [];
	const counting = new Proxy(env.TOKEN_AUTHORITY, {
		get(target, property) {
			if (property === "idFromName") return (name: string) => (objects.push(name), target.idFromName(name));
			const value = Reflect.get(target, property);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	const keys = [{ name: "ops", key: KEYS.admin, apps: ["*"], admin: true }, { name: "all-apps", key: KEYS.all, apps: ["*"] }];
	const scoped = { ...env, TOKEN_AUTHORITY: counting, WECHAT_APPS: JSON.stringify(apps), API_KEYS: JSON.stringify(keys) };
	const ctx = createExecutionContext();
	const res = await worker.fetch(new Request(`https://broker.test${path}`, { headers: { authorization: `Bearer ${key}` } }), scoped, ctx);
	await waitOnExecutionContext(ctx);
	expect(res.headers.get("cache-control")).toBe("no-store");
	return { status: res.status, body: (await res.json()) as Record<string, any>, objects };
}

/** The broker's clock when the scene below was set; each test starts there (setup.ts resets the clock per test). */
let arrangedAt: number | null = null;

async function arranged(): Promise<void> {
	if (arrangedAt !== null) {
		vi.setSystemTime(arrangedAt); // the simulator's clock is there already
		return;
	}
	// The arrangement spans ~2 h of WeChat's clock and calls_today counts one WeChat day (midnight China
	// time): it starts just after that midnight, or the real time of day could make the first call
	// yesterday's (started 1 h before midnight, this test failed).
	await travel(Math.ceil((nextQuotaReset(Date.now()) - Date.now()) / 1_000) + 1);
	// `early` due first; `broken` fails from the start (an incident, no token); `untouched` never runs.
	await getToken(early);
	await travel(1_000);
	for (const app of [later, third]) await getToken(app);
	await sim.configure(broken, { secret: "reset-by-an-admin-in-the-console" });
	expect((await getToken(broken)).status).toBe(502);
	for (const app of apps) await settle(app);
	// `early`'s alarm, never delivered here, is now WATCHDOG_MARGIN_MS + 1 s overdue; so is `broken`'s retry.
	await travel(STABLE_DUE_S - 1_000 + WATCHDOG_MARGIN_MS / 1_000 + 1);
	arrangedAt = Date.now();
}

it("answers the summary first, then one page in appid order; next_cursor walks every app once, asking only each page's objects", async () => {
	await arranged();
	const first = await request("/status?limit=2");
	expect(first.status).toBe(200);
	expect(first.body.summary).toEqual({ apps: 5, serving: 3, incidents: 1, never_fetched: 2, late: 2 });
	const seen: string[] = [];
	let page = first;
	for (;;) {
		expect(page.body.apps.length).toBeLessThanOrEqual(2);
		expect(page.objects.sort()).toEqual(page.body.apps.map((a: { appid: string }) => a.appid).sort());
		seen.push(...page.body.apps.map((a: { appid: string }) => a.appid));
		if (!page.body.next_cursor) break;
		page = await request(`/status?limit=2&cursor=${encodeURIComponent(page.body.next_cursor)}`);
	}
	expect(seen).toEqual(apps.map((a) => a.appid).sort());
});

it("shows each app's detailed status beside what the index knows of it", async () => {
	await arranged();
	const { body } = await request("/status?limit=100");
	const entry = (app: TestApp) => body.apps.find((a: { appid: string }) => a.appid === app.appid);
	expect(entry(early)).toMatchObject({ mode: "stable", calls_today: { stable_token: 1 }, schedule: { late: true, started: true } });
	expect(entry(early).token).toMatch(/…\(\d+ chars\)$/);
	expect(entry(later)).toMatchObject({ schedule: { late: false, started: true } });
	expect(entry(broken)).toMatchObject({ token: null, incident: { reason: expect.stringMatching(/40125/) } });
	expect(entry(untouched)).toMatchObject({ schedule: { next_wake: null, late: false, started: false } });
});

it("refuses a limit outside 1–100 or an empty cursor with 400 and what to send", async () => {
	await arranged();
	for (const query of ["limit=0", "limit=101", "limit=ten", "limit=2.5", "cursor="]) {
		const res = await request(`/status?${query}`);
		expect(res.status, query).toBe(400);
		expect(res.body).toMatchObject({ error: "bad_request", message: expect.stringMatching(/limit|cursor/) });
		expect(res.objects).toEqual([]);
	}
});

it("/health for a key scoped to every app answers from the index, naming the unhealthy apps, without asking any object", async () => {
	await arranged();
	const res = await request("/health", KEYS.all);
	expect(res.status).toBe(503);
	expect(res.objects).toEqual([]);
	expect(res.body.summary).toEqual({ apps: 5, unhealthy: 2 });
	expect(res.body.apps.map((a: { appid: string }) => a.appid)).toEqual([broken.appid, untouched.appid].sort());
	expect(res.body.message).toMatch(new RegExp(`^2 of 5 apps .*${broken.appid} \\(open incident since .*40125`));
	expect(res.body.message).toContain(`${untouched.appid} (not started yet`);
});

it("/health for a \"*\" key is 200 once every app serves with no incident", async () => {
	await arranged();
	await sim.configure(broken, { secret: broken.secret });
	for (const app of [broken, untouched]) expect((await getToken(app)).status).toBe(200);
	for (const app of apps) await settle(app);
	// `early` is late and not yet refreshed, but still serving: health is about serving, not punctuality.
	const res = await request("/health", KEYS.all);
	expect(res.body).toEqual({ ok: true, summary: { apps: 5, unhealthy: 0 }, apps: [] });
	expect(res.status).toBe(200);
});
