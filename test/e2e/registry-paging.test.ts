/**
 * Paging the registry's apps (issue 16): 1,200 apps added through the admin API of the bundle as it ships,
 * then every page walked: none missing, none twice, in order. Here rather than in the worker pool, whose
 * per-test storage isolation makes each new Durable Object dearer than the one before (measured: a PUT took
 * 115 ms among the first 50 objects and 357 ms among objects 250–300; in Miniflare alone, flat).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startBroker, startSimulator, type Broker, type Simulator } from "./stack";

const ADMIN_KEY = "registry-paging-admin-key-0123456789";
const APPS = 1_200;
/** Admin calls in flight: enough to keep workerd busy without queueing behind one another for long. */
const CONCURRENCY = 24;
const apps = Array.from({ length: APPS }, (_, n) => ({ appid: `wxpage${String(n).padStart(5, "0")}`, secret: `page-secret-${n}-0123456789` }));
/** One app in WECHAT_APPS, sorting among the registry's: the pages merge both sources. */
const fromSecret = { appid: "wxpage00600x", secret: "page-secret-from-the-secret-0123", mode: "stable" as const };

let sim: Simulator;
let broker: Broker;

beforeAll(async () => {
	sim = await startSimulator({ port: 0, apps: [...apps, { appid: fromSecret.appid, secret: fromSecret.secret }] });
	broker = await startBroker({
		apps: [fromSecret],
		keys: [{ name: "ops", key: ADMIN_KEY, apps: ["*"], admin: true }],
		vars: { WECHAT_API_BASE: sim.url, REGISTRY_KEY: randomBytes(32).toString("base64") },
	});
});

afterAll(async () => {
	await broker?.dispose();
	await sim?.close();
});

async function admin(path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
	const response = await fetch(`${broker.url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" } });
	return { status: response.status, body: await response.json() };
}

it("pages through 1,200 apps added through the API with none missing and none twice", { timeout: 600_000 }, async () => {
	for (let i = 0; i < apps.length; i += CONCURRENCY) {
		const puts = await Promise.all(apps.slice(i, i + CONCURRENCY).map((app) => admin(`/admin/apps/${app.appid}`, { method: "PUT", body: JSON.stringify({ secret: app.secret }) })));
		for (const put of puts) expect(put).toMatchObject({ status: 201, body: { token: { ok: true } } });
	}
	const seen: string[] = [];
	let cursor: string | null = null;
	let pages = 0;
	do {
		const page: { status: number; body: any } = await admin(`/admin/apps?limit=500${cursor ? `&cursor=${cursor}` : ""}`);
		expect(page.status).toBe(200);
		seen.push(...page.body.apps.map((a: { appid: string }) => a.appid));
		cursor = page.body.next_cursor;
		pages++;
	} while (cursor);
	const expected = [...apps.map((a) => a.appid), fromSecret.appid].sort();
	expect(seen).toEqual(expected);
	expect(pages).toBe(Math.ceil(expected.length / 500));
});
