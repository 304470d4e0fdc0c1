/**
 * Configuration checks that an outside mutation pass (issue 20) could remove without any test noticing:
 * plain http:// only to a loopback host (the rule anchored at both ends), `admin` only as the JSON literal
 * true or false, and QUOTA_GUARD_SHARE at most 1. A broken configuration answers 500 on every route but
 * /healthz, with its fix-it message for admin keys. Each test fails when its check is removed
 * (scripts/mutations.mjs, "[guards-config]").
 *
 * The overrides change only the Worker's own bindings for one request (the Durable Objects keep theirs), so
 * a configuration the broker wrongly accepts shows as a served request instead of the 500. Where no app is
 * needed to tell the two apart, the request is GET /token without an appid: with a valid configuration it
 * is a 400 ("appid is required") that reaches no object.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { apiKeysJson, appsFor, KEYS } from "./fixtures";
import { gw } from "./gateway-helpers";
import { sim } from "./helpers";
import { logLines } from "./setup";

const next = appsFor("guards-config");

function as(key: string, path: string, overrides: Partial<typeof env>, method = "GET") {
	return gw(path, { method, headers: { authorization: `Bearer ${key}` } }, overrides);
}

it("refuses WECHAT_API_BASE over plain http:// to a host that only looks like loopback: the AppSecret would travel in clear", async () => {
	// Hosts that start like a loopback address, start with localhost, or end with it.
	for (const base of ["http://127.0.0.1.evil.example", "http://localhost.evil.example", "http://evil-localhost"]) {
		const res = await as(KEYS.admin, "/token", { WECHAT_API_BASE: base });
		// Failed with the loopback rule unanchored: 400, the configuration taken and only the appid missing.
		expect(res.status, base).toBe(500);
		expect(res.json!.message).toMatch(/WECHAT_API_BASE must use https:\/\/.*loopback/);
	}
	expect((await as(KEYS.admin, "/token", { WECHAT_API_BASE: "http://127.0.0.1:9" })).status).toBe(400); // loopback itself is fine
});

it("refuses an API_KEYS admin that is not the JSON literal true or false, and the key gets no admin route", async () => {
	const app = next("stable");
	const almost = "almost-admin-key-0123456789abcdef";
	for (const admin of ["true", "false", 1]) {
		const keys = JSON.stringify([...JSON.parse(await apiKeysJson()), { name: "almost-admin", key: almost, apps: ["*"], admin }]);
		const logged = logLines.length;
		const told = await as(KEYS.admin, `/token?appid=${app.appid}`, { API_KEYS: keys });
		expect(told.status, JSON.stringify(admin)).toBe(500);
		// API_KEYS itself is the broken part, so no key can be told more than where to look: the log line.
		expect(told.json!.message).toMatch(/configuration is invalid.*config_invalid/);
		expect(logLines.slice(logged).some((l) => l.includes("config_invalid") && /API_KEYS\[\d+\] \(\\?"almost-admin\\?"\)\.admin must be true or false/.test(l)), "config_invalid log line").toBe(true);
		// Failed with `admin` read as truthy: the key force-refreshed the app's token.
		const forced = await as(almost, `/token/refresh?appid=${app.appid}`, { API_KEYS: keys }, "POST");
		expect(forced.status, JSON.stringify(admin)).toBe(500);
	}
	expect(await sim.tokenCalls(app)).toBe(0);
});

it("refuses QUOTA_GUARD_SHARE above 1, where no share of the quota would be kept for scheduled refreshes", async () => {
	const refused = await as(KEYS.admin, "/token", { QUOTA_GUARD_SHARE: "1.5" });
	// Failed without the upper bound: 400, the guard set past the whole daily quota and only the appid missing.
	expect(refused.status).toBe(500);
	expect(refused.json!.message).toMatch(/QUOTA_GUARD_SHARE must be a share of the daily quota above 0 and at most 1/);
	// 1 itself is allowed: it turns the guard off.
	expect((await as(KEYS.admin, "/token", { QUOTA_GUARD_SHARE: "1" })).status).toBe(400);
});
