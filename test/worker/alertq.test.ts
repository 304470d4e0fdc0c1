/**
 * The alert retry queue: an alert the webhook did not take is kept in the object's storage and sent by a
 * later cron run; one that fails 5 times is dropped (and logged), so a dead webhook cannot pile up a queue.
 * The simulator's webhook fails on demand (POST /__sim/webhook/fail).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { appsFor, type TestApp } from "./fixtures";
import { ALERT_WEBHOOK_KEY, getToken, nextAlarm, runCron, sim, simUrl } from "./helpers";
import { logLines } from "./setup";

const next = appsFor("alertq");

afterEach(() => webhookControl("DELETE", "/webhook")); // ends the failure mode

async function webhookControl(method: string, path: string, body?: unknown): Promise<any> {
	const res = await fetch(`${simUrl}/__sim${path}`, {
		method, ...(body !== undefined && { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
	});
	expect(res.status).toBe(200);
	return res.json();
}

/** What the webhook received about the app, without asking the broker to send anything first. */
async function received(app: TestApp): Promise<string[]> {
	const { messages } = await webhookControl("GET", `/webhook?key=${ALERT_WEBHOOK_KEY}`) as { messages: Array<{ content: string }> };
	return messages.map((m) => m.content).filter((content) => content.includes(app.appid));
}

/** The alerts still queued in the object's storage, however the state is laid out: those naming the app. */
async function queued(app: TestApp): Promise<number> {
	const stub = authority(env, app.appid);
	const stored = await runInDurableObject(stub, async (_instance, state) => JSON.stringify([...(await state.storage.list()).values()]));
	return stored.split(`[wx-token-broker] ${app.appid} `).length - 1;
}

/** An app whose refresh fails for a reason that needs a person: one "unhealthy" alert, sent at once (and failing). */
async function unhealthyApp(): Promise<TestApp> {
	const app = next("classic");
	await sim.fault({ appid: app.appid, kind: "errcode", errcode: 40125 });
	expect((await getToken(app)).status).toBe(502);
	return app;
}

it("keeps an alert the webhook refused and sends it at the object's next alarm", async () => {
	await webhookControl("POST", "/webhook/fail", { times: 2 });
	const app = await unhealthyApp(); // the first send fails
	await authority(env, app.appid).flushAlerts(); // the second fails too
	expect(await received(app)).toEqual([]);
	expect(await queued(app)).toBe(1);

	expect(await nextAlarm(app)).toBeLessThanOrEqual(10);
	const alerts = await received(app);
	expect(alerts).toHaveLength(1);
	expect(alerts[0]).toMatch(/is unhealthy.*40125/);
	expect(await queued(app)).toBe(0);
});

it("drops an alert after 5 failed sends, and logs it", async () => {
	await webhookControl("POST", "/webhook/fail", {}); // until cleared
	const app = await unhealthyApp(); // send 1
	for (let send = 2; send <= 4; send++) await authority(env, app.appid).flushAlerts();
	expect(await queued(app)).toBe(1); // 4 failed sends: still kept

	await authority(env, app.appid).flushAlerts(); // send 5
	expect(await queued(app)).toBe(0);
	expect(logLines.some((line) => line.includes('"event":"alert_dropped"') && line.includes(app.appid))).toBe(true);

	await webhookControl("DELETE", "/webhook"); // the webhook works again
	await runCron([app]);
	expect(await received(app)).toEqual([]);
});
