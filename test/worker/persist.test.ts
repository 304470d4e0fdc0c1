import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { edgeKey, STATE_KEY } from "../../src/core/storage-keys";
import { appsFor } from "./fixtures";
import { getToken, sim } from "./helpers";

const next = appsFor("persist");

it.each(["stable", "classic"] as const)("serves the same token after the %s object is evicted, without calling WeChat", async (mode) => {
	const app = next(mode);
	const before = await getToken(app);
	await env.TOKEN_CACHE.delete(edgeKey(app.appid)); // force the read onto the Durable Object path
	await abortAllDurableObjects();

	const after = await getToken(app);
	expect(after.status).toBe(200);
	expect(after.body.access_token).toBe(before.body.access_token);
	expect(await sim.tokenCalls(app)).toBe(1);
});

it("keeps the token, its expiry and today's upstream calls in the object's storage", async () => {
	const app = next("classic");
	const res = await getToken(app);
	const stored = await runInDurableObject(authority(env, app.appid), (_instance, state) => state.storage.get<Record<string, any>>(STATE_KEY));
	expect(stored?.slots.token.current.value).toBe(res.body.access_token);
	expect(stored?.slots.token.current.expiresAt).toBeGreaterThan(Date.now());
	expect(stored?.usage.calls.token).toBe(1);
});
