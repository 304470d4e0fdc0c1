/**
 * A third adversarial review, of the broker's edge read path and operator features (auth, the memory tier,
 * the gateway, the HTTP contract). Each test demonstrates a promise the README or the source comments make
 * that the code broke when it was written; each failed on that code, and says which promise. All are fixed.
 */
import { describe, expect, it } from "vitest";
import { apiKeysJson, appsFor, KEYS, SCOPED_APPS, type TestApp } from "./fixtures";
import { gw, uploadMedia } from "./gateway-helpers";
import { call, deferred, forceRefresh, getToken, heldAnswer, interceptUpstream, isForce, lostAnswer, settle, sim, wechatAnswer } from "./helpers";

const next = appsFor("review3");

/** Reads the token twice: the first read asks the object, the second finds the KV copy and this isolate remembers it. */
async function rememberedToken(app: TestApp): Promise<string> {
	const first = await getToken(app);
	expect(first.status).toBe(200);
	const second = await getToken(app);
	expect(second.body.access_token).toBe(first.body.access_token);
	return second.body.access_token as string;
}

describe("the memory tier around an admin's forced refresh (POST /token/refresh)", () => {
	/*
	 * Promise (it was broken): README "Before a forced call … the object replaces the KV copy with a capped one that no
	 * reader serves, so reads go to the object, which promises no more than WeChat will keep"; only *another*
	 * isolate's memory may still hand out the old token. POST /token/invalidate forgets this isolate's
	 * remembered token before calling the object (app.ts), POST /token/refresh does not: while the force is
	 * under way, the very isolate running it keeps serving the token WeChat has just revoked, with its full
	 * expires_in.
	 */
	it("stable: a read in the isolate running the force is not handed the token the force revoked", async () => {
		const app = next("stable");
		const old = await rememberedToken(app);
		const sent = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) => (isForce(url, init) ? heldAnswer(real, url, init, sent.resolve, release.promise) : undefined));
		const forcing = forceRefresh(app.appid);
		await sent.promise; // WeChat has carried out force_refresh: `old` is dead
		// Readers wait for a force (it revokes at once): the answer is released while the read is under way.
		const reading = getToken(app);
		release.resolve();
		const read = await reading;
		expect((await forcing).status).toBe(200);
		await settle(app);
		expect(await sim.check(old)).toBe(40001);
		// Failed before the fix: 200 with `old` (from this isolate's memory), which WeChat refuses.
		expect(read.status !== 200 || read.body.access_token !== old, `read during the force got the revoked token, promised ${read.body.expires_in} s`).toBe(true);
	});

	/*
	 * Promise (it was broken): README "stable force_refresh … a normal stable_token call … then learns WeChat's live
	 * token. If that fails too, the current token is no longer handed out", and memory-cache.ts "the client
	 * that reported a dead token never gets it back from this isolate". After the admin is told 503, the same
	 * isolate goes on serving the revoked token from memory for up to MEMORY_TTL_MS.
	 */
	it("stable: after a force whose answer was lost (and the follow-up failed), this isolate stops serving the old token", async () => {
		const app = next("stable");
		const old = await rememberedToken(app);
		const restore = interceptUpstream((url, init, real) => {
			// The force reaches WeChat (which revokes `old`), its answer is lost; every later call is lost too.
			if (isForce(url, init)) return real(url, init).then(async (r) => (await r.text(), lostAnswer()));
			if (url.pathname === "/cgi-bin/stable_token") return lostAnswer();
			return undefined;
		});
		const refresh = await forceRefresh(app.appid);
		expect(refresh.status).toBe(503);
		restore();
		expect(await sim.check(old)).toBe(40001);
		const read = await getToken(app);
		await settle(app);
		// Failed before the fix: 200 with `old`, straight from this isolate's memory.
		expect(read.status !== 200 || read.body.access_token !== old, `read after the failed force got the revoked token, promised ${read.body.expires_in} s`).toBe(true);
	});
});

describe("a key scoped to some apps learns nothing about the others", () => {
	/*
	 * Promise (it was broken): http-shared.ts resolveAppid "A key scoped to some apps learns nothing about the others,
	 * configured or not: the same 403 for both", README's 403 row "(for a key scoped to some apps, also an
	 * unknown appid)". POST /token/invalidate checks the reported token before the key's scope, so for a
	 * configured app outside the scope a bad token gets 400, and for an unconfigured one 403: a scoped key can
	 * enumerate the broker's appids.
	 */
	it("POST /token/invalidate answers the same for an app outside the scope whether or not it is configured", async () => {
		const configuredElsewhere = "wxauths01"; // in WECHAT_APPS, not in the scoped key's apps
		expect(SCOPED_APPS).not.toContain(configuredElsewhere);
		const notConfigured = "wxnotconfigured99";
		const a = await call("/token/invalidate", { method: "POST", key: KEYS.scoped, body: { appid: configuredElsewhere, access_token: "" } });
		const b = await call("/token/invalidate", { method: "POST", key: KEYS.scoped, body: { appid: notConfigured, access_token: "" } });
		expect(b.status).toBe(403);
		// Failed before the fix: 400 "access_token must be …" for the configured app, 403 for the other.
		expect({ status: a.status, error: a.body.error }).toEqual({ status: b.status, error: b.body.error });
	});
});

describe("a broken configuration, seen from the gateway's paths", () => {
	/*
	 * Promise (it was broken): README "a broken one answers 500 on every route but /healthz: with a message naming the
	 * field to fix … for a caller holding an admin key …; anyone else only learns that the configuration is
	 * broken", and app.ts configErrorResponse "anyone else learns only that the broker is misconfigured (the
	 * message may name apps and keys)". Under WeChat's paths (/cgi-bin/…, no key at all) asWeChatError puts
	 * the whole fix-it message, key names and appids included, in errmsg.
	 */
	it("tells a caller without any key no more than the broker's own routes do", async () => {
		const keys = JSON.parse(await apiKeysJson()) as Array<Record<string, unknown>>;
		const broken = JSON.stringify([...keys, { name: "payroll-service", key: "payroll-key-0123456789abcdef", apps: SCOPED_APPS }, { name: "payroll-service", key: "payroll-key-2-0123456789abcdef", apps: ["*"] }]);
		const own = await gw("/token", {}, { API_KEYS: broken });
		expect(own.status).toBe(500);
		expect(JSON.stringify(own.json)).not.toContain("payroll-service"); // the broker's own route keeps it to itself
		const viaGateway = await gw("/cgi-bin/getcallbackip?access_token=anything", {}, { API_KEYS: broken });
		expect(viaGateway.status).toBe(500);
		// Failed before the fix: errmsg "system error (wx-token-broker configuration: API_KEYS[7]: the name \"payroll-service\" is used twice …)".
		expect(JSON.stringify(viaGateway.json)).not.toContain("payroll-service");
		expect(JSON.stringify(viaGateway.json)).not.toContain("API_KEYS[");
	});
});

describe("the gateway's heal trusts an answer whose body the client wrote", () => {
	/*
	 * Promise (it was broken): README "A report is evidence, not proof … a report of the *current* token is checked with
	 * WeChat before anything that revokes tokens", and forward.ts "The refusal is WeChat's own answer to the
	 * broker, so the report needs no probe". The gateway takes any short JSON answer carrying errcode 40001 as
	 * WeChat refusing the token, including a file the client itself uploaded and now downloads
	 * (/cgi-bin/media/get returns the bytes and content type as uploaded). Whoever holds a token the broker
	 * issued — no API key needed, an old token will do — can make the broker force_refresh the app, revoking
	 * the token every other service holds, every 30 s.
	 */
	it("stable: downloading a media file whose content is {\"errcode\":40001} does not force-refresh the app's token", async () => {
		const app = next("stable");
		const token = (await getToken(app)).body.access_token as string;
		const note = new File([JSON.stringify({ errcode: 40001, errmsg: "invalid credential" })], "note.json", { type: "application/json" });
		const uploaded = await uploadMedia(token, note);
		expect(uploaded.json).toMatchObject({ media_id: expect.any(String) });
		const before = await sim.calls(app);
		const download = await gw(`/cgi-bin/media/get?access_token=${encodeURIComponent(token)}&media_id=${uploaded.json!.media_id as string}`);
		expect(download.status).toBe(200);
		await settle(app);
		const after = await sim.calls(app);
		// Failed before the fix: one stable_token force_refresh (WeChat was never asked whether the token is bad) …
		expect(after.stable_token_force - before.stable_token_force, "force_refresh calls caused by a download").toBe(0);
		// … and the token every other client of this app holds is dead.
		expect(await sim.check(token)).toBe(0);
		// A file (Content-Disposition) is never read as a refusal: no token call and no probe at all.
		expect([after.stable_token - before.stable_token, after.getcallbackip - before.getcallbackip]).toEqual([0, 0]);
	});

	it("classic: a 40001 about something else than the broker's token is probed, and the token stays", async () => {
		// WeChat answers 40001 for any invalid credential: e.g. a call whose other parameters carry one.
		const app = next("classic");
		const token = (await getToken(app)).body.access_token as string;
		const path = "/cgi-bin/message/custom/send";
		let refused = false;
		interceptUpstream((url) => {
			if (url.pathname !== path || refused) return undefined;
			refused = true;
			return wechatAnswer({ errcode: 40001, errmsg: "invalid credential, access_token is invalid or not latest" });
		});
		const before = await sim.calls(app);
		const res = await gw(`${path}?access_token=${encodeURIComponent(token)}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
		await settle(app);
		const after = await sim.calls(app);
		expect(res.json?.errcode).toBe(40001); // WeChat's answer, passed back unchanged
		// One probe, which WeChat accepts: no token call, so every other client's token still works.
		expect([after.getcallbackip - before.getcallbackip, after.token - before.token]).toEqual([1, 0]);
		expect(await sim.check(token)).toBe(0);
	});
});

describe("nothing the Worker answers can pass for a script", () => {
	/*
	 * Promise (it was broken): README "/dashboard … every Worker answer carries X-Content-Type-Options: nosniff, so none
	 * can pass for a script", the premise of the dashboard's CSP `script-src 'self'` (app.ts: "the dashboard's
	 * policy admits its own files by 'self'"). The gateway passes WeChat's content-type back unchanged, and
	 * /cgi-bin/media/get returns a file with the content type it was uploaded with: any holder of a token the
	 * broker issued can put a script on the broker's own origin, which nosniff does not stop (the type is a
	 * script type) and which 'self' admits. Defence in depth only: the page itself has no injection point today.
	 */
	it("a media download through the gateway is never served with a JavaScript content type", async () => {
		const app = next("classic");
		const token = (await getToken(app)).body.access_token as string;
		const script = new File(["document.title = 'ran on the broker origin'"], "x.js", { type: "text/javascript" });
		const uploaded = await uploadMedia(token, script);
		expect(uploaded.json).toMatchObject({ media_id: expect.any(String) });
		const served = await gw(`/cgi-bin/media/get?access_token=${encodeURIComponent(token)}&media_id=${uploaded.json!.media_id as string}`);
		expect(served.status).toBe(200);
		expect(served.headers.get("x-content-type-options")).toBe("nosniff");
		// Failed before the fix: "text/javascript", from the broker's origin.
		expect(served.headers.get("content-type") ?? "").not.toMatch(/javascript|ecmascript/i);
	});
});
