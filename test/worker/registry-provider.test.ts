/**
 * A suite added through the admin API with its provider's CorpID and ProviderSecret: the provider token then
 * lives in the provider's own object (provider:<corpid>) as a WECOM_SUITES provider's does, its secret sealed
 * there, its first token fetched by the PUT so that a wrong secret is reported to whoever typed it. Uses the
 * registry suites wwsuitereg03..04 (fixtures.ts), which no other test file touches.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { KEYS, registryTestSuite } from "./fixtures";
import { call, simUrl } from "./helpers";
import { serviceStats, statusOfObject } from "./suite-helpers";

const put = (s: ReturnType<typeof registryTestSuite>, changes: Record<string, unknown> = {}) => {
	const { suite_id: _id, ...body } = s;
	return call(`/admin/suites/${s.suite_id}`, { method: "PUT", key: KEYS.admin, body: { ...body, ...changes } });
};

/**
 * Whether WeCom holds `token` as the provider's live token: inside a token's validity WeCom hands the same one
 * to anyone who asks with the right secret (the simulator has no endpoint that takes a provider token).
 */
async function live(s: ReturnType<typeof registryTestSuite>, token: string): Promise<boolean> {
	const res = await fetch(`${simUrl}/qyapi/cgi-bin/service/get_provider_token`, { method: "POST", body: JSON.stringify({ corpid: s.provider_corpid, provider_secret: s.provider_secret }) });
	return ((await res.json()) as { provider_access_token?: string }).provider_access_token === token;
}

describe("a registry suite's provider", () => {
	it("serves GET /provider-token from its own object, its secret sealed there, also after a restart", async () => {
		const s = registryTestSuite(3);
		const corpid = s.provider_corpid!;
		const created = await put(s);
		expect(created.status, JSON.stringify(created.body)).toBe(201);
		expect(created.body.provider_token).toMatchObject({ ok: true });
		const calls = (await serviceStats(s)).provider.wecom_get_provider_token ?? 0;
		const read = await call(`/provider-token?corpid=${corpid}`, { key: KEYS.admin });
		expect(read.status, JSON.stringify(read.body)).toBe(200);
		const token = read.body.provider_access_token as string;
		// The PUT fetched it: the read cost no call.
		expect((await serviceStats(s)).provider.wecom_get_provider_token ?? 0).toBe(calls);
		expect(await live(s, token)).toBe(true);
		const stored = await runInDurableObject(authority(env, `provider:${corpid}`), async (_o, state) => JSON.stringify([...(await state.storage.list()).entries()]));
		expect(stored).not.toContain(s.provider_secret!);
		await abortAllDurableObjects();
		const again = await authority(env, `provider:${corpid}`).providerAccessToken(corpid);
		expect(again.ok && again.record.value).toBe(token);
		expect((await statusOfObject(`provider:${corpid}`)).mode).toBe("provider");
	});

	it("a wrong provider secret is reported by the PUT that brought it (a token held or not), and a fixed one replaces it", async () => {
		const s = registryTestSuite(4);
		const corpid = s.provider_corpid!;
		const wrong = await put(s, { provider_secret: "not-the-provider-secret" });
		expect(wrong.status, JSON.stringify(wrong.body)).toBe(201);
		expect(wrong.body.provider_token).toMatchObject({ ok: false, message: expect.stringMatching(/provider_secret/) });
		expect(JSON.stringify(wrong.body)).not.toContain("not-the-provider-secret");
		const fixed = await put(s);
		expect(fixed.status, JSON.stringify(fixed.body)).toBe(200);
		expect(fixed.body.provider_token).toMatchObject({ ok: true });
		const read = await call(`/provider-token?corpid=${corpid}`, { key: KEYS.admin });
		expect(read.status, JSON.stringify(read.body)).toBe(200);
		expect(await live(s, read.body.provider_access_token as string)).toBe(true);
		// A wrong secret again, while a token is held: checked with WeCom, not answered from the held token.
		const again = await put(s, { provider_secret: "not-the-provider-secret" });
		expect(again.body.provider_token).toMatchObject({ ok: false, message: expect.stringMatching(/provider_secret/) });
	});
});
