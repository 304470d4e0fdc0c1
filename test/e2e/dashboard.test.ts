/**
 * GET /dashboard in a real headless Chromium (Debian's package, driven by playwright-core), against the
 * built broker with `npm start`'s demo apps and keys: paste a key → the table; a bad key → a clear error;
 * the key never in a URL; no Content-Security-Policy violation. `UPDATE_SCREENSHOT=1 npm test` also
 * refreshes docs/dashboard.png for the README.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DEMO_ADMIN_KEY, DEMO_APPS, DEMO_KEYS, DEMO_READER_KEY } from "../../scripts/demo.mjs";
import { startBroker, startSimulator, type Broker, type Simulator } from "./stack";

const CHROMIUM = "/usr/bin/chromium";
// What page.evaluate's functions use, in the browser; this project's types are the Workers runtime's.
declare const sessionStorage: { getItem(key: string): string | null };
declare const document: { querySelector(selector: string): { textContent: string | null } | null; getElementById(id: string): unknown };
const [stableApp, classicApp] = [DEMO_APPS[0]!, DEMO_APPS[1]!];

let sim: Simulator;
let broker: Broker;
let browser: Browser;
const tokens: string[] = [];
const consoleLines: string[] = [];

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
	const res = await fetch(`${broker.url}${path}`, { ...init, headers: { authorization: `Bearer ${DEMO_ADMIN_KEY}`, ...init.headers } });
	return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
	sim = await startSimulator({ apps: DEMO_APPS.map(({ appid, secret }) => ({ appid, secret })) });
	broker = await startBroker({ apps: DEMO_APPS, keys: DEMO_KEYS, vars: { WECHAT_API_BASE: sim.url } });
	for (const app of DEMO_APPS) tokens.push((await api(`/token?appid=${app.appid}`)).body.access_token as string);
	// Something for the incident and last-error columns: the classic app's AppSecret was reset in the console.
	await fetch(`${sim.url}/__sim/apps`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ appid: classicApp.appid, secret: "reset-in-the-console" }) });
	expect((await api(`/token/refresh?appid=${classicApp.appid}`, { method: "POST" })).status).toBe(502);
	browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});

afterAll(async () => {
	await browser?.close();
	await broker?.dispose();
	await sim?.close();
});

async function openDashboard(): Promise<Page> {
	const context = await browser.newContext({ viewport: { width: 1280, height: 420 } });
	const page = await context.newPage();
	page.on("console", (message) => consoleLines.push(message.text()));
	page.on("pageerror", (error) => consoleLines.push(`pageerror: ${error.message}`));
	const res = await page.goto(`${broker.url}/dashboard`);
	expect(res?.status()).toBe(200);
	return page;
}

async function submitKey(page: Page, key: string): Promise<void> {
	await page.fill("#key", key);
	await page.click("button[type=submit]");
}

it("serves the static page with a strict Content-Security-Policy, and nothing else the broker answers can pass for a script", async () => {
	const res = await fetch(`${broker.url}/dashboard`);
	expect(res.status).toBe(200);
	expect(res.headers.get("content-type")).toMatch(/^text\/html/);
	// Revalidated on every load, so a new deploy shows at once; the page itself holds no data.
	expect(res.headers.get("cache-control")).toContain("max-age=0");
	const csp = res.headers.get("content-security-policy") ?? "";
	for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "form-action 'none'", "frame-ancestors 'none'", "base-uri 'none'", "require-trusted-types-for 'script'"]) {
		expect(csp).toContain(directive);
	}
	expect(csp).not.toContain("unsafe");
	expect(await res.text()).toContain('<script src="/dashboard.js"></script>');
	const script = await fetch(`${broker.url}/dashboard.js`);
	expect(script.headers.get("content-type")).toMatch(/^(application|text)\/javascript/);
	expect(script.headers.get("x-content-type-options")).toBe("nosniff");
	await script.text();
	// 'self' admits any same-origin script: nothing the Worker answers may be taken for one.
	const json = await fetch(`${broker.url}/healthz`);
	expect(json.headers.get("x-content-type-options")).toBe("nosniff");
	await json.text();
	// Cloudflare's asset server answers other methods on the page itself.
	const post = await fetch(`${broker.url}/dashboard`, { method: "POST" });
	expect(post.status).toBe(405);
	await post.text();
});

it("shows every demo app after an admin key is pasted, with masked tokens, quota, incident and last error", async () => {
	const page = await openDashboard();
	await submitKey(page, DEMO_ADMIN_KEY);
	await page.waitForSelector(`tr[data-appid="${classicApp.appid}"]`);
	// One row per credential; the access_token's rows carry what is checked here.
	const rows = await page.$$eval('#rows tr[data-credential="token"]', (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")));
	expect(rows.map((cells) => cells[0])).toEqual([stableApp.appid, classicApp.appid]);
	const [stable, classic] = rows as [string[], string[]];
	expect(stable[1]).toBe("stable");
	expect(stable[2]).toMatch(/^.{8}…\(\d+ chars\)$/);
	expect(stable[3]).toMatch(/^\d+(\.\d)? h$|^\d+ min$/);
	expect(stable[4]).toMatch(/^in /);
	expect(stable[5]).toMatch(/^1 \/ 500000 today$/);
	expect(stable[6]).toBe("none");
	expect(classic[1]).toBe("classic");
	expect(classic[5]).toMatch(/^2 \/ 2000 today$/);
	expect(classic[6]).toMatch(/^since .*40125/);
	expect(classic[7]).toMatch(/40125: the AppSecret is wrong/);
	expect(await page.$$('#rows tr[data-credential="token"] .bar > span')).toHaveLength(2);
	// The tickets no client asked for yet: listed, not fetched.
	const tickets = await page.$$eval('#rows tr:not([data-credential="token"])', (trs) => trs.map((tr) => tr.querySelector("td:nth-child(3)")?.textContent));
	expect(tickets).toEqual(["none", "none", "none", "none"]);

	const html = await page.content();
	for (const token of tokens) expect(html).not.toContain(token);
	expect(html).not.toContain(DEMO_ADMIN_KEY);
	expect(page.url()).toBe(`${broker.url}/dashboard`);
	expect(await page.evaluate(() => sessionStorage.getItem("wx-token-broker-admin-key"))).toBe(DEMO_ADMIN_KEY);

	const shotDir = mkdtempSync(join(tmpdir(), "broker-dashboard-"));
	const shot = process.env.UPDATE_SCREENSHOT ? "docs/dashboard.png" : join(shotDir, "dashboard.png");
	await page.screenshot({ path: shot, fullPage: true });
	expect(statSync(shot).size).toBeGreaterThan(10_000);
	rmSync(shotDir, { recursive: true, force: true });

	// The key stays in the tab: a reload shows the table again without asking.
	await page.reload();
	await page.waitForSelector(`tr[data-appid="${stableApp.appid}"]`);
	expect(page.url()).not.toContain(DEMO_ADMIN_KEY);
	await page.context().close();
});

it("says clearly when the key is wrong or not an admin key, and forgets a wrong one", async () => {
	const page = await openDashboard();
	await submitKey(page, "not-a-key-of-this-broker-0123");
	await page.waitForSelector("#message.error");
	expect(await page.textContent("#message")).toBe("HTTP 401: This API key is not valid. Check the key, or ask the broker's operator for one.");
	expect(await page.isHidden("#table")).toBe(true);
	expect(await page.evaluate(() => sessionStorage.getItem("wx-token-broker-admin-key"))).toBeNull();

	await submitKey(page, DEMO_READER_KEY);
	await page.waitForFunction(() => document.querySelector("#message")?.textContent?.startsWith("HTTP 403"));
	expect(await page.textContent("#message")).toMatch(/^HTTP 403: The key "demo-reader" is not an admin key/);
	expect(page.url()).toBe(`${broker.url}/dashboard`);
	await page.context().close();
});

it("renders one row per credential, as /status lists them, with the app's incident on its first row", async () => {
	const page = await openDashboard();
	await page.route((url) => url.pathname === "/status", (route) => route.fulfill({
		json: {
			now: new Date().toISOString(),
			summary: { apps: 1, serving: 1, incidents: 1, never_fetched: 0, late: 0 },
			next_cursor: null,
			apps: [{
				appid: stableApp.appid, mode: "stable", incident: { since: "2026-11-25T00:00:00.000Z", reason: "daily quota nearly spent" },
				credentials: [
					{ type: "token", label: "access_token", value: "86_abcdef…(155 chars)", expires_in: 5000, next_refresh: new Date(Date.now() + 4_000_000).toISOString(), calls_today: 3, daily_quota: 500000, last_error: null },
					{ type: "jsapi", label: "jsapi ticket", value: "kgt8ON7y…(86 chars)", expires_in: 90, next_refresh: null, calls_today: 9500, daily_quota: 10000, last_error: null },
					// A WeCom ticket: limited by the hour, with no daily quota (null in /status).
					{ type: "agent_config", label: "agent_config ticket", value: "bxLdikRX…(86 chars)", expires_in: 7000, next_refresh: null, calls_today: 4, daily_quota: null, last_error: null },
				],
			}],
		},
	}));
	await submitKey(page, DEMO_ADMIN_KEY);
	await page.waitForSelector("#rows tr:nth-child(3)");
	const rows = await page.$$eval("#rows tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")));
	expect(rows.map((cells) => [cells[0], cells[1], cells[2]])).toEqual([
		[stableApp.appid, "stable", "86_abcdef…(155 chars)"],
		[stableApp.appid, "jsapi ticket", "kgt8ON7y…(86 chars)"],
		[stableApp.appid, "agent_config ticket", "bxLdikRX…(86 chars)"],
	]);
	expect(rows[2]![5], "a missing quota is not a quota of 0").toBe("4 today (no daily quota)");
	expect(await page.$$eval("#rows tr:nth-child(3) .bar", (bars) => bars.length)).toBe(0);
	expect(rows[0]![6]).toMatch(/daily quota nearly spent/);
	expect(rows[1]![3]).toBe("90 s");
	expect(rows[1]![5]).toBe("9500 / 10000 today");
	expect(rows[1]![6]).toBe("none");
	expect(await page.$eval("#rows tr:nth-child(2) .bar", (bar) => bar.className)).toBe("bar full");
	await page.context().close();
});

it("shows the summary first and pages through /status with Next and Previous, one page of 25 apps at a time", async () => {
	const page = await openDashboard();
	const appids = Array.from({ length: 30 }, (_, i) => `wxpaged${String(i).padStart(10, "0")}`);
	const asked: string[] = [];
	await page.route((url) => url.pathname === "/status", (route) => {
		const url = new URL(route.request().url());
		asked.push(url.search);
		const limit = Number(url.searchParams.get("limit"));
		const after = url.searchParams.get("cursor");
		const start = after ? appids.indexOf(after) + 1 : 0;
		const slice = appids.slice(start, start + limit);
		return route.fulfill({
			json: {
				now: new Date().toISOString(),
				summary: { apps: 30, serving: 28, incidents: 1, never_fetched: 2, late: 1 },
				next_cursor: start + limit < appids.length ? slice[slice.length - 1] : null,
				apps: slice.map((appid) => ({ appid, mode: "stable", token: "86_abcdef…(155 chars)", expires_in: 5000, next_refresh: null, calls_today: {}, daily_quota: 500000, incident: null, last_error: null })),
			},
		});
	});
	await submitKey(page, DEMO_ADMIN_KEY);
	await page.waitForSelector(`tr[data-appid="${appids[0]}"]`);
	const summary = await page.$$eval("#summary > span", (spans) => spans.map((s) => [s.getAttribute("data-field"), s.textContent]));
	expect(summary).toEqual([["apps", "30 apps"], ["serving", "28 serving"], ["incidents", "1 open incidents"], ["never_fetched", "2 never fetched"], ["late", "1 late"]]);
	// The summary sits above the table.
	expect(await page.$eval("#summary", (box) => box.compareDocumentPosition(document.getElementById("table")!) & 4)).toBe(4);
	const shown = () => page.$$eval("#rows tr", (trs) => trs.map((tr) => tr.getAttribute("data-appid")));
	expect(await shown()).toEqual(appids.slice(0, 25));
	expect(await page.isDisabled("#prev")).toBe(true);
	expect(await page.textContent("#message")).toMatch(/^25 of 30 apps on this page/);

	await page.click("#next");
	await page.waitForSelector(`tr[data-appid="${appids[25]}"]`);
	expect(await shown()).toEqual(appids.slice(25));
	expect(await page.isDisabled("#next")).toBe(true);
	expect(await page.textContent("#pageinfo")).toBe("apps 26–30");

	await page.click("#prev");
	await page.waitForSelector(`tr[data-appid="${appids[0]}"]`);
	expect(await shown()).toEqual(appids.slice(0, 25));
	expect(asked).toEqual(["?limit=25", `?limit=25&cursor=${appids[24]}`, "?limit=25"]);
	await page.context().close();
});

it("runs without a single Content-Security-Policy violation or script error", () => {
	expect(consoleLines.filter((line) => /Content Security Policy|pageerror|Trusted Type/i.test(line))).toEqual([]);
});
