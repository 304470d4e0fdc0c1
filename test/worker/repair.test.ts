/**
 * The object's next alarm (10 s later) repairs the edge copy when its own KV write failed. KV is broken for the object's
 * writes (every KV namespace in the isolate shares one prototype, the object's binding included), not
 * only for the Worker's reads.
 */
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { authority } from "../../src/authority/stub";
import { edgeKey } from "../../src/core/storage-keys";
import type { CredentialRecord } from "../../src/core/lifetime";
import { appsFor, type TestApp } from "./fixtures";
import { call, deferred, getToken, nextAlarm, runCron, sim } from "./helpers";

const next = appsFor("repair");

afterEach(() => {
	vi.restoreAllMocks();
});

/** Makes every KV put in this isolate fail, as KV does when it is down or refuses a write. */
/** KV refuses every write from now on, or after the first `allowed` (e.g. a force's retraction). */
function breakKvWrites(allowed = 0): { puts: () => number } {
	const proto = Object.getPrototypeOf(env.TOKEN_CACHE) as KVNamespace;
	const realPut = proto.put;
	let taken = 0;
	const spy = vi.spyOn(proto, "put").mockImplementation(function (this: KVNamespace, ...args: Parameters<KVNamespace["put"]>) {
		if (taken++ < allowed) return realPut.apply(this, args);
		return Promise.reject(new Error("KV write failed"));
	});
	return { puts: () => spy.mock.calls.length - allowed };
}

async function edgeToken(app: TestApp): Promise<string | undefined> {
	return (await env.TOKEN_CACHE.get<CredentialRecord>(edgeKey(app.appid), "json"))?.value;
}

it.each(["stable", "classic"] as const)("%s: writes the edge copy at the object's next alarm, 10 s after its write failed", async (mode) => {
	const app = next(mode);
	const broken = breakKvWrites();
	const res = await getToken(app);
	expect(res.status).toBe(200);
	expect(broken.puts()).toBeGreaterThan(0); // the object tried, and KV refused
	vi.restoreAllMocks();
	expect(await edgeToken(app)).toBeUndefined();

	expect(await nextAlarm(app)).toBeLessThanOrEqual(10);
	expect(await edgeToken(app)).toBe(res.body.access_token);
	expect(await sim.tokenCalls(app)).toBe(1); // a repair, not a refresh
});

it("after a forced refresh whose KV write failed, the next alarm replaces the copy of the revoked token", async () => {
	const app = next("stable");
	const first = (await getToken(app)).body.access_token as string;
	expect(await edgeToken(app)).toBe(first);

	// KV takes the retraction (a force is not sent without it: review4.test.ts), then refuses the new copy.
	const broken = breakKvWrites(1);
	const forced = await call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: "admin-key-0123456789abcdef" });
	expect(forced.status).toBe(200);
	expect(broken.puts()).toBeGreaterThan(0);
	vi.restoreAllMocks();
	expect(await sim.check(first)).toBe(40001); // force_refresh revoked it; the edge copy still holds it, capped
	expect(await edgeToken(app)).toBe(first);

	expect(await nextAlarm(app)).toBeLessThanOrEqual(10);
	expect(await edgeToken(app)).toBe(forced.body.access_token);
	expect(await sim.check(forced.body.access_token as string)).toBe(0);
});

it("a repair write that lands after a newer copy is followed at once by the newer copy again (KV keeps the last write)", async () => {
	const app = next("stable");
	const proto = Object.getPrototypeOf(env.TOKEN_CACHE) as KVNamespace;
	const realPut = proto.put;
	const repairSent = deferred();
	const releaseRepair = deferred();
	let edgePuts = 0;
	vi.spyOn(proto, "put").mockImplementation(function (this: KVNamespace, ...args: Parameters<KVNamespace["put"]>) {
		if (args[0] !== edgeKey(app.appid)) return realPut.apply(this, args);
		edgePuts++;
		if (edgePuts === 1) return Promise.reject(new Error("KV write failed")); // the object's own write
		if (edgePuts === 2) {
			// The cron's repair of the first token: held until a newer token has been written.
			repairSent.resolve();
			return releaseRepair.promise.then(() => realPut.apply(this, args));
		}
		return realPut.apply(this, args);
	});
	const first = (await getToken(app)).body.access_token as string;
	const repairing = authority(env, app.appid).refreshIfDue(app.appid);
	await repairSent.promise;
	const forced = await call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: "admin-key-0123456789abcdef" });
	expect(forced.status).toBe(200);
	expect(await edgeToken(app)).toBe(forced.body.access_token); // the newer copy, written at once
	releaseRepair.resolve();
	expect((await repairing).action).toBe("fresh");
	// The older write landed last, and the object wrote the current copy again at once: KV never goes on
	// serving the token the force revoked.
	expect(await edgeToken(app)).toBe(forced.body.access_token);
	expect(await sim.check(first)).toBe(40001);
	vi.restoreAllMocks();

	await runCron([app]);
	expect(await edgeToken(app)).toBe(forced.body.access_token);
});
