/**
 * The edge tiers' protections that an outside mutation pass (issue 20) could remove without any test noticing:
 * the memory tier's 5 s bound (README: "memory for at most 5 s"; asserted as 5 s, not as the constant), the
 * issued-token index's lifetime (DESIGN.md's gateway section: a token is a gateway credential only while
 * WeChat itself would still accept it; KV forgets the entry with the token), and the longest token WeChat
 * may return (512 characters). Each test fails when its protection is removed (scripts/mutations.mjs,
 * "[guards-edge]").
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { issuedKey } from "../../src/core/storage-keys";
import { tokenDigest } from "../../src/edge/issued-index";
import { appsFor, type TestApp } from "./fixtures";
import { expectWeChatError, gw } from "./gateway-helpers";
import { getToken, interceptUpstream, runCron, sim, travel, wechatAnswer } from "./helpers";

const next = appsFor("guards-edge");

async function tokenOf(app: TestApp): Promise<string> {
	const res = await getToken(app);
	expect(res.status).toBe(200);
	return res.body.access_token as string;
}

const ipList = (token: string) => `/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`;

it("an isolate hands out a token it remembers for at most 5 s after the object replaced it", async () => {
	const app = next("stable");
	const old = await tokenOf(app);
	expect(await tokenOf(app)).toBe(old); // read from KV: from now on this isolate remembers it
	// Another isolate's admin forces a new token: the object writes KV, this isolate's memory is not told.
	const forced = await authority(env, app.appid).forceRefresh(app.appid, "token");
	expect(forced.ok).toBe(true);
	await travel(4);
	expect(await tokenOf(app)).toBe(old); // still remembered: this read did not reach KV
	await travel(1);
	// Failed with a longer memory tier: the revoked token again, for as long as that tier keeps it.
	expect(await tokenOf(app)).toBe(forced.ok && forced.record.value);
});

it("KV forgets a token's issued-index entry when the token expires", async () => {
	const app = next("classic");
	const token = await tokenOf(app);
	const { keys } = await env.TOKEN_CACHE.list({ prefix: issuedKey(await tokenDigest(token)) });
	// KV computes an expiration on its own clock, which is not the tests' (Date runs far ahead of workerd's,
	// so no alarm fires for real): a probe written now with the token's lifetime shows where KV's "7200 s
	// from now" lies. Allow a few seconds.
	await env.TOKEN_CACHE.put("guards-edge-probe", "x", { expirationTtl: 7200 });
	const probe = (await env.TOKEN_CACHE.list({ prefix: "guards-edge-probe" })).keys[0]!.expiration!;
	// Failed without the entry's expirationTtl: kept for ever, one more entry per token the broker ever issued.
	expect(keys[0]?.expiration).toBeGreaterThanOrEqual(probe - 5);
	expect(keys[0]?.expiration).toBeLessThanOrEqual(probe + 5);
});

it("the gateway refuses a token the broker replaced once WeChat no longer accepts it, without calling WeChat", async () => {
	const app = next("classic");
	const replaced = await tokenOf(app);
	await travel(7200 - 900 + 1);
	await runCron([app]); // due: a new token; WeChat keeps the old one at most 300 s more
	const current = await tokenOf(app);
	expect(current).not.toBe(replaced);
	await travel(900); // past the replaced token's own expiry: WeChat refuses it whatever the broker's plan was
	expect(await sim.check(replaced)).not.toBe(0);
	const before = await sim.calls(app);
	// Failed when the index's entry outlived the token: forwarded with the current token, and answered.
	expectWeChatError(await gw(ipList(replaced)), 40001);
	expect(await sim.calls(app)).toEqual(before);
});

it("takes no access_token longer than 512 characters from WeChat, and takes one of 512", async () => {
	const app = next("stable");
	let length = 513;
	interceptUpstream((url) => url.pathname === "/cgi-bin/stable_token" ? wechatAnswer({ access_token: "t".repeat(length), expires_in: 7200 }) : undefined);
	const refused = await getToken(app);
	// Failed without the bound: 200 with a token that the broker's own gateway and /token/invalidate refuse.
	expect(refused.status).toBe(503);
	expect(refused.body.access_token).toBeUndefined();
	length = 512;
	await travel(Number(refused.headers.get("retry-after")));
	const taken = await getToken(app);
	expect(taken.status).toBe(200);
	expect(taken.body.access_token).toBe("t".repeat(512));
});
