/**
 * Review 18: tokens handed out with an `expires_in` that WeChat does not honour, after the no_overlap
 * changes (component and authorizer tokens: the promise ends at the planned refresh, since a new token may
 * revoke the old one at once). The simulator keeps a replaced token 300 s; the broker promises more.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority, componentAuthority } from "../../src/authority/stub";
import { KEYS, testComponent, type TestComponent } from "./fixtures";
import { readEdgeCopy } from "../../src/edge/edge-cache";
import { call, interceptUpstream, sim, simUrl, travel } from "./helpers";
import { pushTicket, simOpen } from "./component-helpers";
import { expectWeChatError, postJson } from "./gateway-helpers";

const C = Array.from({ length: 4 }, (_, n) => testComponent("r18", n)) as TestComponent[];

interface Push { info_type: string; query: string; body: string }

/** The account consents on WeChat's page; the pushes it makes (not tickets). */
async function authorise(c: TestComponent, authorizerAppid: string): Promise<Push[]> {
	await simOpen(`components/${c.component_appid}/take`);
	await simOpen(`components/${c.component_appid}/authorize`, { authorizer_appid: authorizerAppid, push: true });
	const { pushes } = await simOpen(`components/${c.component_appid}/take`) as { pushes: Push[] };
	return pushes.filter((p) => p.info_type !== "component_verify_ticket");
}

async function deliver(c: TestComponent, push: Push): Promise<void> {
	const res = await exports.default.fetch(new Request(`https://broker.test/open/${c.component_appid}/events?${push.query}`, {
		method: "POST", headers: { "content-type": "text/xml" }, body: push.body,
	}));
	expect(await res.text()).toBe("success");
}

async function deliverAndSettle(c: TestComponent, push: Push): Promise<void> {
	await deliver(c, push);
	await componentAuthority(env, c.component_appid).idle();
}

describe("an authorizer authorised again", () => {
	it("is not handed out for longer than WeChat keeps it once api_query_auth minted a new token", async () => {
		const c = C[0]!;
		const appid = "wxr18authz00acct";
		expect(await pushTicket(c)).toBe("success");
		for (const push of await authorise(c, appid)) await deliverAndSettle(c, push);
		const first = await call(`/token?appid=${appid}`);
		expect(first.status, JSON.stringify(first.body)).toBe(200);

		// The account changes its permissions: WeChat pushes a new code, and its exchange mints a new token.
		const again = await authorise(c, appid);
		expect(again.length).toBeGreaterThan(0);
		for (const push of again) await deliverAndSettle(c, push);

		// Past this isolate's memory tier (MEMORY_TTL_MS), which may serve what KV held a moment ago.
		await travel(6);
		const after = await call(`/token?appid=${appid}`);
		expect(after.status, JSON.stringify(after.body)).toBe(200);
		const token = after.body.access_token as string;
		const promised = after.body.expires_in as number;
		// Whatever is handed out now, WeChat must accept for all of `expires_in` (the simulator's 300 s grace
		// for a replaced token being more than the broker may assume).
		await travel(Math.min(promised - 1, 301));
		expect(await sim.check(token), `promised ${promised} s`).toBe(0);
	});

	it("has its KV copy retracted before the replacing call goes out: the token api_query_auth may have revoked is not promised meanwhile", async () => {
		const c = C[1]!;
		const appid = "wxr18authz01acct";
		expect(await pushTicket(c)).toBe("success");
		for (const push of await authorise(c, appid)) await deliverAndSettle(c, push);
		expect((await call(`/token?appid=${appid}`)).status).toBe(200);
		expect(await readEdgeCopy(env.TOKEN_CACHE, appid, Date.now())).not.toBeNull();

		let sent!: () => void;
		const reached = new Promise<void>((resolve) => { sent = resolve; });
		let release!: () => void;
		const held = new Promise<void>((resolve) => { release = resolve; });
		const restore = interceptUpstream((url, init, real) => {
			if (!url.pathname.endsWith("/api_authorizer_token")) return undefined;
			sent();
			return held.then(() => real(url.toString(), init));
		});
		try {
			for (const push of await authorise(c, appid)) await deliver(c, push);
			await reached;
			// The exchange is over (WeChat minted its token); the replacing call is out: KV promises nothing.
			expect(await readEdgeCopy(env.TOKEN_CACHE, appid, Date.now())).toBeNull();
		} finally {
			release();
			restore();
		}
		await componentAuthority(env, c.component_appid).idle();
		const after = await call(`/token?appid=${appid}`);
		expect(after.status).toBe(200);
		expect(await sim.check(after.body.access_token as string)).toBe(0);
	});
});

describe("the gateway's component API calls", () => {
	// The gateway forwarded /cgi-bin/component/api_query_auth (and api_authorizer_token) with the broker's
	// component token: WeChat minted an authorizer token the broker never learnt of, and the one GET /token
	// served (promised to its plan, ~6300 s) died. Those calls (and api_get_authorizer_list, which hands out
	// refresh tokens) are the broker's own now: the gateway refuses them and names the broker's routes.
	it("do not mint an authorizer token behind the broker's back: a code the vendor exchanges itself leaves the served token good for its expires_in", async () => {
		const c = C[2]!;
		const appid = "wxr18authz02acct";
		expect(await pushTicket(c)).toBe("success");
		for (const push of await authorise(c, appid)) await deliverAndSettle(c, push);
		expect((await call(`/token?appid=${appid}`)).status).toBe(200);

		// The vendor's own redirect page got a code (no push) and exchanges it through the broker's gateway.
		await simOpen(`components/${c.component_appid}/take`);
		const { auth_code } = await simOpen(`components/${c.component_appid}/authorize`, { authorizer_appid: appid, push: false });
		const component = await call(`/component-token?component_appid=${c.component_appid}`, { key: KEYS.all });
		expect(component.status).toBe(200);
		const token = component.body.component_access_token as string;
		const exchanged = await postJson(`/cgi-bin/component/api_query_auth?component_access_token=${encodeURIComponent(token)}`, { component_appid: c.component_appid, authorization_code: auth_code });
		expectWeChatError(exchanged, 48001);
		expect(exchanged.json?.errmsg).toMatch(/\/open\/<component_appid>\/authorizations/);

		await travel(6);
		const after = await call(`/token?appid=${appid}`);
		expect(after.status, JSON.stringify(after.body)).toBe(200);
		const promised = after.body.expires_in as number;
		await travel(Math.min(promised - 1, 301));
		expect(await sim.check(after.body.access_token as string), `promised ${promised} s`).toBe(0);
	});
});

describe("an authorizer whose refresh token WeChat refuses (61023)", () => {
	it("is not promised past the refusal: 61023 says it was authorised again elsewhere, which minted a token", async () => {
		const c = C[3]!;
		const appid = "wxr18authz03acct";
		expect(await pushTicket(c)).toBe("success");
		for (const push of await authorise(c, appid)) await deliverAndSettle(c, push);
		expect((await call(`/token?appid=${appid}`)).status).toBe(200);

		// The account authorises again and another server of the vendor exchanges the code (no push here):
		// WeChat mints a token and a new refresh token; the broker's refresh token is superseded.
		// (Its revocation's push did not reach this broker either.)
		await simOpen(`components/${c.component_appid}/unauthorize`, { authorizer_appid: appid, push: false });
		await simOpen(`components/${c.component_appid}/take`);
		const { auth_code } = await simOpen(`components/${c.component_appid}/authorize`, { authorizer_appid: appid, push: false });
		const component = await call(`/component-token?component_appid=${c.component_appid}`, { key: KEYS.all });
		const exchanged = await fetch(`${simUrl}/cgi-bin/component/api_query_auth?component_access_token=${encodeURIComponent(component.body.component_access_token as string)}`, {
			method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ component_appid: c.component_appid, authorization_code: auth_code }),
		});
		expect((await exchanged.json() as any).authorization_info?.authorizer_appid).toBe(appid);

		// The broker's planned refresh gets 61023.
		const at = await runInDurableObject(authority(env, appid), (_o, state) => state.storage.getAlarm());
		await travel(Math.ceil((at! - Date.now()) / 1_000) + 1);
		await runDurableObjectAlarm(authority(env, appid));
		expect(((await authority(env, appid).status(appid)) as any).authorizer.needs_reauthorisation).toMatchObject({ errcode: 61023 });

		await travel(6);
		// Its token's promise ended at the plan that got 61023: it is not handed out again (WeChat refuses it).
		const after = await call(`/token?appid=${appid}`);
		expect(after.status, `promised ${after.body.expires_in} s, WeChat says ${after.body.access_token ? await sim.check(after.body.access_token as string) : "-"}`).not.toBe(200);
	});
});
