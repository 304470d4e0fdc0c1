/**
 * Alert sending's protections that an outside mutation pass (issue 20) could remove without any test noticing:
 * a webhook that answers HTTP 200 with an errcode has not taken the alert, and a webhook that does not answer
 * cannot hold the queue. Each test fails when its protection is removed (scripts/mutations.mjs, "[guards-alerts]").
 */
import { expect, it } from "vitest";
import { ALERT_TIMEOUT_MS } from "../../src/engine/alerts";
import { appsFor, type TestApp } from "./fixtures";
import { alertsFor, getToken, interceptUpstream, sim, wechatAnswer } from "./helpers";

const next = appsFor("guards-alerts");

const isWebhook = (url: URL) => url.pathname.endsWith("/cgi-bin/webhook/send");

/** An app whose refresh fails for a reason that needs a person: one "unhealthy" alert, sent in the background. */
async function turnUnhealthy(app: TestApp): Promise<void> {
	await sim.fault({ appid: app.appid, kind: "errcode", errcode: 40125 });
	expect((await getToken(app)).status).toBe(502);
}

it("keeps an alert the webhook answered with an errcode in a 200 body, and sends it again", async () => {
	const app = next("classic");
	let sends = 0;
	// WeCom's group robot answers HTTP 200 for everything; 45009 is its "more than 20 messages a minute".
	interceptUpstream((url) => isWebhook(url) && sends++ === 0 ? wechatAnswer({ errcode: 45009, errmsg: "api freq out of limit" }) : undefined);
	await turnUnhealthy(app);
	// The first send was refused; flushing (in alertsFor) sends the kept alert again, and the webhook takes it.
	const alerts = await alertsFor(app);
	// Failed when any 200 counted as sent: the refused alert was dropped and never arrived.
	expect(alerts.map((a) => a.content)).toEqual([expect.stringMatching(/is unhealthy.*40125/)]);
	expect(sends).toBe(2);
});

// The one test here that waits for real: the send's timeout is the broker's own, ALERT_TIMEOUT_MS (3 s).
it("gives up on a webhook that does not answer, keeps the alert, and sends it again", async () => {
	const app = next("classic");
	let sends = 0;
	interceptUpstream((url, init) => {
		if (!isWebhook(url) || sends++ > 0) return undefined;
		// A webhook that never answers: the call ends only when the broker's own signal aborts it.
		return new Promise<Response>((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
	});
	await turnUnhealthy(app);
	// Failed without the timeout: the first send never ends, so the queue (and this flush) waits forever.
	const alerts = await alertsFor(app);
	expect(alerts.map((a) => a.content)).toEqual([expect.stringMatching(/is unhealthy.*40125/)]);
	expect(sends).toBe(2);
}, ALERT_TIMEOUT_MS + 5_000);
