/** Restarts in the middle of an upstream call (found by an adversarial review): each test failed on the engine before its fix. */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { edgeKey, STATE_KEY } from "../../src/core/storage-keys";
import { appsFor } from "./fixtures";
import { deferred, forceRefresh, getToken, interceptUpstream, isForce, lostAnswer, never, sim, statusOf } from "./helpers";

const next = appsFor("reviewr");

describe("B stable: restart after WeChat carried out an admin force", () => {
	it("the KV edge copy must not go on serving the revoked token", async () => {
		const app = next("stable");
		await getToken(app);
		const sent = deferred();
		const restore = interceptUpstream((url, init, real) =>
			isForce(url, init) ? real(url, init).then(() => { sent.resolve(); return never(); }) : undefined);
		const forcing = forceRefresh(app.appid).catch(() => null);
		await sent.promise; // WeChat revoked `first`; the instance dies before the answer arrives
		
		await abortAllDurableObjects();
		
		void forcing;
		restore();
		expect((await statusOf(app)).token).toBeNull(); // the successor recovered: it no longer hands `first` out
		const read = await getToken(app); // ...but KV still does
		expect(await sim.check(read.body.access_token as string), `expires_in ${read.body.expires_in}`).toBe(0);
	});
});

describe("C stable: lost force answer, then restart during the follow-up normal call", () => {
	it("keeps the force in the in-flight marker and never serves the revoked token", async () => {
		const app = next("stable");
		const first = (await getToken(app)).body.access_token as string;
		const followUp = deferred();
		const restore = interceptUpstream((url, init, real) => {
			if (isForce(url, init)) return real(url, init).then(() => lostAnswer());
			if (url.pathname === "/cgi-bin/stable_token") { followUp.resolve(); return never(); }
			return undefined;
		});
		const forcing = forceRefresh(app.appid).catch(() => null);
		await followUp.promise;
		const stored = await runInDurableObject(authority(env, app.appid), (_o, s) => s.storage.get<Record<string, any>>(STATE_KEY));
		
		await abortAllDurableObjects();
		
		void forcing;
		restore();
		await env.TOKEN_CACHE.delete(edgeKey(app.appid)); // isolate from finding B
		const read = await getToken(app);
		expect(await sim.check(first)).toBe(40001); // WeChat did revoke it
		expect({ marker: stored?.slots.token.inFlight?.force, served: read.body.access_token === first, expires_in: read.body.expires_in })
			.toEqual({ marker: true, served: false, expires_in: expect.any(Number) });
	});
});

