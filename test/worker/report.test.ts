/**
 * A report is evidence, not proof (issue 7): any key that may read a token can report it, so a refresh
 * that revokes tokens first asks WeChat whether it really refuses the reported one. And what strangers
 * learn from a broken configuration or an appid outside their key's scope.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { loadConfig } from "../../src/config/config";
import { edgeKey } from "../../src/core/storage-keys";
import worker from "../../src/index";
import { parseCredential } from "../../src/wechat/client";
import { appsFor, KEYS } from "./fixtures";
import { deferred, getToken, interceptUpstream, invalidate, readInObject, sim } from "./helpers";
import { logLines } from "./setup";

const next = appsFor("report");

describe.each(["stable", "classic"] as const)("%s: reports of a token WeChat still accepts", (mode) => {
	it("cost no token call that revokes anything, answer the same token and name the key", async () => {
		const app = next(mode);
		const token = (await getToken(app)).body.access_token as string;
		const before = await sim.calls(app);
		for (let i = 0; i < 100; i++) {
			const res = await invalidate(app, token);
			expect(res.status).toBe(200);
			expect(res.body.access_token).toBe(token);
		}
		const after = await sim.calls(app);
		expect(after.token - before.token).toBe(0);
		expect(after.stable_token_force - before.stable_token_force).toBe(0);
		expect(await sim.check(token)).toBe(0);
		expect(logLines.some((line) => line.includes("invalidation_refuted") && line.includes('"key":"all-apps"'))).toBe(true);
	});

	it("a token WeChat refuses is still replaced", async () => {
		const app = next(mode);
		const token = (await getToken(app)).body.access_token as string;
		await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "errcode", errcode: 40001, times: 1 });
		const res = await invalidate(app, token);
		expect(res.status).toBe(200);
		expect(res.body.access_token).not.toBe(token);
		expect(await sim.check(res.body.access_token as string)).toBe(0);
	});
});

async function fetchWith(overrides: Record<string, string>, path: string, key: string | null): Promise<Response> {
	const ctx = createExecutionContext();
	const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
	const response = await worker.fetch(new Request(`https://broker.test${path}`, { headers }), { ...env, ...overrides }, ctx);
	await waitOnExecutionContext(ctx);
	return response;
}

describe("a broken configuration", () => {
	const broken = { WECHAT_APPS: JSON.stringify([{ appid: "wxbrokenconfig01", secret: "" }]) };

	it("tells an unauthenticated caller only that it is broken and where to look", async () => {
		const res = await fetchWith(broken, "/token?appid=wxbrokenconfig01", null);
		expect(res.status).toBe(500);
		const text = await res.text();
		expect(text).not.toMatch(/wxbrokenconfig01|WECHAT_APPS|secret/);
		expect(JSON.parse(text)).toMatchObject({ error: "config_error" });
		expect(JSON.parse(text).message).toMatch(/logs/);
		expect(logLines.some((line) => line.includes("config_invalid") && line.includes("WECHAT_APPS[0].secret"))).toBe(true);
	});

	it("tells an admin key what to fix", async () => {
		const res = await fetchWith(broken, "/status", KEYS.admin);
		expect(res.status).toBe(500);
		expect(((await res.json()) as { message: string }).message).toMatch(/WECHAT_APPS\[0\]\.secret/);
	});
});

describe("a key scoped to some apps", () => {
	it("gets the same 403 for an unknown appid as for an app outside its scope", async () => {
		const unknown = await fetchWith({}, "/token?appid=wxnosuchapp00001", KEYS.scoped);
		const outside = await fetchWith({}, `/token?appid=${next("stable").appid}`, KEYS.scoped);
		expect(unknown.status).toBe(403);
		expect(outside.status).toBe(403);
		const [a, b] = [(await unknown.json()) as { message: string }, (await outside.json()) as { message: string }];
		expect(a.message.replace("wxnosuchapp00001", "X")).toBe(b.message.replace(/wxreports\d\d/, "X"));
	});

	it("a \"*\" key still learns that an appid is unknown", async () => {
		const res = await fetchWith({}, "/token?appid=wxnosuchapp00001", KEYS.all);
		expect(res.status).toBe(404);
		await res.text();
	});
});

describe("configuration validation", () => {
	const base = { WECHAT_APPS: JSON.stringify([{ appid: "wxconfigtest0001", secret: "s", daily_quota: 1 }]), API_KEYS: JSON.stringify([{ name: "a", key: KEYS.all, apps: ["*"] }]) };

	it("refuses a quota guard that would refuse every forced refresh of an idle app", () => {
		expect(() => loadConfig({ ...base, WECHAT_APPS: JSON.stringify([{ appid: "wxconfigtest0001", secret: "s" }]), QUOTA_GUARD_SHARE: "0" })).toThrow(/QUOTA_GUARD_SHARE/);
		expect(() => loadConfig({ ...base, QUOTA_GUARD_SHARE: "0.5" })).toThrow(/wxconfigtest0001.*daily_quota/);
		expect(loadConfig({ ...base, QUOTA_GUARD_SHARE: "1" }).quotaGuardShare).toBe(1);
	});

	it("refuses plain http to WeChat except on loopback (the AppSecret would travel in clear)", () => {
		const ok = { ...base, QUOTA_GUARD_SHARE: "1" };
		expect(() => loadConfig({ ...ok, WECHAT_API_BASE: "http://relay.example.com" })).toThrow(/WECHAT_API_BASE.*https/);
		expect(loadConfig({ ...ok, WECHAT_API_BASE: "http://127.0.0.1:9860" }).apiBase).toBe("http://127.0.0.1:9860");
		expect(loadConfig({ ...ok, WECHAT_API_BASE: "http://localhost:9860" }).apiBase).toBe("http://localhost:9860");
		expect(loadConfig({ ...ok, WECHAT_API_BASE: "http://[::1]:9860" }).apiBase).toBe("http://[::1]:9860");
		expect(loadConfig({ ...ok, WECHAT_API_BASE: "https://relay.example.com/" }).apiBase).toBe("https://relay.example.com");
	});
});

describe("a ticket call WeChat answers with a refusal of its token", () => {
	it("stable: heals the token (a normal call finds the one rotated out of band) and asks for the ticket once more", async () => {
		const app = next("stable");
		const token = (await getToken(app)).body.access_token as string;
		await sim.rotate(app); // another server forced a new stable token: the broker's one is revoked
		expect(await sim.check(token)).toBe(40001);
		const before = await sim.calls(app);
		const ticket = await authority(env, app.appid).getCredential(app.appid, "jsapi");
		expect(ticket.ok).toBe(true);
		const healed = (await getToken(app)).body.access_token as string;
		expect(healed).not.toBe(token);
		expect(await sim.check(healed)).toBe(0);
		const after = await sim.calls(app);
		expect(after.stable_token - before.stable_token).toBe(1);
		expect(after.stable_token_force - before.stable_token_force).toBe(0);
		expect(logLines.some((line) => line.includes("ticket_token_refused") && line.includes(app.appid))).toBe(true);
	});
});

describe("errcodes per platform", () => {
	const refusal = { errcode: 40001, errmsg: "invalid credential" };

	it("WeChat's 40001 on a ticket call is a refused access_token (heal it and retry)", () => {
		const parsed = parseCredential(refusal, "ticket", "wechat", true);
		expect(parsed).toMatchObject({ ok: false, failure: { kind: "wechat", class: "retryable", errcode: 40001, tokenRefused: true } });
	});

	it("WeCom's 40001 is a bad secret, not a bad token: fatal, and no token is healed for it", () => {
		const parsed = parseCredential(refusal, "ticket", "wecom", true);
		expect(parsed).toMatchObject({ ok: false, failure: { kind: "wechat", class: "fatal", errcode: 40001 } });
		expect(parsed.ok === false && parsed.failure.tokenRefused).toBeFalsy();
		expect(parsed.ok === false && parsed.failure.message).toMatch(/WeCom errcode 40001: .*Secret/);
		const expired = parseCredential({ errcode: 42001, errmsg: "access_token expired" }, "ticket", "wecom", true);
		expect(expired).toMatchObject({ ok: false, failure: { errcode: 42001, tokenRefused: true } });
	});
});

describe("stable: a refusal WeChat itself answered to the broker (a ticket call's; attempt.ts)", () => {
	it("is not answered from a client's recent report that WeChat then accepted the token", async () => {
		const app = next("stable");
		const token = (await getToken(app)).body.access_token as string;
		expect((await invalidate(app, token)).body.access_token).toBe(token); // probed: accepted, remembered 60 s
		await sim.rotate(app); // another server forced a new token: WeChat now refuses `token`
		const healed = await authority(env, app.appid).invalidate(app.appid, token, "gateway", { confirmedByWeChat: true });
		expect(healed.ok && healed.record.value).not.toBe(token);
		expect(healed.ok && await sim.check(healed.record.value)).toBe(0);
	});

	it("holds readers until the replacement arrives instead of handing them the refused token", async () => {
		const app = next("stable");
		const token = (await getToken(app)).body.access_token as string;
		await sim.rotate(app);
		await env.TOKEN_CACHE.delete(edgeKey(app.appid)); // a location whose KV has no copy: the read reaches the object
		const sent = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) => url.pathname !== "/cgi-bin/stable_token" ? undefined : real(url, init).then(async (r) => {
			const text = await r.text();
			sent.resolve();
			await release.promise;
			return new Response(text, { headers: { "content-type": "application/json" } });
		}));
		const healing = authority(env, app.appid).invalidate(app.appid, token, "gateway", { confirmedByWeChat: true });
		await sent.promise; // the normal call that learns WeChat's live token is under way
		// The read reaches the object while the call is held, then the call is let go.
		const reading = await readInObject(app, release.resolve);
		const read = reading.ok ? reading.record.value : "";
		expect(read).not.toBe(token);
		expect(await sim.check(read)).toBe(0);
		expect((await healing).ok).toBe(true);
	});
});

describe("stable: a client looping on reports while the probe cannot judge them", () => {
	it("costs one normal call and one probe a minute, like any report that changed nothing", async () => {
		const app = next("stable");
		const token = (await getToken(app)).body.access_token as string;
		// getcallbackip's own daily quota is spent (45009): every probe is inconclusive.
		await sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "errcode", errcode: 45009, times: 100 });
		const before = await sim.calls(app);
		for (let i = 0; i < 10; i++) {
			const res = await invalidate(app, token);
			expect(res.status).toBe(503);
			expect(res.headers.get("retry-after")).toBe("60");
		}
		const after = await sim.calls(app);
		expect({ stable_token: after.stable_token - before.stable_token, getcallbackip: after.getcallbackip - before.getcallbackip })
			.toEqual({ stable_token: 1, getcallbackip: 1 });
		await sim.clearFaults();
		expect(await sim.check(token)).toBe(0); // kept: WeChat still accepts it
	});
});
