/**
 * The open platform's event URL (POST /open/{component_appid}/events) and the components behind it: pushes
 * the simulator encrypted and signed (sim/open-pushes.js, Node's crypto) delivered here as WeChat would,
 * the newest component_verify_ticket kept in the component's own object, and a table of forged, replayed
 * and malformed pushes that are each a 4xx and change nothing. Then PUT /admin/components.
 */
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { componentAuthority } from "../../src/authority/stub";
import { COMPONENT_TICKET_KEY } from "../../src/core/storage-keys";
import worker from "../../src/index";
import { allSecrets, KEYS, registryTestComponent, testComponent, type TestComponent } from "./fixtures";
import { call, simUrl, travel } from "./helpers";
import { findLeaks } from "./leaks";

interface Push { info_type: string; query: string; body: string; create_time: number }

const secrets = allSecrets();
/** WECHAT_COMPONENTS' components of this file; the first two share a message token and EncodingAESKey. */
const [A, B, C, D, E] = [0, 1, 2, 3, 4].map((n) => testComponent("openev", n)) as [TestComponent, TestComponent, TestComponent, TestComponent, TestComponent];

async function simControl(path: string, body?: unknown): Promise<any> {
	const res = await fetch(`${simUrl}/__sim/open/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) });
	const parsed = await res.json();
	if (res.status !== 200) throw new Error(JSON.stringify(parsed));
	return parsed;
}

/** A fresh ticket push for `component`, as WeChat makes it (any CreateTime), taken from the simulator. */
async function pushFor(component: TestComponent, createTimeS?: number): Promise<Push> {
	await simControl(`components/${component.component_appid}/take`);
	await simControl(`components/${component.component_appid}/push`, createTimeS === undefined ? {} : { create_time_s: createTimeS });
	const { pushes } = await simControl(`components/${component.component_appid}/take`) as { pushes: Push[] };
	return pushes.at(-1)!;
}

/** Delivers a push the way WeChat does: no key, XML body, the signature in the query. */
async function deliver(path: string, query: string, body: string | Uint8Array, init: { method?: string; envOverride?: Record<string, string>; headers?: Record<string, string> } = {}) {
	const request = new Request(`https://broker.test${path}?${query}`, {
		method: init.method ?? "POST", headers: { "content-type": "text/xml", ...init.headers }, ...(init.method === "GET" ? {} : { body }),
	});
	let response: Response;
	if (init.envOverride) {
		const ctx = createExecutionContext();
		response = await worker.fetch(request, { ...env, ...init.envOverride }, ctx);
		await waitOnExecutionContext(ctx);
	} else {
		response = await exports.default.fetch(request);
	}
	const text = await response.text();
	expect(response.headers.get("cache-control")).toBe("no-store");
	expect(findLeaks(text, secrets), "an event answer leaks").toEqual([]);
	expect(response.status, text).not.toBe(500);
	return { status: response.status, text, contentType: response.headers.get("content-type") ?? "" };
}

const eventsPath = (component: TestComponent) => `/open/${component.component_appid}/events`;

async function storedTicket(component: TestComponent): Promise<{ ticket: string; createTime: number } | undefined> {
	return runInDurableObject(componentAuthority(env, component.component_appid), (_instance, state) => state.storage.get(COMPONENT_TICKET_KEY));
}

/** The ticket inside a push, read as the component would: what api_component_token must accept. */
async function componentTokenWith(component: TestComponent, ticket: string): Promise<Record<string, unknown>> {
	const res = await fetch(`${simUrl}/cgi-bin/component/api_component_token`, {
		method: "POST", body: JSON.stringify({ component_appid: component.component_appid, component_appsecret: component.secret, component_verify_ticket: ticket }),
	});
	return res.json();
}

describe("component_verify_ticket", () => {
	it("answers the plain text `success` and keeps the ticket the push carried, one api_component_token accepts", async () => {
		const push = await pushFor(A);
		const answer = await deliver(eventsPath(A), push.query, push.body);
		expect(answer).toMatchObject({ status: 200, text: "success" });
		expect(answer.contentType).toMatch(/^text\/plain/);
		const stored = await storedTicket(A);
		expect(stored?.createTime).toBe(push.create_time);
		expect(await componentTokenWith(A, stored!.ticket)).toHaveProperty("component_access_token");
		const admin = await call(`/admin/components/${A.component_appid}`, { key: KEYS.admin });
		expect(admin.body.component).toMatchObject({ source: "secret", verify_ticket: { create_time: new Date(push.create_time * 1000).toISOString() } });
	});

	it("keeps the newest by CreateTime: an older push is refused (409), another ticket of the same second and a duplicate are `success` and change nothing", async () => {
		const now = Math.floor(Date.now() / 1000) + 10_000;
		const newest = await pushFor(E, now);
		expect((await deliver(eventsPath(E), newest.query, newest.body)).status).toBe(200);
		const kept = await storedTicket(E);
		const older = await pushFor(E, now - 600);
		expect((await deliver(eventsPath(E), older.query, older.body)).status).toBe(409);
		// Tickets stay valid 12 h each, and WeChat retries a push not answered `success`: a second ticket
		// pushed within the same CreateTime second is answered `success` and the first is kept.
		const sameSecond = await pushFor(E, now);
		expect(await deliver(eventsPath(E), sameSecond.query, sameSecond.body)).toMatchObject({ status: 200, text: "success" });
		expect(await storedTicket(E)).toEqual(kept);
		// WeChat sends some pushes twice: the same push again is `success`, and nothing moves.
		expect(await deliver(eventsPath(E), newest.query, newest.body)).toMatchObject({ status: 200, text: "success" });
		expect(await storedTicket(E)).toEqual(kept);
		const newer = await pushFor(E, now + 600);
		expect((await deliver(eventsPath(E), newer.query, newer.body)).status).toBe(200);
		expect((await storedTicket(E))?.createTime).toBe(now + 600);
	});

	it("never lets one component's push overwrite another's ticket, even with the same token and EncodingAESKey", async () => {
		await travel(1);
		const forA = await pushFor(A);
		const forB = await pushFor(B);
		expect((await deliver(eventsPath(A), forA.query, forA.body)).status).toBe(200);
		expect((await deliver(eventsPath(B), forB.query, forB.body)).status).toBe(200);
		const [ticketA, ticketB] = [await storedTicket(A), await storedTicket(B)];
		expect(ticketA!.ticket).not.toBe(ticketB!.ticket);
		await travel(1);
		const next = await pushFor(B);
		// Delivered to A's URL as it is: its envelope names B.
		expect((await deliver(eventsPath(A), next.query, next.body)).status).toBe(400);
		// With the unsigned envelope rewritten to name A: signed by the shared token, but encrypted for B.
		const renamed = next.body.replace(B.component_appid, A.component_appid);
		const refused = await deliver(eventsPath(A), next.query, renamed);
		expect(refused.status).toBe(403);
		expect(refused.text).toMatch(/encrypted for another component/);
		expect([await storedTicket(A), await storedTicket(B)]).toEqual([ticketA, ticketB]);
	});

	it("takes WeChat's pushes from any address: ALLOWED_IPS admits the broker's clients, not WeChat", async () => {
		await travel(1);
		const push = await pushFor(C);
		const answer = await deliver(eventsPath(C), push.query, push.body, { envOverride: { ALLOWED_IPS: "203.0.113.0/24" }, headers: { "cf-connecting-ip": "198.51.100.9" } });
		expect(answer).toMatchObject({ status: 200, text: "success" });
		// The broker's own routes still refuse that address.
		const ctx = createExecutionContext();
		const res = await worker.fetch(new Request("https://broker.test/token", { headers: { authorization: `Bearer ${KEYS.all}`, "cf-connecting-ip": "198.51.100.9" } }), { ...env, ALLOWED_IPS: "203.0.113.0/24" }, ctx);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(403);
		await res.text();
	});
});

describe("what the event URL refuses, changing nothing", () => {
	const swap = (query: string, name: string, value: string | null) => {
		const params = new URLSearchParams(query);
		if (value === null) params.delete(name);
		else params.set(name, value);
		return params.toString();
	};
	const flip = (hex: string) => hex.replace(/^./, (ch) => (ch === "0" ? "1" : "0"));

	it.each<[string, number, (p: Push) => { path?: string; query?: string; body?: string; method?: string }]>([
		["a msg_signature changed by one character", 403, (p) => ({ query: swap(p.query, "msg_signature", flip(new URLSearchParams(p.query).get("msg_signature")!)) })],
		["a timestamp other than the one signed", 403, (p) => ({ query: swap(p.query, "timestamp", "1700000001") })],
		["a nonce other than the one signed", 403, (p) => ({ query: swap(p.query, "nonce", "123") })],
		["an Encrypt with one character changed", 403, (p) => ({ body: p.body.replace(/<Encrypt><!\[CDATA\[(.)/, (_m, ch: string) => `<Encrypt><![CDATA[${ch === "A" ? "B" : "A"}`) })],
		["no msg_signature", 400, (p) => ({ query: swap(p.query, "msg_signature", null) })],
		["no timestamp", 400, (p) => ({ query: swap(p.query, "timestamp", null) })],
		["no nonce", 400, (p) => ({ query: swap(p.query, "nonce", null) })],
		["encrypt_type other than aes", 400, (p) => ({ query: swap(p.query, "encrypt_type", "raw") })],
		["a body that is not XML", 400, () => ({ body: "{\"Encrypt\": \"x\"}" })],
		["an envelope without Encrypt", 400, (p) => ({ body: p.body.replace(/<Encrypt>.*<\/Encrypt>/, "") })],
		["an envelope with two Encrypts", 400, (p) => ({ body: p.body.replace("</xml>", "<Encrypt><![CDATA[AAAA]]></Encrypt></xml>") })],
		["an empty body", 400, () => ({ body: "" })],
		["a body over 64 KiB", 413, (p) => ({ body: p.body.replace("</xml>", `<Pad><![CDATA[${"x".repeat(64 * 1024)}]]></Pad></xml>`) })],
		["an unknown component", 404, () => ({ path: "/open/wxnosuchcomponent/events" })],
		["a path that is no appid", 400, () => ({ path: "/open/wx%20bad/events" })],
		["GET instead of POST", 405, () => ({ method: "GET" })],
	])("refuses %s with %i", async (_what, status, change) => {
		const before = await storedTicket(D);
		await travel(1);
		const push = await pushFor(D);
		const decrypt = vi.spyOn(crypto.subtle, "decrypt");
		const { path = eventsPath(D), query = push.query, body = push.body, method } = change(push);
		const answer = await deliver(path, query, body, { method });
		expect(answer.status).toBe(status);
		if (answer.status !== 405) expect(JSON.parse(answer.text)).toMatchObject({ error: expect.any(String), message: expect.any(String) });
		// Nothing whose signature does not hold is ever decrypted.
		expect(decrypt).not.toHaveBeenCalled();
		expect(await storedTicket(D)).toEqual(before);
		// The genuine push still works afterwards: the refusal consumed nothing.
		decrypt.mockRestore();
		expect((await deliver(eventsPath(D), push.query, push.body)).status).toBe(200);
	});
});

describe("PUT /admin/components/{component_appid}", () => {
	const put = (component: TestComponent, key: string = KEYS.admin, extra: Record<string, unknown> = {}) =>
		call(`/admin/components/${component.component_appid}`, { method: "PUT", key, body: { secret: component.secret, token: component.token, encoding_aes_key: component.encoding_aes_key, ...extra } });

	it("registers a component whose secrets are sealed in its own object and never shown; its event URL works at once", async () => {
		const component = registryTestComponent(0);
		const created = await put(component, KEYS.admin, { daily_quota: 5_000 });
		expect(created.status).toBe(201);
		expect(created.body.component).toMatchObject({ component_appid: component.component_appid, source: "registry", daily_quota: 5_000, event_url_path: `/open/${component.component_appid}/events`, verify_ticket: null });
		const stored = await runInDurableObject(componentAuthority(env, component.component_appid), async (_i, state) => JSON.stringify([...(await state.storage.list()).entries()]));
		for (const secret of [component.secret, component.token, component.encoding_aes_key]) expect(stored).not.toContain(secret);
		const push = await pushFor(component);
		expect(await deliver(eventsPath(component), push.query, push.body)).toMatchObject({ status: 200, text: "success" });
		expect((await call(`/admin/components/${component.component_appid}`, { key: KEYS.admin })).body.component).toMatchObject({ verify_ticket: { create_time: expect.any(String) } });
		expect((await put(component)).status).toBe(200);
	});

	it("refuses a component of WECHAT_COMPONENTS (409), a bad body (400), and keys that may not manage it (403)", async () => {
		expect((await put(A)).status).toBe(409);
		const component = registryTestComponent(1);
		expect((await put(component, KEYS.admin, { encoding_aes_key: "too-short" })).status).toBe(400);
		expect((await put(component, KEYS.admin, { colour: "red" })).status).toBe(400);
		expect((await put(component, KEYS.all)).status).toBe(403);
		expect((await put(component, KEYS.scopedAdmin)).status).toBe(403);
		const scoped = await call("/admin/keys", { method: "POST", key: KEYS.admin, body: { name: "component-ops", apps: [`component:${component.component_appid}`], admin: true } });
		expect(scoped.status).toBe(201);
		const key = scoped.body.key as string;
		expect((await put(component, key)).status).toBe(201);
		expect((await put(registryTestComponent(2), key)).status).toBe(403);
		expect((await call(`/admin/components/${A.component_appid}`, { key })).status).toBe(403);
	});
});
