import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { logLines } from "./setup";
import { appsFor, KEYS } from "./fixtures";
import { call, sim } from "./helpers";

const next = appsFor("http");

it("answers /healthz without a key and without any I/O", async () => {
	const res = await call("/healthz", { key: null });
	expect(res.status).toBe(200);
	expect(res.body).toEqual({ ok: true });
});

it("answers GET /dashboard with where the page is when the Worker runs without its static files", async () => {
	// Deployed, Cloudflare serves public/dashboard.html before the Worker runs (test/e2e/dashboard.test.ts).
	const res = await call("/dashboard", { key: null });
	expect(res.status).toBe(404);
	expect(res.body.message).toContain("public/dashboard.html");
	expect(res.headers.get("x-content-type-options")).toBe("nosniff");
});

it("answers GET /openapi.json without a key with where the document is when the Worker runs without its static files", async () => {
	// Deployed, Cloudflare serves public/openapi.json before the Worker runs (test/e2e/openapi.test.ts).
	const res = await call("/openapi.json", { key: null });
	expect(res.status).toBe(404);
	expect(res.body.error).toBe("not_found");
	expect(res.body.message).toContain("public/openapi.json");
	expect(res.headers.get("content-type")).toMatch(/^application\/json/);
});

describe("bad input gets a clear 4xx, never a 500, and costs nothing upstream", () => {
	it("404 for an app that is not configured", async () => {
		const res = await call("/token?appid=wxnotconfigured0001");
		expect(res.status).toBe(404);
		expect(res.body.message).toMatch(/WECHAT_APPS/);
	});

	it("400 for an appid that cannot be one", async () => {
		const res = await call(`/token?appid=${encodeURIComponent("../../etc/passwd")}`);
		expect(res.status).toBe(400);
		expect(res.body.error).toBe("bad_request");
	});

	it("400 when the appid is left out although several apps are configured", async () => {
		const res = await call("/token");
		expect(res.status).toBe(400);
		expect(res.body.message).toMatch(/appid is required/);
	});

	it("400 for a body that is not JSON, not an object, or lacks the token", async () => {
		const app = next("classic");
		for (const rawBody of ["{not json", "[1,2]", "\"text\"", JSON.stringify({ appid: app.appid }), JSON.stringify({ appid: app.appid, access_token: 7 }), JSON.stringify({ appid: 7, access_token: "x" })]) {
			const res = await call("/token/invalidate", { method: "POST", rawBody });
			expect(res.status, rawBody).toBe(400);
			expect(res.body.message, rawBody).toMatch(/appid|access_token|JSON/);
		}
		expect(await sim.tokenCalls(app)).toBe(0);
	});

	it("413 for a body over 4 KiB", async () => {
		const app = next("classic");
		const res = await call("/token/invalidate", { method: "POST", body: { appid: app.appid, access_token: "x".repeat(5000) } });
		expect(res.status).toBe(413);
		expect(res.body.error).toBe("payload_too_large");
	});

	it("405 with Allow for a wrong method on a known route", async () => {
		for (const [method, path, allow] of [["POST", "/token", "GET"], ["GET", "/token/invalidate", "POST"], ["DELETE", "/status", "GET"], ["PUT", "/token/refresh", "POST"]] as const) {
			const res = await call(path, { method, key: KEYS.admin });
			expect(res.status, `${method} ${path}`).toBe(405);
			expect(res.headers.get("allow")).toBe(allow);
		}
	});

	it("404 for an unknown route, listing the routes", async () => {
		const res = await call("/tokens");
		expect(res.status).toBe(404);
		expect(res.body.message).toMatch(/GET \/token/);
	});

	it("sends no CORS headers: tokens are not for browsers", async () => {
		const app = next("stable");
		const res = await call(`/token?appid=${app.appid}`, { headers: { origin: "https://evil.example" } });
		expect(res.status).toBe(200);
		expect(res.headers.get("access-control-allow-origin")).toBeNull();
	});
});

describe("a broken configuration", () => {
	async function withEnv(overrides: Record<string, string>, path: string, key: string = KEYS.admin): Promise<{ status: number; text: string }> {
		const ctx = createExecutionContext();
		const response = await worker.fetch(new Request(`https://broker.test${path}`, { headers: { authorization: `Bearer ${key}` } }), { ...env, ...overrides }, ctx);
		await waitOnExecutionContext(ctx);
		return { status: response.status, text: await response.text() };
	}

	it("answers 500 on every route but /healthz, with the fix-it message for admin keys and in the logs, never the secret", async () => {
		const secret = "leaky-secret-value-123";
		const cases: Array<[Record<string, string>, RegExp]> = [
			[{ WECHAT_APPS: `[{"appid":"wx1","secret":"${secret}"` }, /WECHAT_APPS is not valid JSON/],
			[{ WECHAT_APPS: `[{"appid":"wx1","secret":"${secret}","mode":"fast"}]` }, /mode .* must be "stable"/],
			// Without a registry, WECHAT_APPS is the only source of apps (with REGISTRY_KEY it may be left out: registry.test.ts).
			[{ WECHAT_APPS: "", REGISTRY_KEY: "" }, /WECHAT_APPS is not set/],
			[{ API_KEYS: `[{"name":"a","key":"short","apps":["*"]}]` }, /shorter than 16/],
			[{ API_KEYS: `[{"name":"a","key":"billing!key:2026-0123456789","apps":["*"]}]` }, /characters a bearer token cannot carry/],
			[{ WECHAT_API_BASE: "ftp://relay" }, /http\(s\) URL/],
		];
		for (const [overrides, message] of cases) {
			const res = await withEnv(overrides, "/token");
			expect(res.status).toBe(500);
			// A broken API_KEYS cannot tell an admin key: then only the logs say what to fix.
			if (!("API_KEYS" in overrides)) expect(JSON.parse(res.text).message).toMatch(message);
			expect(logLines.some((line) => line.includes("config_invalid") && message.test(JSON.parse(line).message))).toBe(true);
			expect(res.text).not.toContain(secret);
			const stranger = await withEnv(overrides, "/token", KEYS.all);
			expect(JSON.parse(stranger.text)).toEqual({ error: "config_error", message: expect.stringMatching(/logs/) });
			expect((await withEnv(overrides, "/healthz")).status).toBe(200);
		}
	});
});
