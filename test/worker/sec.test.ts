/** The IP allowlist, and properties over arbitrary input: never a 500, never a secret or stray token. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { allSecrets, appsFor, KEYS } from "./fixtures";
import { call } from "./helpers";
import { findLeaks } from "./leaks";

const next = appsFor("sec");
const secrets = allSecrets();

describe("ALLOWED_IPS", () => {
	const app = next("stable");
	const ALLOWED = "203.0.113.0/24, 2001:db8::/32";

	async function from(headers: Record<string, string>, path = `/token?appid=${app.appid}`, allowed = ALLOWED) {
		const ctx = createExecutionContext();
		const res = await worker.fetch(new Request(`https://broker.test${path}`, {
			headers: { authorization: `Bearer ${KEYS.all}`, ...headers },
		}), { ...env, ALLOWED_IPS: allowed }, ctx);
		await waitOnExecutionContext(ctx);
		return { status: res.status, body: (await res.json()) as Record<string, unknown> };
	}

	it("lets in the listed IPv4 and IPv6 ranges, by CF-Connecting-IP", async () => {
		expect((await from({ "cf-connecting-ip": "203.0.113.7" })).status).toBe(200);
		expect((await from({ "cf-connecting-ip": "2001:db8::1" })).status).toBe(200);
	});

	it("refuses other addresses with a JSON 403, and a forged X-Forwarded-For never helps", async () => {
		const cases: Record<string, string>[] = [
			{ "cf-connecting-ip": "198.51.100.1" },
			{ "cf-connecting-ip": "198.51.100.1", "x-forwarded-for": "203.0.113.7" },
			{ "x-forwarded-for": "203.0.113.7" },
			{ "cf-connecting-ip": "2001:db9::1" },
			{ "cf-connecting-ip": "not-an-ip" },
		];
		for (const headers of cases) {
			const res = await from(headers);
			expect(res.status, JSON.stringify(headers)).toBe(403);
			expect(res.body.message).toMatch(/ALLOWED_IPS/);
		}
	});

	it("leaves /healthz open, and reports an unparsable rule as a configuration error", async () => {
		expect((await from({}, "/healthz")).status).toBe(200);
		const res = await from({ "cf-connecting-ip": "203.0.113.7", authorization: `Bearer ${KEYS.admin}` }, `/token?appid=${app.appid}`, "203.0.113.0/33");
		expect(res.status).toBe(500);
		expect(res.body.message).toMatch(/ALLOWED_IPS/);
	});
});

describe("arbitrary input", () => {
	const known = next("classic");
	const printable = fc.string({ unit: fc.constantFrom(..."abcXYZ019_-./:%?&=#~ \"'{}[]<>\\") });
	const NEVER = (status: number) => status < 500 || status === 502 || status === 503;

	it("appids and query strings never yield a 500", async () => {
		await fc.assert(fc.asyncProperty(fc.oneof(fc.constant(known.appid), printable, fc.string()), printable, async (appid, extra) => {
			const res = await call(`/token?appid=${encodeURIComponent(appid)}&${encodeURIComponent(extra)}=${encodeURIComponent(extra)}`);
			expect(NEVER(res.status)).toBe(true);
			expect(res.status === 200 || typeof res.body.message === "string").toBe(true);
		}), { numRuns: 150 });
	});

	it("invalidation bodies never yield a 500", async () => {
		const body = fc.oneof(
			fc.jsonValue().map((v) => JSON.stringify(v)),
			fc.record({ appid: fc.oneof(fc.constant(known.appid), fc.jsonValue()), access_token: fc.jsonValue() }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
			fc.string(),
		);
		await fc.assert(fc.asyncProperty(body, async (rawBody) => {
			const res = await call("/token/invalidate", { method: "POST", rawBody });
			expect(NEVER(res.status), rawBody).toBe(true);
		}), { numRuns: 150 });
	});

	it("headers never yield a 500 or echo a secret", async () => {
		const headerValue = fc.string({ unit: fc.constantFrom(..."abcXYZ019_-.:/= ;,\"'"), maxLength: 80 });
		await fc.assert(fc.asyncProperty(headerValue, headerValue, fc.constantFrom(...secrets.slice(0, 5)), async (auth, forwarded, secret) => {
			const ctx = createExecutionContext();
			const res = await worker.fetch(new Request(`https://broker.test/token?appid=${known.appid}`, {
				headers: { authorization: auth, "x-forwarded-for": forwarded, "x-secret-probe": secret, "cf-connecting-ip": forwarded },
			}), env, ctx);
			await waitOnExecutionContext(ctx);
			const text = await res.text();
			expect(NEVER(res.status)).toBe(true);
			expect(res.status).not.toBe(200); // no valid key in an arbitrary header
			expect(findLeaks(text + [...res.headers].join("\n"), secrets)).toEqual([]);
		}), { numRuns: 150 });
	});

	it("a key sent as the secret itself, or in the body, is never echoed back", async () => {
		for (const secret of secrets.slice(0, 3)) {
			const res = await call("/token/invalidate", { method: "POST", key: secret, body: { appid: known.appid, access_token: secret } });
			expect(res.status).toBe(401);
		}
	});
});
