/**
 * The gateway's protections that an outside mutation pass (issue 20) could remove without any test noticing.
 * Each test here fails when its protection is removed (scripts/mutations.mjs, "[guards-gateway]").
 */
import { describe, expect, it } from "vitest";
import { KEYS, appsFor, WECOM_SINGLE_CORP, wechatAppsJson, type TestApp } from "./fixtures";
import { expectWeChatError, gw, unknownTokenCalls } from "./gateway-helpers";
import { getToken, interceptUpstream, sim, travel } from "./helpers";

const next = appsFor("guards-gateway");

async function tokenOf(app: TestApp): Promise<string> {
	const res = await getToken(app);
	expect(res.status).toBe(200);
	return res.body.access_token as string;
}

const ipList = (token: string) => `/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`;

/**
 * A token one of the gateway's token endpoints hands out in its last seconds (the platform busy, so no
 * refresh gets through) is refused once it expires, although this isolate learnt it less than its 5 s memory
 * ago: the remembered entry carries the token's own expiry. Fails when the isolate remembered the handed-out
 * token past it, and forwarded the call (`forwarded` counts the platform's getcallbackip calls).
 */
async function refusedOnceExpired({ tokenPath, fault, forwarded }: { tokenPath: string; fault: { appid: string; endpoint: string }; forwarded: () => Promise<number> }): Promise<void> {
	const first = await gw(tokenPath);
	const token = first.json!.access_token as string;
	await sim.fault({ ...fault, kind: "errcode", errcode: -1 }); // until cleared (after the test)
	await travel((first.json!.expires_in as number) - 2);
	const late = await gw(tokenPath);
	expect(late.json!.access_token).toBe(token);
	expect(late.json!.expires_in).toBeLessThanOrEqual(2);
	await travel(3);
	const before = await forwarded();
	expectWeChatError(await gw(ipList(token)), 40001);
	expect(await forwarded()).toBe(before);
}

/** The directives of a Content-Security-Policy header, trimmed and lower-cased. */
function directives(policy: string | null): string[] {
	return (policy ?? "").split(";").map((d) => d.trim().toLowerCase()).filter(Boolean);
}

describe("what a forwarded answer can be on the broker's origin", () => {
	it("passes a redirect back as WeChat sent it, and never follows it", async () => {
		const app = next("stable");
		const token = await tokenOf(app);
		// A relay (or something in front of WeChat) answers 302; followed, it would lead to WeChat's 41001.
		await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "redirect", times: 1 });
		const res = await gw(ipList(token));
		// Failed without `redirect: "manual"`: HTTP 200 with errcode 41001, from the place the redirect named.
		expect(res.status).toBe(302);
		expect(res.json?.errcode).toBeUndefined();
	});

	it("serves an answer whose content type is a script type in any letter case as a download", async () => {
		const app = next("classic");
		const token = await tokenOf(app);
		const types = ["Text/JavaScript", "APPLICATION/ECMASCRIPT; charset=utf-8", "text/LiveScript"];
		let n = 0;
		interceptUpstream((url) => url.pathname === "/cgi-bin/media/get"
			? Promise.resolve(new Response("document.title = 'ran on the broker origin'", {
				headers: { "content-type": types[n++]!, "content-disposition": 'attachment; filename="x.js"' },
			}))
			: undefined);
		for (const type of types) {
			const served = await gw(`/cgi-bin/media/get?access_token=${encodeURIComponent(token)}&media_id=m`);
			expect(served.status).toBe(200);
			// Failed with a case-sensitive match: the script type came back as WeChat wrote it.
			expect(served.headers.get("content-type"), type).toBe("application/octet-stream");
		}
	});

	it("serves a forwarded page sandboxed, so it can run nothing on the broker's origin", async () => {
		const app = next("classic");
		const token = await tokenOf(app);
		// A relay's HTML error page in front of WeChat: text/html, passed back unchanged.
		await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "http", status: 502, times: 1 });
		const page = await gw(ipList(token));
		expect(page.status).toBe(502);
		expect(page.headers.get("content-type")).toBe("text/html");
		expect(directives(page.headers.get("content-security-policy"))).toEqual(expect.arrayContaining(["sandbox", "default-src 'none'"]));
		// A success is forwarded under the same policy.
		const ok = await gw(ipList(token));
		expect(ok.json!.ip_list).toEqual(expect.any(Array));
		expect(directives(ok.headers.get("content-security-policy"))).toContain("sandbox");
	});
});

describe("which tokens are gateway credentials", () => {
	it("refuses the tokens of an app that is no longer configured, without calling WeChat", async () => {
		const app = next("stable");
		const token = await tokenOf(app);
		expect((await gw(ipList(token))).json!.ip_list).toEqual(expect.any(Array)); // recognised while configured
		const without = JSON.stringify((JSON.parse(wechatAppsJson()) as Array<{ appid?: string }>).filter((a) => a.appid !== app.appid));
		const before = await sim.calls(app);
		// Failed without the check: forwarded with the removed app's current token, and answered by WeChat.
		expectWeChatError(await gw(ipList(token), {}, { WECHAT_APPS: without }), 40001);
		expect(await sim.calls(app)).toEqual(before);
	});

	it.each([
		["a forged token before the broker's", (token: string) => `access_token=forged-0123456789&access_token=${encodeURIComponent(token)}`],
		["the broker's token before a forged one", (token: string) => `access_token=${encodeURIComponent(token)}&access_token=forged-0123456789`],
	])("refuses two access_tokens, %s, without calling WeChat", async (_order, query) => {
		const app = next("stable");
		const token = await tokenOf(app);
		const [before, unknownBefore] = [await sim.calls(app), await unknownTokenCalls()];
		// Failed when the last token won (first order) or the first did (second order): the call went to
		// WeChat, which reads the first access_token, with a token the broker never checked.
		expectWeChatError(await gw(`/cgi-bin/getcallbackip?${query(token)}`), 40001);
		expect(await unknownTokenCalls()).toEqual(unknownBefore);
		expect(await sim.calls(app)).toEqual(before);
	});

	it("refuses a token from its /cgi-bin/token once the token's own lifetime is over", async () => {
		const app = next("classic");
		const res = await gw(`/cgi-bin/token?grant_type=client_credential&appid=${app.appid}&secret=${KEYS.all}`);
		const token = res.json!.access_token as string;
		expect(res.json!.expires_in).toBeGreaterThan(0);
		expect((await gw(ipList(token))).json!.ip_list).toEqual(expect.any(Array));
		await travel(7_201); // past WeChat's 7200 s: nobody's token any more
		const before = await sim.calls(app);
		// Failed when the isolate remembered the handed-out token beyond its expiry: forwarded with a new token.
		expectWeChatError(await gw(ipList(token)), 40001);
		expect(await sim.calls(app)).toEqual(before);
	});
	it("refuses a token handed out in its last seconds once it expires, though this isolate learnt it a moment ago", async () => {
		const app = next("stable");
		await refusedOnceExpired({
			tokenPath: `/cgi-bin/token?grant_type=client_credential&appid=${app.appid}&secret=${KEYS.all}`,
			fault: { appid: app.appid, endpoint: "stable_token" },
			forwarded: async () => (await sim.calls(app)).getcallbackip ?? 0,
		});
	});
	it("refuses a token from its /cgi-bin/gettoken (WeCom) once the token's own lifetime is over", async () => {
		const res = await gw(`/cgi-bin/gettoken?corpid=${WECOM_SINGLE_CORP}&corpsecret=${KEYS.all}`);
		const token = res.json!.access_token as string;
		expect(res.json!.errcode).toBe(0);
		expect((await gw(ipList(token))).json!.ip_list).toEqual(expect.any(Array));
		await travel(7_201); // past WeCom's 7200 s
		const before = await sim.wecomCalls(WECOM_SINGLE_CORP);
		// Failed when the isolate remembered the handed-out token beyond its expiry: forwarded with a new token.
		expectWeChatError(await gw(ipList(token)), 40001);
		expect(await sim.wecomCalls(WECOM_SINGLE_CORP)).toEqual(before);
	});
	it("refuses a WeCom token handed out in its last seconds once it expires, though this isolate learnt it a moment ago", async () => {
		await refusedOnceExpired({
			tokenPath: `/cgi-bin/gettoken?corpid=${WECOM_SINGLE_CORP}&corpsecret=${KEYS.all}`,
			fault: { appid: WECOM_SINGLE_CORP, endpoint: "wecom_gettoken" },
			forwarded: async () => (await sim.wecomCalls(WECOM_SINGLE_CORP)).wecom_getcallbackip ?? 0,
		});
	});
});
