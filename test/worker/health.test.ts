import { expect, it } from "vitest";
import { HEALTH_CACHE_MS } from "../../src/ops/health-check";
import { appsFor, HEALTH_APPS, KEYS } from "./fixtures";
import { call, getToken, sim, travel } from "./helpers";

const next = appsFor("health");
// HEALTH_APPS, in order: the monitor key sees these three and nothing else.
const [stableA, stableB, classic] = [next("stable"), next("stable"), next("classic")];
const CACHE_S = HEALTH_CACHE_MS / 1_000;
/**
 * Each test starts on the real clock (setup.ts), which may be behind the time an earlier test travelled
 * to and cached an answer at: twice the cache's life is past any answer cached before.
 */
const PAST_CACHE_S = 2 * CACHE_S;

interface HealthBody {
	ok: boolean;
	message?: string;
	apps: { appid: string; ok: boolean; reason?: string }[];
}

async function health(key: string | null = KEYS.health): Promise<{ status: number; body: HealthBody }> {
	const res = await call("/health", { key });
	return { status: res.status, body: res.body as unknown as HealthBody };
}

it("answers 401 without a key, like every route but /healthz", async () => {
	expect((await health(null)).status).toBe(401);
	expect((await call("/healthz", { key: null })).status).toBe(200);
});

it("answers 503 naming each app in the key's scope that has no token yet, and only those apps", async () => {
	expect(HEALTH_APPS).toEqual([stableA.appid, stableB.appid, classic.appid]);
	const res = await health();
	expect(res.status).toBe(503);
	expect(res.body.ok).toBe(false);
	expect(res.body.apps.map((a) => a.appid)).toEqual(HEALTH_APPS);
	for (const appid of HEALTH_APPS) expect(res.body.message).toContain(`${appid} (no usable token`);
});

it("answers from its cache for HEALTH_CACHE_MS, then 200 once every app in scope has a token", async () => {
	for (const app of [stableA, stableB, classic]) expect((await getToken(app)).status).toBe(200);
	// Still the answer cached by the previous test: polling does not reach the objects every time.
	expect((await health()).status).toBe(503);
	await travel(CACHE_S);
	const res = await health();
	expect(res.status).toBe(200);
	expect(res.body).toEqual({ ok: true, apps: HEALTH_APPS.map((appid) => ({ appid, ok: true })) });
	// Fifty monitors at once get the same answer.
	const many = await Promise.all(Array.from({ length: 50 }, () => health()));
	expect(new Set(many.map((r) => r.status))).toEqual(new Set([200]));
});

it("answers 503 naming the app with an open incident and its reason, while the others stay ok", async () => {
	await sim.configure(classic, { secret: "reset-by-an-admin-in-the-console" });
	const refresh = await call(`/token/refresh?appid=${classic.appid}`, { method: "POST", key: KEYS.admin });
	expect(refresh.status).toBe(502);
	// The token it holds still serves: health is about incidents too, not only tokens.
	expect((await getToken(classic)).status).toBe(200);
	await travel(PAST_CACHE_S);
	const res = await health();
	expect(res.status).toBe(503);
	expect(res.body.apps.filter((a) => !a.ok).map((a) => a.appid)).toEqual([classic.appid]);
	expect(res.body.message).toMatch(new RegExp(`^1 of 3 apps .*${classic.appid} \\(open incident since .*40125`));
	await sim.configure(classic, { secret: classic.secret });
});

it("lets any valid key in, scoped to its own apps", async () => {
	const scoped = await call("/health", { key: KEYS.scoped });
	const apps = (scoped.body.apps as { appid: string }[]).map((a) => a.appid);
	expect(apps).toEqual(["wxauths00", "wxauthc00"]);
});
