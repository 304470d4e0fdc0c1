/**
 * A second adversarial review of the refresh engine: the KV edge copy (and the memory tier over it) around
 * a forced refresh. Whatever a read is answered during or after a force, WeChat must honour it for the
 * expires_in it was promised.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { readEdgeCopy } from "../../src/edge/edge-cache";
import { edgeKey } from "../../src/core/storage-keys";
import { appsFor } from "./fixtures";
import { deferred, forceRefresh, getToken, heldAnswer, interceptUpstream, isForce, nextAlarm, runCron, settle, sim, travel, type BrokerResponse } from "./helpers";

const next = appsFor("adv2");

/** The promise a read made holds: WeChat still accepts its token one second before its expires_in ends. */
async function expectPromiseKept(read: BrokerResponse): Promise<void> {
	const promised = read.body.expires_in as number;
	await travel(promised - 1);
	expect(await sim.check(read.body.access_token as string), `promised ${promised} s`).toBe(0);
}

describe("a read while an admin refresh is under way, from KV or memory", () => {
	it("classic: is promised no more than the 300 s WeChat leaves it after the mint", async () => {
		const app = next("classic");
		await getToken(app); // KV copy written
		await travel(600); // fresh, not due
		const sent = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) =>
			url.pathname === "/cgi-bin/token" ? heldAnswer(real, url, init, sent.resolve, release.promise) : undefined);
		const forcing = forceRefresh(app.appid);
		await sent.promise; // WeChat minted: the old token dies 300 s from now
		const read = await getToken(app);
		release.resolve();
		await forcing;
		await settle(app);
		await expectPromiseKept(read);
	});

	it("stable: the edge copy stops serving the old token before the force is sent", async () => {
		const app = next("stable");
		await getToken(app);
		await travel(600);
		const sent = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) =>
			isForce(url, init) ? heldAnswer(real, url, init, sent.resolve, release.promise) : undefined);
		const forcing = forceRefresh(app.appid);
		await sent.promise; // WeChat has revoked the old token; the object's own readers wait for the new one
		const served = await readEdgeCopy(env.TOKEN_CACHE, app.appid, Date.now()); // what every isolate reads
		release.resolve();
		await forcing;
		await settle(app);
		expect(served).toBeNull();
	});
});

describe("the cron's repair of the edge copy, racing a forced refresh", () => {
	it.each(["classic", "stable"] as const)("%s: never leaves the replaced token in KV", async (mode) => {
		const app = next(mode);
		const proto = Object.getPrototypeOf(env.TOKEN_CACHE) as KVNamespace;
		const realPut = proto.put;
		let spy = vi.spyOn(proto, "put").mockImplementation(() => Promise.reject(new Error("KV write failed")));
		const first = (await getToken(app)).body.access_token as string; // the object's edge write failed
		spy.mockRestore();
		await travel(600);
		const held = deferred();
		const release = deferred();
		let repairHeld = false;
		spy = vi.spyOn(proto, "put").mockImplementation(function (this: KVNamespace, key: string, value: unknown, opts?: unknown) {
			// Only the repair's write is slow; a later write of the same token (the force's retraction) is not.
			if (key === edgeKey(app.appid) && String(value).includes(first) && !repairHeld) {
				repairHeld = true;
				held.resolve();
				return release.promise.then(() => realPut.call(this, key, value as string, opts as KVNamespacePutOptions));
			}
			return realPut.call(this, key, value as string, opts as KVNamespacePutOptions);
		} as typeof realPut);
		const cron = runCron([app]); // repairs the copy of `first`: its write is slow
		await held.promise;
		expect((await forceRefresh(app.appid)).status).toBe(200); // the new token's copy is written first
		release.resolve(); // then the repair's write of the replaced token lands
		await cron;
		spy.mockRestore();
		await travel(6); // past this isolate's 5 s memory: what every other isolate sees
		await expectPromiseKept(await getToken(app));
	});
});

it("a force WeChat refused (nothing minted) leaves the edge copy retracted only until the object's next alarm", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	await travel(600);
	await sim.fault({ appid: app.appid, endpoint: "token", kind: "errcode", errcode: 40164, times: 1 });
	expect((await forceRefresh(app.appid)).status).toBe(502);
	expect(await readEdgeCopy(env.TOKEN_CACHE, app.appid, Date.now())).toBeNull(); // retracted before the call
	expect(await nextAlarm(app)).toBeLessThanOrEqual(10);
	expect((await readEdgeCopy(env.TOKEN_CACHE, app.appid, Date.now()))?.value).toBe(first); // served from KV again
});
