import { env } from "cloudflare:workers";
import { expect, it, vi } from "vitest";
import { edgeKey } from "../../src/core/storage-keys";
import type { CredentialRecord } from "../../src/core/lifetime";
import { appsFor } from "./fixtures";
import { getToken, sim } from "./helpers";

const next = appsFor("edge");

async function edgeCopy(appid: string): Promise<CredentialRecord | null> {
	return env.TOKEN_CACHE.get<CredentialRecord>(edgeKey(appid), "json");
}

it("writes the edge copy after a refresh, with an expiration no earlier than the token's", async () => {
	const app = next("classic");
	const res = await getToken(app);
	const copy = await edgeCopy(app.appid);
	expect(copy?.value).toBe(res.body.access_token);
	const { keys } = await env.TOKEN_CACHE.list({ prefix: edgeKey(app.appid) });
	// The token is accepted for 7200 s; KV computes the expiration on its own (real) clock, so allow a few seconds.
	expect(keys[0]?.expiration).toBeGreaterThanOrEqual(Math.floor(vi.getRealSystemTime() / 1000) + 7200 - 5);
});

it("serves reads from the edge copy while it is fresh", async () => {
	const app = next("stable");
	await getToken(app);
	const copy = (await edgeCopy(app.appid))!;
	// A marker only the edge copy holds: if the read went to the Durable Object it would not come back.
	await env.TOKEN_CACHE.put(edgeKey(app.appid), JSON.stringify({ ...copy, value: "from-the-edge-copy" }));
	expect((await getToken(app)).body.access_token).toBe("from-the-edge-copy");
});

it("asks the object when the edge copy is due for refresh", async () => {
	const app = next("stable");
	const res = await getToken(app);
	const copy = (await edgeCopy(app.appid))!;
	await env.TOKEN_CACHE.put(edgeKey(app.appid), JSON.stringify({ ...copy, value: "stale-copy", refreshAt: Date.now() - 1 }));
	expect((await getToken(app)).body.access_token).toBe(res.body.access_token);
});

it("asks the object when the edge copy is malformed", async () => {
	const app = next("classic");
	const res = await getToken(app);
	await env.TOKEN_CACHE.put(edgeKey(app.appid), "{not json");
	expect((await getToken(app)).body.access_token).toBe(res.body.access_token);
	await env.TOKEN_CACHE.put(edgeKey(app.appid), JSON.stringify({ value: 42 }));
	expect((await getToken(app)).body.access_token).toBe(res.body.access_token);
});

it("never writes KV on the read path", async () => {
	const app = next("classic");
	await getToken(app);
	await env.TOKEN_CACHE.delete(edgeKey(app.appid));
	for (let i = 0; i < 5; i++) expect((await getToken(app)).status).toBe(200);
	expect(await edgeCopy(app.appid)).toBeNull();
	expect(await sim.tokenCalls(app)).toBe(1);
});
