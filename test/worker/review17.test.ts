/**
 * Adversarial review of the refresh engine and its alarm chain (review 17). Each test reproduces one finding;
 * a test marked `it.skip` with a `// REPRODUCES:` line fails on the code it was written against and waits for
 * its fix; a test left running had its (small) fix made in the same commit.
 * Apps: wxreview17… (WECHAT_APPS) and wxreg040… (registry apps, registryTestApp).
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { authority } from "../../src/authority/stub";
import { edgeKey } from "../../src/core/storage-keys";
import { isDue, isUsable, type CredentialRecord } from "../../src/core/lifetime";
import { appsFor } from "./fixtures";
import { deferred, forceRefresh, getToken, heldAnswer, interceptUpstream, isForce, settle, sim, travel } from "./helpers";

const next = appsFor("review17");
const kvProto = () => Object.getPrototypeOf(env.TOKEN_CACHE) as KVNamespace;

describe("the alarm's edge repair while a forced refresh is out", () => {
	it.each(["stable", "classic"] as const)("%s: never puts a servable copy of the value being revoked back into KV", async (mode) => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await travel(600); // fresh, not due: the force is the only refresh under way
		const realPut = kvProto().put;
		const written: CredentialRecord[] = [];
		vi.spyOn(kvProto(), "put").mockImplementation(function (this: KVNamespace, key: string, value: unknown, opts?: unknown) {
			if (key === edgeKey(app.appid)) written.push(JSON.parse(String(value)) as CredentialRecord);
			return realPut.call(this, key, value as string, opts as KVNamespacePutOptions);
		});
		const sent = deferred();
		const release = deferred();
		const forced = (url: URL, init: RequestInit | undefined) => (mode === "stable" ? isForce(url, init) : url.pathname === "/cgi-bin/token");
		interceptUpstream((url, init, real) => (forced(url, init) ? heldAnswer(real, url, init, sent.resolve, release.promise) : undefined));
		const forcing = forceRefresh(app.appid);
		await sent.promise; // WeChat has acted: stable revoked `first` now, classic revokes it 300 s from now
		// The platform delivers the alarm (or the watchdog pokes the object) while the force is out.
		await runDurableObjectAlarm(authority(env, app.appid));
		release.resolve();
		expect((await forcing).status).toBe(200);
		await settle(app);
		// Another location (KV's read cache: 30 s) or isolate (memory: 5 s) that read a copy of `first` that is
		// not due serves it as valid; no such copy may be written once the force is decided.
		const servable = written.filter((r) => r.value === first && isUsable(r, Date.now()) && !isDue(r, Date.now()));
		expect(servable).toEqual([]);
		expect(await sim.check(first)).toBe(mode === "stable" ? 40001 : 0);
	});
});
