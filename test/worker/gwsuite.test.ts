/**
 * A WeCom service provider's own code and SDKs: GET /suite-token for keys scoped suite:<suite_id> (403 before
 * 404, as /component-token), POST /cgi-bin/service/get_suite_token answered by the broker for a broker key as
 * suite_secret (the ticket ignored), and service API calls with a suite_access_token the broker issued
 * forwarded to WeCom; one it did not issue, or an app's token named as one, never leaves, and the calls that
 * mint a company's token or hand out a permanent code are the broker's own.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { allTestApps, KEYS, tokenTestSuite, type TestSuite } from "./fixtures";
import { call } from "./helpers";
import { registryKey } from "./component-helpers";
import { expectWeComError, gw, postJson } from "./gateway-helpers";
import { pushSuiteTicket, serviceStats } from "./suite-helpers";

const S = Array.from({ length: 16 }, (_, n) => tokenTestSuite(16 + n)) as TestSuite[];
const tokenPath = (s: TestSuite | string) => `/suite-token?suite_id=${typeof s === "string" ? s : s.suite_id}`;

function suiteToken(s: TestSuite, secret: unknown, extra: Record<string, unknown> = {}) {
	return postJson("/cgi-bin/service/get_suite_token", { suite_id: s.suite_id, suite_secret: secret, suite_ticket: "ignored", ...extra });
}

const preAuthCode = (token: string, name = "suite_access_token") => gw(`/cgi-bin/service/get_pre_auth_code?${name}=${encodeURIComponent(token)}`);
const preAuthCalls = async (s: TestSuite) => (await serviceStats(s)).suite.wecom_get_pre_auth_code ?? 0;

let vendor: string;
beforeAll(async () => {
	vendor = await registryKey("gwsuite-vendor", [`suite:${S[0]!.suite_id}`]);
});

describe("GET /suite-token", () => {
	it("answers a key scoped suite:<suite_id> in WeCom's shape for that suite only; the scope is checked before existence", async () => {
		const s = S[0]!;
		await pushSuiteTicket(s);
		const mine = await call(tokenPath(s), { key: vendor });
		expect(mine.status, JSON.stringify(mine.body)).toBe(200);
		expect(Object.keys(mine.body).sort()).toEqual(["expires_in", "suite_access_token"]);
		expect(mine.body.expires_in).toBeGreaterThan(7100);
		const other = await call(tokenPath(S[1]!), { key: vendor });
		expect(other.status).toBe(403);
		expect(other.body.message).toMatch(new RegExp(`suite:${S[1]!.suite_id}`));
		expect((await call(tokenPath("wwnosuchsuite"), { key: vendor })).status).toBe(403);
		expect((await call("/token?appid=wxauths00", { key: vendor })).status).toBe(403);
	});

	it("/status shows the suite's object to an admin key scoped to it: its token masked, its calls, no secret", async () => {
		const s = S[0]!;
		const admin = await registryKey("gwsuite-vendor-admin", [`suite:${s.suite_id}`], true);
		const page = await call("/status?limit=100", { key: admin });
		expect(page.status).toBe(200);
		const apps = page.body.apps as Record<string, any>[];
		expect(apps.map((a) => a.appid)).toEqual([`suite:${s.suite_id}`]);
		expect(apps[0]!.mode).toBe("suite");
		expect(apps[0]!.credentials[0].label).toBe("suite_access_token");
		expect(apps[0]!.calls_today.get_suite_token).toBeGreaterThanOrEqual(1);
	});

	it("answers 404 naming how to add an unknown suite, 400 without a suite_id, 401 without a key", async () => {
		const missing = await call(tokenPath("wwnosuchsuite"), { key: KEYS.all });
		expect(missing.status).toBe(404);
		expect(missing.body.message).toMatch(/WECOM_SUITES or PUT \/admin\/suites\/wwnosuchsuite/);
		expect((await call("/suite-token", { key: KEYS.all })).status).toBe(400);
		expect((await call("/suite-token?suite_id=a:b", { key: KEYS.all })).status).toBe(400);
		expect((await call(tokenPath(S[0]!), { key: "nope" })).status).toBe(401);
	});
});

describe("GET /provider-token", () => {
	it("answers a key scoped provider:<corpid> with the provider's token; 403 for another, 404 naming how to add one", async () => {
		const s = S[7]!;
		const corpid = s.provider_corpid!;
		const key = await registryKey("gwsuite-provider", [`provider:${corpid}`]);
		const mine = await call(`/provider-token?corpid=${corpid}`, { key });
		expect(mine.status, JSON.stringify(mine.body)).toBe(200);
		expect(Object.keys(mine.body).sort()).toEqual(["expires_in", "provider_access_token"]);
		expect((await call(`/provider-token?corpid=${S[8]!.provider_corpid}`, { key })).status).toBe(403);
		const missing = await call("/provider-token?corpid=wwnosuchprovider", { key: KEYS.all });
		expect(missing.status).toBe(404);
		expect(missing.body.message).toMatch(/provider_corpid wwnosuchprovider and provider_secret/);
		expect((await serviceStats(s)).provider.wecom_get_provider_token).toBeGreaterThanOrEqual(1);
	});
});

describe("get_suite_token through the gateway", () => {
	it("answers a broker key with the broker's suite token in WeCom's shape, whatever ticket is sent", async () => {
		const s = S[2]!;
		await pushSuiteTicket(s);
		const before = (await serviceStats(s)).suite.wecom_get_suite_token ?? 0;
		const res = await suiteToken(s, KEYS.all);
		expect(res.status).toBe(200);
		expect(Object.keys(res.json!).sort()).toEqual(["expires_in", "suite_access_token"]);
		const direct = await call(tokenPath(s), { key: KEYS.all });
		expect(direct.body.suite_access_token).toBe(res.json!.suite_access_token);
		expect((await serviceStats(s)).suite.wecom_get_suite_token).toBe(before + 1);
	});

	it("refuses in WeCom's words: the suite's real Secret, a key outside the suite, an unknown suite, GET, a missing suite_id", async () => {
		const s = S[3]!;
		const before = (await serviceStats(s)).suite.wecom_get_suite_token ?? 0;
		expectWeComError(await suiteToken(s, s.secret), 40080, /broker API key, not the suite's Secret/);
		expectWeComError(await suiteToken(s, vendor), 40080, new RegExp(`add "suite:${s.suite_id}"`));
		expectWeComError(await suiteToken({ ...s, suite_id: "wwnosuchsuite" }, KEYS.all), 40083, /not configured on this broker/);
		expectWeComError(await gw("/cgi-bin/service/get_suite_token"), 43002, /POST/);
		expectWeComError(await postJson("/cgi-bin/service/get_suite_token", { suite_secret: KEYS.all }), 40083, /suite_id/);
		expectWeComError(await suiteToken(s, undefined), 41024, /broker API key as the suite_secret/);
		expectWeComError(await suiteToken(s, 7), 40058, /strings/);
		expect((await serviceStats(s)).suite.wecom_get_suite_token ?? 0).toBe(before);
	});
});

describe("service API calls through the gateway", () => {
	it("forwards a call with a suite token the broker issued, and WeCom's answer comes back", async () => {
		const s = S[4]!;
		await pushSuiteTicket(s);
		const token = (await suiteToken(s, KEYS.all)).json!.suite_access_token as string;
		const res = await preAuthCode(token);
		expect(res.status).toBe(200);
		expect(res.json?.errcode ?? 0, JSON.stringify(res.json)).toBe(0);
		expect(typeof res.json?.pre_auth_code).toBe("string");
	});

	it("refuses a suite token it did not issue (40082), an app's token named as one, and a missing one, none reaching WeCom", async () => {
		const s = S[5]!;
		await pushSuiteTicket(s);
		const real = (await suiteToken(s, KEYS.all)).json!.suite_access_token as string;
		const before = await preAuthCalls(s);
		expectWeComError(await preAuthCode(`${real}x`), 40082, /did not issue/);
		const appToken = (await call(`/token?appid=${allTestApps()[0]!.appid}`, { key: KEYS.all })).body.access_token as string;
		expectWeComError(await preAuthCode(appToken), 40082, /did not issue|not a suite_access_token/);
		expectWeComError(await gw("/cgi-bin/service/get_pre_auth_code"), 41022, /missing suite_access_token/);
		expectWeComError(await preAuthCode(real, "access_token"), 41022, /missing suite_access_token/);
		expectWeComError(await gw(`/cgi-bin/service/get_pre_auth_code?suite_access_token=${encodeURIComponent(real)}&provider_access_token=x`), 40082, /once/);
		expect(await preAuthCalls(s)).toBe(before);
	});

	it("never forwards get_corp_token or get_permanent_code: they mint a company's token or hand out its permanent code", async () => {
		const s = S[6]!;
		await pushSuiteTicket(s);
		const token = (await suiteToken(s, KEYS.all)).json!.suite_access_token as string;
		const before = (await serviceStats(s)).suite;
		for (const path of ["get_corp_token", "get_permanent_code", "v2/get_permanent_code"]) {
			expectWeComError(await postJson(`/cgi-bin/service/${path}?suite_access_token=${encodeURIComponent(token)}`, { auth_corpid: "wwcorp", permanent_code: "x", auth_code: "y" }), 48002, /broker/);
		}
		expect((await serviceStats(s)).suite).toEqual(before);
	});
});
