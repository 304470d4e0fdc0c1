/**
 * The JS-SDK routes' protections that an outside mutation pass (issue 20) could remove without any test
 * noticing: the page URL signed exactly as the page sends it, the fragment cut at its first `#`, and the
 * key's app scope on POST /jssdk/config and GET /ticket. Each test fails when its protection is removed
 * (scripts/mutations.mjs, "[guards-jssdk]").
 */
import { describe, expect, it } from "vitest";
import { appsFor, KEYS, SCOPED_APPS } from "./fixtures";
import { call, sim } from "./helpers";

const next = appsFor("guards-jssdk");

function jssdkConfig(appid: string, url: string, key: string = KEYS.all) {
	return call("/jssdk/config", { method: "POST", key, body: { appid, url } });
}

function signed(body: Record<string, unknown>) {
	return { timestamp: body.timestamp, nonceStr: body.nonceStr, signature: body.signature };
}

describe("POST /jssdk/config signs the url wx.config signs", () => {
	it("signs the url exactly as given: no re-encoding, no normalising", async () => {
		const app = next("stable");
		// location.href as a page may hold it: escapes already in it, a raw non-ASCII query, an upper-case host.
		const url = "https://Shop.Example.com/pay/../order?q=%E4%B8%AD%20x&name=张三&list=a,b|c";
		const res = await jssdkConfig(app.appid, url);
		expect(res.status).toBe(200);
		// Failed with the url re-encoded (encodeURI) before signing: wx.config on that page says "invalid signature".
		expect(await sim.verify({ appid: app.appid, url, ...signed(res.body) })).toEqual({ ok: true });
	});

	it("cuts the fragment at its first #, as wx.config does", async () => {
		const app = next("stable");
		const url = "https://shop.example.com/pay?order=42#/confirm#step-2";
		const res = await jssdkConfig(app.appid, url);
		expect(res.status).toBe(200);
		// Failed with the fragment cut at the last #: the signature covered "…#/confirm".
		expect(await sim.verify({ appid: app.appid, url, ...signed(res.body) })).toEqual({ ok: true });
		expect(await sim.verify({ appid: app.appid, url: "https://shop.example.com/pay?order=42", ...signed(res.body) })).toEqual({ ok: true });
	});
});

describe("the key's app scope", () => {
	it("refuses POST /jssdk/config for an app outside the key's scope with 403, asking WeChat nothing", async () => {
		const app = next("stable");
		expect(SCOPED_APPS).not.toContain(app.appid);
		const res = await jssdkConfig(app.appid, "https://shop.example.com/pay", KEYS.scoped);
		// Failed without the scope check: 200 with a signature made with another app's ticket.
		expect(res.status).toBe(403);
		expect(res.body.error).toBe("forbidden");
		expect(res.body.message).toMatch(/not allowed to use app/);
		expect(await sim.calls(app)).toMatchObject({ stable_token: 0 });
		expect((await sim.calls(app)).getticket ?? 0).toBe(0);
	});

	it("refuses GET /ticket for an app outside the key's scope with 403, asking WeChat nothing", async () => {
		const app = next("stable");
		const res = await call(`/ticket?appid=${app.appid}&type=jsapi`, { key: KEYS.scoped });
		// Failed without the scope check: 200 with the other app's jsapi ticket.
		expect(res.status).toBe(403);
		expect(res.body.error).toBe("forbidden");
		expect(res.body.message).toMatch(/not allowed to use app/);
		expect((await sim.calls(app)).getticket ?? 0).toBe(0);
	});
});
