/**
 * The registry (issue 16): apps and keys added, changed and removed at runtime through the admin API,
 * secrets sealed at rest, the hot path served from KV and isolate memory.
 */
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { CREDENTIAL_TYPES } from "../../src/core/credentials";
import { apiKeyKey, appProfileKey, edgeKey, issuedKey } from "../../src/core/storage-keys";
import { tokenDigest } from "../../src/edge/issued-index";
import worker from "../../src/index";
import { REGISTRY_MEMORY_TTL_MS } from "../../src/registry/lookup";
import { encodeCursor } from "../../src/routes/admin-input";
import { registry } from "../../src/registry/registry";
import { open, sealingKeys, type Sealed } from "../../src/registry/seal";
import { KEYS, REGISTRY_TEST_KEY, REGISTRY_TEST_KEY_B, registryTestApp, SCOPED_APPS, WECOM_OTHER_CORP, type TestApp } from "./fixtures";
import { gw } from "./gateway-helpers";
import { call, sim, travel } from "./helpers";

let used = 0;
/** A registry app of this file's own, known to the simulator with its secret. */
async function nextApp(mode: TestApp["mode"] = "stable"): Promise<TestApp> {
	const app = registryTestApp(used++, mode);
	await sim.configure(app, {});
	return app;
}

/** The admin API, with the admin key unless told otherwise. */
function adminCall(path: string, options: Parameters<typeof call>[1] = {}) {
	return call(path, { key: KEYS.admin, ...options });
}

function putApp(app: TestApp, body: Record<string, unknown> = { secret: app.secret, mode: app.mode }, key: string = KEYS.admin) {
	return adminCall(`/admin/apps/${app.appid}`, { method: "PUT", key, body });
}

/** A request with some of the Worker's bindings replaced (the object keeps its own, see withObjectEnv). */
async function withEnv(overrides: Partial<typeof env>, path: string, init: RequestInit & { key?: string } = {}): Promise<{ status: number; body: Record<string, any> }> {
	const ctx = createExecutionContext();
	const headers = { authorization: `Bearer ${init.key ?? KEYS.admin}`, "content-type": "application/json", ...(init.headers as Record<string, string>) };
	const response = await worker.fetch(new Request(`https://broker.test${path}`, { ...init, headers }), { ...env, ...overrides }, ctx);
	await waitOnExecutionContext(ctx);
	return { status: response.status, body: await response.json() };
}

async function withObjectEnv(appid: string, overrides: Partial<typeof env>): Promise<void> {
	await runInDurableObject(authority(env, appid), (instance) => {
		(instance as unknown as { env: typeof env }).env = { ...env, ...overrides };
	});
}

async function storedSealed(appid: string): Promise<Sealed> {
	return runInDurableObject(authority(env, appid), async (_instance, state) => {
		const stored = await state.storage.get<{ sealed: Sealed }>("registered");
		return stored!.sealed;
	});
}

describe("adding an app", () => {
	it("stores it, fetches its first token at once and serves it on /token", async () => {
		const app = await nextApp();
		const put = await putApp(app);
		expect(put.status).toBe(201);
		expect(put.body.app).toMatchObject({ appid: app.appid, source: "registry", kind: "wechat", mode: "stable" });
		expect(put.body.token).toEqual({ ok: true, expires_in: expect.any(Number) });
		expect(await sim.tokenCalls(app)).toBe(1);
		const read = await call(`/token?appid=${app.appid}`, { key: KEYS.all });
		expect(read.status).toBe(200);
		expect(await sim.check(read.body.access_token as string)).toBe(0);
		// The first fetch was the only one.
		expect(await sim.tokenCalls(app)).toBe(1);
		expect((await adminCall(`/admin/apps/${app.appid}`)).body.app).toMatchObject({ appid: app.appid, source: "registry", created_at: expect.any(String) });
	});

	it("seals the secret at rest: the stored value is not the secret and opens only with REGISTRY_KEY and the appid", async () => {
		const app = await nextApp();
		await putApp(app);
		const sealed = await storedSealed(app.appid);
		expect(JSON.stringify(sealed)).not.toContain(app.secret);
		expect(await open(await sealingKeys({ REGISTRY_KEY: REGISTRY_TEST_KEY }), app.appid, sealed)).toBe(app.secret);
		await expect(open(await sealingKeys({ REGISTRY_KEY: REGISTRY_TEST_KEY }), "wxanotherapp", sealed)).rejects.toThrow(/does not open/);
		await expect(open(await sealingKeys({ REGISTRY_KEY: REGISTRY_TEST_KEY_B }), app.appid, sealed)).rejects.toThrow(/neither REGISTRY_KEY nor REGISTRY_KEY_PREVIOUS/);
		// Two seals of one secret differ: a fresh IV each time.
		await putApp(app);
		const again = await storedSealed(app.appid);
		expect(again.iv).not.toBe(sealed.iv);
		expect(again.ct).not.toBe(sealed.ct);
		// Neither KV nor the catalog holds it.
		expect(await env.TOKEN_CACHE.get(appProfileKey(app.appid))).not.toContain(app.secret);
		const rows = await runInDurableObject(registry(env), (_instance, state) => state.storage.sql.exec("SELECT * FROM apps").toArray());
		expect(JSON.stringify(rows)).not.toContain(app.secret);
	});

	it("reports a wrong secret in the answer that set it, stores the app anyway, and recovers when it is replaced", async () => {
		const app = await nextApp("classic");
		const wrong = await putApp(app, { secret: "typed-wrong-by-the-operator", mode: "classic" });
		expect(wrong.status).toBe(201);
		expect(wrong.body.token).toMatchObject({ ok: false, error: "wechat_error", wechat_errcode: 40125, message: expect.stringMatching(/AppSecret/) });
		expect((await adminCall(`/admin/apps/${app.appid}`)).status).toBe(200);
		const fixed = await putApp(app);
		expect(fixed.status).toBe(200);
		expect(fixed.body.token).toEqual({ ok: true, expires_in: expect.any(Number) });
		expect((await call(`/token?appid=${app.appid}`)).status).toBe(200);
	});

	it("refuses an app or key that lives in a secret with 409 naming the secret", async () => {
		const fromSecret = { appid: SCOPED_APPS[0]!, secret: "x".repeat(20), mode: "stable" as const };
		const put = await putApp(fromSecret);
		expect(put.status).toBe(409);
		expect(put.body.message).toMatch(/WECHAT_APPS/);
		expect((await adminCall(`/admin/apps/${fromSecret.appid}`, { method: "DELETE" })).status).toBe(409);
		const key = await adminCall("/admin/keys", { method: "POST", body: { name: "ops", apps: ["*"] } });
		expect(key.status).toBe(409);
		expect(key.body.message).toMatch(/API_KEYS/);
	});

	it("answers bad input with the contract's errors, never a 500", async () => {
		const app = await nextApp();
		const cases: [string, RequestInit & { key?: string }, number, RegExp][] = [
			[`/admin/apps/${app.appid}`, { method: "PUT", body: JSON.stringify({ secret: app.secret, colour: "blue" }) }, 400, /Unknown field "colour"/],
			[`/admin/apps/${app.appid}`, { method: "PUT", body: JSON.stringify({ secret: 12345 }) }, 400, /secret .* must be the AppSecret/],
			[`/admin/apps/${app.appid}`, { method: "PUT", body: JSON.stringify({ secret: app.secret, mode: "fast" }) }, 400, /mode .* must be "stable"/],
			[`/admin/apps/${app.appid}`, { method: "PUT", body: JSON.stringify({ secret: app.secret, corpid: "ww1" }) }, 400, /corpid is a field of WeCom entries/],
			[`/admin/apps/${app.appid}`, { method: "PUT", body: "{not json" }, 400, /not valid JSON/],
			[`/admin/apps/${app.appid}`, { method: "PUT", body: JSON.stringify([app.secret]) }, 400, /JSON object/],
			["/admin/apps/wx!bad", { method: "PUT", body: JSON.stringify({ secret: app.secret }) }, 400, /appid in the path/],
			[`/admin/apps/${app.appid}`, { method: "PUT", body: JSON.stringify({ secret: "x".repeat(17 * 1024) }) }, 413, /larger than 16384 bytes/],
			[`/admin/apps/${app.appid}`, { method: "POST", body: "{}" }, 405, /accepts GET, PUT, DELETE/],
			["/admin/apps?limit=501", {}, 400, /limit must be a whole number from 1 to 500/],
			["/admin/apps?cursor=%%%", {}, 400, /cursor is not one this broker gave out/],
			["/admin/keys", { method: "POST", body: JSON.stringify({ name: "has space", apps: ["*"] }) }, 400, /name must be 1–64/],
			["/admin/keys", { method: "POST", body: JSON.stringify({ name: "svc", apps: "wx1" }) }, 400, /apps must be a non-empty array/],
			["/admin/keys", { method: "POST", body: JSON.stringify({ name: "svc", apps: ["wx1"], admin: "true" }) }, 400, /admin must be true or false/],
			["/admin/keys", { method: "POST", body: JSON.stringify({ name: "svc", apps: ["wx1"], key: "sha256:abc" }) }, 400, /64 lower-case hex/],
			["/admin/keys/nobody", { method: "PUT", body: JSON.stringify({}) }, 400, /Send apps, admin or both/],
			["/admin/keys/nobody", { method: "DELETE" }, 404, /no registry key named "nobody"/],
			[`/admin/apps/${app.appid}`, { method: "PUT", body: JSON.stringify({ secret: app.secret }), key: KEYS.all }, 403, /not an admin key/],
			["/admin/keys", { key: KEYS.scopedAdmin }, 403, /apps are \["\*"\]/],
			[`/admin/apps/${app.appid}`, { method: "PUT", body: JSON.stringify({ secret: app.secret }), key: KEYS.scopedAdmin }, 403, /not allowed to use app/],
		];
		for (const [path, init, status, message] of cases) {
			const res = await withEnv({}, path, init);
			expect(res.status, `${init.method ?? "GET"} ${path}`).toBe(status);
			expect(res.body.message, `${init.method ?? "GET"} ${path}`).toMatch(message);
		}
		// Nothing was stored by any of them.
		expect((await adminCall(`/admin/apps/${app.appid}`)).status).toBe(404);
	});

	it("refuses to store a secret without a usable REGISTRY_KEY, saying what to set, while WECHAT_APPS apps keep serving", async () => {
		for (const [key, message] of [[undefined, /REGISTRY_KEY is not set.*openssl rand -base64 32/], ["bm90LTMyLWJ5dGVz", /REGISTRY_KEY must be base64 of 32 random bytes/]] as const) {
			const app = await nextApp();
			await withObjectEnv(app.appid, { REGISTRY_KEY: key });
			const put = await putApp(app);
			expect(put.status).toBe(500);
			expect(put.body).toEqual({ error: "config_error", message: expect.stringMatching(message) });
			expect((await adminCall(`/admin/apps/${app.appid}`)).status).toBe(404);
			expect(await sim.tokenCalls(app)).toBe(0);
			const fromSecret = await withEnv({ REGISTRY_KEY: key }, `/token?appid=${SCOPED_APPS[0]}`);
			expect(fromSecret.status).toBe(200);
		}
	});
});

describe("keys", () => {
	it("generates a key, shows it once, honours it at once within its scope, and never lists it", async () => {
		const app = await nextApp();
		const other = await nextApp();
		await putApp(app);
		await putApp(other);
		const created = await adminCall("/admin/keys", { method: "POST", body: { name: "billing-svc", apps: [app.appid] } });
		expect(created.status).toBe(201);
		const key = created.body.key as string;
		expect(key).toMatch(/^wxb_[0-9a-f]{48}$/);
		expect(created.body).toMatchObject({ name: "billing-svc", apps: [app.appid], admin: false, source: "registry" });
		expect((await call(`/token?appid=${app.appid}`, { key })).status).toBe(200);
		expect((await call(`/token?appid=${other.appid}`, { key })).status).toBe(403);
		const listed = await adminCall("/admin/keys");
		const text = JSON.stringify(listed.body);
		expect(text).toContain("billing-svc");
		expect(text).not.toContain(key);
		expect(text).not.toContain(await tokenDigest(key));
		// Neither does KV: only its digest names the entry.
		expect(await env.TOKEN_CACHE.get(apiKeyKey(await tokenDigest(key)))).not.toContain(key);
	});

	it("takes a key registered by its digest, and refuses the same key twice", async () => {
		const app = await nextApp();
		await putApp(app);
		const plain = "my-own-key-0123456789abcdef-registered";
		const digest = `sha256:${await tokenDigest(plain)}`;
		const created = await adminCall("/admin/keys", { method: "POST", body: { name: "byo", apps: [app.appid], key: digest } });
		expect(created.status).toBe(201);
		expect(created.body.key).toBeUndefined();
		expect((await call(`/token?appid=${app.appid}`, { key: plain })).status).toBe(200);
		expect((await adminCall("/admin/keys", { method: "POST", body: { name: "byo-again", apps: ["*"], key: digest } })).status).toBe(409);
		expect((await adminCall("/admin/keys", { method: "POST", body: { name: "byo", apps: ["*"] } })).status).toBe(409);
		const adminDigest = `sha256:${await tokenDigest(KEYS.admin)}`;
		const clash = await adminCall("/admin/keys", { method: "POST", body: { name: "copy-of-ops", apps: ["*"], key: adminDigest } });
		expect(clash.status).toBe(409);
		expect(clash.body.message).toMatch(/API_KEYS/);
	});

	it("stops honouring a revoked key, or a narrowed scope, at once in the isolate that changed it", async () => {
		const app = await nextApp();
		await putApp(app);
		const { body } = await adminCall("/admin/keys", { method: "POST", body: { name: "soon-gone", apps: ["*"] } });
		const key = body.key as string;
		expect((await call(`/token?appid=${app.appid}`, { key })).status).toBe(200);
		expect((await adminCall("/admin/keys/soon-gone", { method: "PUT", body: { apps: ["wxsomethingelse"] } })).status).toBe(200);
		expect((await call(`/token?appid=${app.appid}`, { key })).status).toBe(403);
		const kvKey = apiKeyKey(await tokenDigest(key));
		const stale = await env.TOKEN_CACHE.get(kvKey);
		expect((await adminCall("/admin/keys/soon-gone", { method: "DELETE" })).status).toBe(200);
		// KV may show the key a while longer here (its delete retried, or not yet visible at this location):
		// the isolate that revoked it refuses it all the same.
		await env.TOKEN_CACHE.put(kvKey, stale!);
		const refused = await call(`/token?appid=${app.appid}`, { key });
		expect(refused.status).toBe(401);
		// The gateway too: the key is an SDK's "secret" there.
		const gateway = await gw(`/cgi-bin/token?grant_type=client_credential&appid=${app.appid}&secret=${key}`);
		expect(gateway.json).toMatchObject({ errcode: 40125 });
	});

	it("stops honouring a key revoked elsewhere within REGISTRY_MEMORY_TTL_MS of KV showing it", async () => {
		const app = await nextApp();
		await putApp(app);
		const { body } = await adminCall("/admin/keys", { method: "POST", body: { name: "revoked-elsewhere", apps: ["*"] } });
		const key = body.key as string;
		expect((await call(`/token?appid=${app.appid}`, { key })).status).toBe(200);
		// Another location revoked it: KV no longer has it, but this isolate read it a moment ago.
		await env.TOKEN_CACHE.delete(apiKeyKey(await tokenDigest(key)));
		await travel(REGISTRY_MEMORY_TTL_MS / 1_000 - 1);
		expect((await call(`/token?appid=${app.appid}`, { key })).status).toBe(200);
		await travel(2);
		expect((await call(`/token?appid=${app.appid}`, { key })).status).toBe(401);
	});

	it("a key scoped to corp:<corpid> reads every WeCom entry of that corp and nothing else", async () => {
		const corpid = "wwregcorp000001";
		const entries = ["1000001", "1000002"].map((agentid) => ({ id: `${corpid}-${agentid}`, agentid, secret: `sec-${corpid}-${agentid}-do-not-leak` }));
		for (const entry of entries) {
			await sim.wecomApp({ corpid, agentid: entry.agentid, secret: entry.secret });
			const put = await adminCall(`/admin/apps/${entry.id}`, { method: "PUT", body: { kind: "wecom", corpid, agentid: entry.agentid, secret: entry.secret } });
			expect(put.status).toBe(201);
			expect(put.body.app).toMatchObject({ kind: "wecom", corpid, agentid: entry.agentid });
		}
		const outside = await nextApp();
		await putApp(outside);
		const { body } = await adminCall("/admin/keys", { method: "POST", body: { name: "corp-svc", apps: [`corp:${corpid}`] } });
		const key = body.key as string;
		for (const entry of entries) expect((await call(`/token?appid=${entry.id}`, { key })).status).toBe(200);
		expect((await call(`/token?appid=${outside.appid}`, { key })).status).toBe(403);
		// The gateway's gettoken finds the corp's registry entries; this key may use both, so it must say which.
		const ambiguous = await gw(`/cgi-bin/gettoken?corpid=${corpid}&corpsecret=${key}`);
		expect(ambiguous.json).toMatchObject({ errcode: 40001, errmsg: expect.stringMatching(/2 entries of corp/) });
		const single = await adminCall("/admin/keys", { method: "POST", body: { name: "agent-svc", apps: [entries[0]!.id] } });
		const token = await gw(`/cgi-bin/gettoken?corpid=${corpid}&corpsecret=${single.body.key as string}`);
		expect(token.json).toMatchObject({ errcode: 0, access_token: expect.any(String) });
		expect(await sim.checkWeCom(token.json!.access_token as string)).toBe(0);
	});
});

it("a corp:<corpid> scope in API_KEYS admits that corp's WECHAT_APPS entries, with or without a registry", async () => {
	const key = "corp-scope-key-0123456789abcdef";
	const keys = JSON.stringify([{ name: "corp-secret-key", key, apps: [`corp:${WECOM_OTHER_CORP}`] }]);
	for (const registryKey of ["", REGISTRY_TEST_KEY]) {
		const overrides = { API_KEYS: keys, REGISTRY_KEY: registryKey };
		expect((await withEnv(overrides, `/token?appid=${WECOM_OTHER_CORP}-1000001`, { key })).status).toBe(200);
		expect((await withEnv(overrides, `/token?appid=${SCOPED_APPS[0]}`, { key })).status).toBe(403);
	}
});

it("pages the registry by keyset, however few apps follow the cursor", async () => {
	// Appids after every appid of WECHAT_APPS: each page holds registry apps only.
	const tail = ["wxzzpage000001", "wxzzpage000002", "wxzzpage000003"].map((appid) => ({ appid, secret: `sec-${appid}-do-not-leak`, mode: "stable" as const }));
	for (const app of tail) {
		await sim.configure(app, {});
		await putApp(app);
	}
	const seen: string[] = [];
	let cursor: string | null = encodeCursor("wxzz");
	while (cursor) {
		const page: Awaited<ReturnType<typeof call>> = await adminCall(`/admin/apps?limit=1&cursor=${cursor}`);
		seen.push(...(page.body.apps as { appid: string }[]).map((a) => a.appid));
		cursor = page.body.next_cursor as string | null;
	}
	expect(seen).toEqual(tail.map((a) => a.appid));
});

describe("changes", () => {
	it("a deleted app is wiped: secret, credentials, counters, edge copies; /token 404s and the gateway refuses its token", async () => {
		const app = await nextApp();
		await putApp(app);
		const token = (await call(`/token?appid=${app.appid}`)).body.access_token as string;
		expect((await call(`/ticket?appid=${app.appid}&type=jsapi`)).status).toBe(200);
		expect((await gw(`/cgi-bin/getcallbackip?access_token=${token}`)).json).toMatchObject({ ip_list: expect.any(Array) });
		const deleted = await adminCall(`/admin/apps/${app.appid}`, { method: "DELETE" });
		expect(deleted).toMatchObject({ status: 200, body: { deleted: app.appid } });
		const left = await runInDurableObject(authority(env, app.appid), async (_instance, state) => ({
			keys: [...(await state.storage.list()).keys()], alarm: await state.storage.getAlarm(),
		}));
		expect(left).toEqual({ keys: [], alarm: null });
		for (const type of CREDENTIAL_TYPES) expect(await env.TOKEN_CACHE.get(edgeKey(app.appid, type))).toBeNull();
		expect(await env.TOKEN_CACHE.get(issuedKey(await tokenDigest(token)))).toBeNull();
		expect(await env.TOKEN_CACHE.get(appProfileKey(app.appid))).toBeNull();
		expect((await call(`/token?appid=${app.appid}`)).status).toBe(404);
		expect((await gw(`/cgi-bin/getcallbackip?access_token=${token}`)).json).toMatchObject({ errcode: 40001 });
		expect((await adminCall(`/admin/apps/${app.appid}`, { method: "DELETE" })).status).toBe(404);
	});

	it("an app deleted elsewhere stops being served here within REGISTRY_MEMORY_TTL_MS of KV showing it", async () => {
		const app = await nextApp();
		await putApp(app);
		expect((await call(`/token?appid=${app.appid}`)).status).toBe(200);
		// As another isolate's DELETE would leave things: the object wiped, the KV profile gone.
		await runInDurableObject(authority(env, app.appid), (instance) => (instance as unknown as { wipe(a: string): Promise<void> }).wipe(app.appid));
		await env.TOKEN_CACHE.delete(appProfileKey(app.appid));
		await travel(REGISTRY_MEMORY_TTL_MS / 1_000 + 1);
		expect((await call(`/token?appid=${app.appid}`)).status).toBe(404);
	});
});
