import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { edgeKey } from "../../src/core/storage-keys";
import type { CredentialRecord } from "../../src/core/lifetime";
import { MEMORY_TTL_MS } from "../../src/edge/memory-cache";
import { appsFor, KEYS, type TestApp } from "./fixtures";
import { call, getToken, invalidate, refuseNextProbe, sim, travel } from "./helpers";

const next = appsFor("memory");

async function edgeCopy(app: TestApp): Promise<CredentialRecord> {
	const copy = await env.TOKEN_CACHE.get<CredentialRecord>(edgeKey(app.appid), "json");
	if (!copy) throw new Error(`no edge copy for ${app.appid}`);
	return copy;
}

/** Replaces the KV copy with a marker only KV holds: a read that returns it did not come from memory. */
async function markKv(app: TestApp, marker: string, changes: Partial<CredentialRecord> = {}): Promise<void> {
	await env.TOKEN_CACHE.put(edgeKey(app.appid), JSON.stringify({ ...(await edgeCopy(app)), value: marker, ...changes }));
}

async function tokenOf(app: TestApp): Promise<string> {
	const res = await getToken(app);
	expect(res.status).toBe(200);
	return res.body.access_token as string;
}

it("serves a token read from KV from memory for MEMORY_TTL_MS, then reads KV again", async () => {
	const app = next("stable");
	const first = await tokenOf(app);
	// The second read finds the edge copy; from then on this isolate remembers it.
	expect(await tokenOf(app)).toBe(first);
	await markKv(app, "changed-in-kv");
	expect(await tokenOf(app)).toBe(first);
	await travel(MEMORY_TTL_MS / 1_000 - 1);
	expect(await tokenOf(app)).toBe(first);
	await travel(1);
	expect(await tokenOf(app)).toBe("changed-in-kv");
	expect(await sim.tokenCalls(app)).toBe(1);
});

it("never serves a remembered token at or past its refreshAt, however recently it was read", async () => {
	const app = next("classic");
	await tokenOf(app);
	// A copy due for refresh 2 s from now: memory may keep it 2 s, not MEMORY_TTL_MS.
	await markKv(app, "due-in-two-seconds", { refreshAt: Date.now() + 2_000 });
	expect(await tokenOf(app)).toBe("due-in-two-seconds");
	await markKv(app, "the-next-copy", { refreshAt: Date.now() + 3_600_000 });
	await travel(1);
	expect(await tokenOf(app)).toBe("due-in-two-seconds");
	await travel(1);
	expect(await tokenOf(app)).toBe("the-next-copy");
});

it("serves the token an invalidation returned at once, not the remembered one", async () => {
	const app = next("stable");
	const first = await tokenOf(app);
	expect(await tokenOf(app)).toBe(first);
	await refuseNextProbe(app);
	const replaced = await invalidate(app, first);
	expect(replaced.status).toBe(200);
	const second = replaced.body.access_token as string;
	expect(second).not.toBe(first);
	// KV now says something else: the next read must come from this isolate's updated memory.
	await markKv(app, "kv-after-invalidation");
	expect(await tokenOf(app)).toBe(second);
	expect(await sim.check(second)).toBe(0);
});

it("serves the token an admin refresh returned at once", async () => {
	const app = next("classic");
	const first = await tokenOf(app);
	expect(await tokenOf(app)).toBe(first);
	const refreshed = await call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: KEYS.admin });
	expect(refreshed.status).toBe(200);
	await markKv(app, "kv-after-refresh");
	expect(await tokenOf(app)).toBe(refreshed.body.access_token);
});

it("forgets the remembered token when an invalidation of it is refused", async () => {
	const app = next("stable");
	await tokenOf(app);
	await refuseNextProbe(app);
	const second = (await invalidate(app, await tokenOf(app))).body.access_token as string;
	expect(await tokenOf(app)).toBe(second);
	// Reported again within 30 s: the rate limit refuses, and this isolate stops trusting its copy.
	const refused = await invalidate(app, second);
	expect(refused.status).toBe(429);
	await markKv(app, "kv-after-refusal");
	expect(await tokenOf(app)).toBe("kv-after-refusal");
});

it("does not remember a read the object answered: a KV miss asks the object every time", async () => {
	const app = next("classic");
	const first = await tokenOf(app);
	await env.TOKEN_CACHE.delete(edgeKey(app.appid));
	expect(await tokenOf(app)).toBe(first);
	// Had memory kept the object's answer, this marker would be hidden for MEMORY_TTL_MS.
	await env.TOKEN_CACHE.put(edgeKey(app.appid), JSON.stringify({ policy: "classic", obtainedAt: Date.now(), expiresAt: Date.now() + 7_200_000, refreshAt: Date.now() + 6_300_000, value: "kv-written-later" }));
	expect(await tokenOf(app)).toBe("kv-written-later");
});
