#!/usr/bin/env node
// @ts-check
/**
 * `npm run e2e` (second part): two real SDKs from npm, co-wechat-api and wechat-api, pointed at the broker
 * under `wrangler dev` instead of api.weixin.qq.com, each configured with nothing but the broker as its
 * host and a broker API key as its "secret" — the two settings a service changes to adopt the gateway.
 * Behind the broker is the WeChat simulator. Checks, per SDK: token fetch, getcallbackip, a custom message
 * (JSON POST), a media upload and download that arrive byte-identical, getticket (answered by the broker
 * from the ticket it keeps, not forwarded), a token revoked behind
 * everyone's back healed inside one SDK call with exactly one upstream refresh, and a forged token that
 * never reaches the simulator. The same checks run a third time on an open-platform account: co-wechat-api
 * given an authorizer's appid and a key scoped to it, after the account authorised the component through the
 * simulator (the `authorized` push, then the vendor's redirect page posting the code), exactly as for a
 * configured app. Prints what it measured; exits non-zero when a check fails.
 * 127.0.0.1 only; ports BROKER_PORT (8840) and WXSIM_PORT (9960).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startLocalStack } from "./local-stack.mjs";

const require = createRequire(import.meta.url);
const CoWeChatAPI = require("co-wechat-api");
const WeChatAPI = require("wechat-api");

/** A service's key: not an admin key, as a service would hold. */
const KEY = "e2e-sdk-service-key-0123456789abcdef";
/** An open-platform component; the simulator pushes its tickets to the broker's event URL. */
const COMPONENT = { component_appid: "wxe2esdkcompon01", secret: "e2e-sdk-component-secret", token: "e2esdkmsgtoken", encoding_aes_key: "e2eSdkEncodingAesKey0123456789abcdefghijklm" };
/** The account that authorises the component: no AppSecret anywhere, only its refresh token in the broker. */
const AUTHORIZER = "wxe2esdkauthor01";
/** The service of that one account: its key names the authorizer's appid and nothing else. */
const AUTHORIZER_KEY = "e2e-sdk-authorizer-key-0123456789abcdef";
/** The vendor's redirect page posts the auth code with an admin key of the component's scope. */
const VENDOR_KEY = "e2e-sdk-vendor-admin-key-0123456789abcdef";
/** A push leaves the simulator within a second (its pusher's tick); this bounds a slow machine. */
const PUSH_DEADLINE_MS = 30_000;
const PUSH_POLL_MS = 100;
const OPENID = "oE2eSdkUser0000000000000001";
/** Binary media with every byte value, large enough to span many chunks, under WeChat's 2 MB image limit. */
const MEDIA_BYTES = 300 * 1024;
/** @typedef {{ sdk: string, appid: string, key: string, mode: "stable" | "classic" | "authorizer", secret?: string, component?: string }} Case */
/** @type {Case[]} */
const configured = [
	{ sdk: "co-wechat-api", appid: "wxe2esdkstable01", key: KEY, secret: "e2e-sdk-secret-stable", mode: "stable" },
	{ sdk: "wechat-api", appid: "wxe2esdkclassic1", key: KEY, secret: "e2e-sdk-secret-classic", mode: "classic" },
];
/** @type {Case} */
const authorizer = { sdk: "co-wechat-api", appid: AUTHORIZER, key: AUTHORIZER_KEY, mode: "authorizer", component: COMPONENT.component_appid };

const stack = await startLocalStack({
	brokerPort: Number(process.env.BROKER_PORT ?? 8840),
	simPort: Number(process.env.WXSIM_PORT ?? 9960),
	apps: configured.map(({ appid, secret, mode }) => ({ appid, secret: /** @type {string} */ (secret), mode: /** @type {"stable" | "classic"} */ (mode) })),
	components: [COMPONENT],
	keys: [
		{ name: "sdk-service", key: KEY, apps: ["*"] },
		{ name: "sdk-authorizer-service", key: AUTHORIZER_KEY, apps: [AUTHORIZER] },
		{ name: "sdk-vendor", key: VENDOR_KEY, apps: [`component:${COMPONENT.component_appid}`], admin: true },
	],
	persistTo: ".wrangler/e2e-sdk-state",
	quiet: true,
});

/** @param {string} path @param {RequestInit} [init] */
async function control(path, init) {
	const res = await fetch(`${stack.sim.url}/__sim${path}`, init);
	return /** @type {any} */ (await res.json());
}
/** @param {string} appid */
async function calls(appid) {
	return (await control(`/stats?appid=${appid}`)).apps[appid] ?? {};
}
/** The component's calls and pushes at the simulator (an authorizer's token is api_authorizer_token there). */
async function componentCalls() {
	return (await control(`/open/components/${COMPONENT.component_appid}`)).stats;
}
/** An account's business calls, and for an authorizer its component's token calls too. @param {Case} app */
async function upstream(app) {
	return { ...(await calls(app.appid)), ...(app.component && { component: await componentCalls() }) };
}
/** @param {() => Promise<boolean>} done @param {string} what */
async function waitFor(done, what) {
	const deadline = Date.now() + PUSH_DEADLINE_MS;
	while (!(await done())) {
		if (Date.now() > deadline) throw new Error(`${what} did not happen within ${PUSH_DEADLINE_MS / 1000} s`);
		await new Promise((resolve) => setTimeout(resolve, PUSH_POLL_MS));
	}
}
async function unknownTokenCalls() {
	return (await control("/stats")).unknown_token ?? {};
}
/**
 * Out of band, as another server holding the AppSecret would: WeChat refuses the broker's token at once. An
 * authorizer has no AppSecret: its tokens are refused at once, as a reset on WeChat's side would do.
 * @param {Case} app
 */
async function revokeBehindEveryonesBack(app) {
	const json = { method: "POST", headers: { "content-type": "application/json" } };
	if (app.component) await control(`/open/components/${app.component}/revoke`, { ...json, body: JSON.stringify({ authorizer_appid: app.appid }) });
	else await control(`/apps/${app.appid}/${app.mode === "stable" ? "rotate" : "revoke"}`, { ...json, body: JSON.stringify({ kind: app.mode }) });
}
/** @param {Case} app @param {any} before @param {any} after */
function refreshes(app, before, after) {
	if (app.component) return after.component.api_authorizer_token - before.component.api_authorizer_token;
	return app.mode === "stable" ? (after.stable_token ?? 0) - (before.stable_token ?? 0) : (after.token ?? 0) - (before.token ?? 0);
}

/**
 * The same operations on both SDKs, so one list of checks covers both.
 * @typedef {{
 *   token(): Promise<string>, ip(): Promise<any>, sendText(text: string): Promise<any>,
 *   upload(bytes: Buffer): Promise<any>, download(mediaId: string): Promise<Buffer>, ticket(): Promise<any>,
 *   tokenFetches(): number, forged(): { ip(): Promise<any> }
 * }} Sdk
 */

/** co-wechat-api: the host is `prefix`; the key is the constructor's appsecret. @returns {Sdk} */
function coWeChatApi(/** @type {string} */ appid, /** @type {string} */ key) {
	let fetches = 0;
	let store = /** @type {any} */ (null);
	const api = new CoWeChatAPI(appid, key, async () => store, async (/** @type {any} */ token) => {
		if (token) fetches++;
		store = token;
	});
	api.prefix = `${stack.url}/cgi-bin/`;
	return {
		token: async () => (await api.getAccessToken()).accessToken,
		ip: () => api.getIp(),
		sendText: (text) => api.sendText(OPENID, text),
		upload: (bytes) => api.uploadMedia(bytes, "image", "e2e.png", "image/png"),
		download: (mediaId) => api.getMedia(mediaId),
		ticket: () => api.getTicket("jsapi"),
		tokenFetches: () => fetches,
		forged() {
			const forged = new CoWeChatAPI(appid, key, async () => ({ accessToken: `forged-${randomBytes(24).toString("hex")}`, expireTime: Date.now() + 3_600_000 }), async () => {}, true);
			forged.prefix = `${stack.url}/cgi-bin/`;
			return { ip: () => forged.getIp() };
		},
	};
}

/** wechat-api: the host is `endpoint` (setEndpoint forces https); the key is the constructor's appsecret. @returns {Sdk} */
function wechatApi(/** @type {string} */ appid, /** @type {string} */ key) {
	let fetches = 0;
	let store = /** @type {any} */ (null);
	const make = (/** @type {any} */ getToken, /** @type {any} */ saveToken) => {
		const api = new WeChatAPI(appid, key, getToken, saveToken);
		api.endpoint = stack.url;
		return api;
	};
	const api = make((/** @type {any} */ cb) => cb(null, store), (/** @type {any} */ token, /** @type {any} */ cb) => {
		fetches++;
		store = token;
		cb(null);
	});
	const call = (/** @type {string} */ name, /** @type {any[]} */ ...args) => promisify(api[name]).apply(api, args);
	return {
		token: async () => (await call("getLatestToken")).accessToken,
		ip: () => call("getIp"),
		sendText: (text) => call("sendText", OPENID, text),
		async upload(bytes) {
			// wechat-api uploads from a file path, streamed with formstream.
			const dir = mkdtempSync(join(tmpdir(), "e2e-sdk-"));
			const path = join(dir, "e2e.png");
			writeFileSync(path, bytes);
			try {
				return await call("uploadMedia", path, "image");
			} finally {
				rmSync(dir, { recursive: true, force: true });
			}
		},
		download: (mediaId) => call("getMedia", mediaId),
		ticket: () => call("getTicket", "jsapi"),
		tokenFetches: () => fetches,
		forged() {
			const forged = make((/** @type {any} */ cb) => cb(null, { accessToken: `forged-${randomBytes(24).toString("hex")}`, expireTime: Date.now() + 3_600_000 }), (/** @type {any} */ _t, /** @type {any} */ cb) => cb(null));
			return { ip: () => promisify(forged.getIp).call(forged) };
		},
	};
}

/** @param {number} ms */
const ms = (ms) => `${ms.toFixed(0)} ms`;
/** @template T @param {() => Promise<T>} fn @returns {Promise<[T, number]>} */
async function timed(fn) {
	const t0 = performance.now();
	const value = await fn();
	return [value, performance.now() - t0];
}

/**
 * One SDK against one account, every check. The account is a configured app or an authorizer: the SDK cannot
 * tell, and the checks differ only in where the simulator counts the account's token calls.
 * @param {Case} app @param {string[]} results
 */
async function checkGateway(app, results) {
	const sdk = app.sdk === "co-wechat-api" ? coWeChatApi(app.appid, app.key) : wechatApi(app.appid, app.key);
	const tag = `${app.sdk} (${app.mode})`;

	const [token, tokenMs] = await timed(() => sdk.token());
	const brokers = /** @type {any} */ (await (await fetch(`${stack.url}/token?appid=${app.appid}`, { headers: { authorization: `Bearer ${app.key}` } })).json());
	assert.equal(token, brokers.access_token, "the SDK's token is the broker's token");
	results.push(`${tag}: token from /cgi-bin/token with the broker key as secret (${ms(tokenMs)})`);

	const [ip, ipMs] = await timed(() => sdk.ip());
	assert.ok(Array.isArray(ip.ip_list) && ip.ip_list.length > 0, "getcallbackip answers ip_list");
	results.push(`${tag}: getcallbackip forwarded (${ms(ipMs)})`);

	const text = `hello from ${app.sdk} ${randomBytes(4).toString("hex")}`;
	const [sent, sendMs] = await timed(() => sdk.sendText(text));
	assert.equal(sent.errcode, 0, "custom message sent");
	const { messages } = await control(`/messages?appid=${app.appid}`);
	assert.equal(messages.filter((/** @type {any} */ m) => JSON.stringify(m).includes(text)).length, 1, "WeChat received the message once");
	results.push(`${tag}: message/custom/send JSON POST arrived once (${ms(sendMs)})`);

	const media = Buffer.from(Array.from({ length: MEDIA_BYTES }, (_, i) => (i * 131 + (i >> 8)) % 256));
	const [uploaded, upMs] = await timed(() => sdk.upload(media));
	assert.ok(typeof uploaded.media_id === "string", `upload answered a media_id: ${JSON.stringify(uploaded)}`);
	const [downloaded, downMs] = await timed(() => sdk.download(uploaded.media_id));
	assert.ok(Buffer.isBuffer(downloaded), "download is binary");
	assert.ok(media.equals(downloaded), `media round trip is byte-identical (${downloaded.length} of ${media.length} bytes)`);
	results.push(`${tag}: media/upload multipart + media/get of ${MEDIA_BYTES / 1024} KiB binary, byte-identical (${ms(upMs)} up, ${ms(downMs)} down)`);

	const [ticket, ticketMs] = await timed(() => sdk.ticket());
	assert.ok(typeof ticket.ticket === "string" && ticket.ticket.length > 0, "getticket answers a ticket");
	const kept = /** @type {any} */ (await (await fetch(`${stack.url}/ticket?appid=${app.appid}&type=jsapi`, { headers: { authorization: `Bearer ${app.key}` } })).json());
	assert.equal(ticket.ticket, kept.ticket, "the SDK's ticket is the one the broker keeps");
	assert.equal((await calls(app.appid)).getticket, 1, "one getticket reached WeChat: the broker's own, not the SDK's");
	results.push(`${tag}: ticket/getticket jsapi answered by the broker, = GET /ticket, 1 upstream getticket (${ms(ticketMs)})`);

	await revokeBehindEveryonesBack(app);
	const before = await upstream(app);
	const fetchesBefore = sdk.tokenFetches();
	const [healed, healMs] = await timed(() => sdk.ip());
	const after = await upstream(app);
	assert.ok(Array.isArray(healed.ip_list), "the call made with a revoked token succeeds");
	assert.equal(refreshes(app, before, after), 1, "exactly one upstream token refresh");
	assert.equal((after.stable_token_force ?? 0) - (before.stable_token_force ?? 0), 0, "no forced refresh spent");
	// Classic and an authorizer also probe the refused token before a token call that may revoke it (a forwarded
	// answer is evidence, not proof); stable's normal stable_token call revokes nothing and needs no probe.
	const probes = app.mode === "stable" ? 0 : 1;
	assert.equal(after.getcallbackip - before.getcallbackip, 2 + probes, "WeChat saw the refused call, the broker's probe (classic, authorizer) and its retry");
	if (app.component) assert.equal(after.component.api_component_token, before.component.api_component_token, "the component's token was not refreshed: only the account's");
	assert.equal(sdk.tokenFetches(), fetchesBefore, "the SDK never saw the refusal (it fetched no new token)");
	results.push(`${tag}: token revoked behind everyone's back → healed inside one SDK call, 1 upstream refresh, 0 SDK token fetches (${ms(healMs)})`);

	const unknownBefore = await unknownTokenCalls();
	await assert.rejects(sdk.forged().ip(), (/** @type {any} */ error) => error.code === 40001, "a forged token is refused with 40001");
	assert.deepEqual(await unknownTokenCalls(), unknownBefore, "the forged token never reached the simulator");
	results.push(`${tag}: forged token → errcode 40001 from the broker, 0 calls reached the simulator`);
}

/**
 * The component gets its first ticket, then the account authorises it: WeChat pushes `authorized` to the
 * event URL, and the browser brings the same code to the vendor's redirect page, which posts it. One exchange.
 * @param {string[]} results
 */
async function authorise(results) {
	const id = COMPONENT.component_appid;
	const vendor = { authorization: `Bearer ${VENDOR_KEY}`, "content-type": "application/json" };
	const post = { method: "POST", headers: { "content-type": "application/json" } };
	const delivered = async () => (await componentCalls()).pushes.delivered;
	const [, ticketMs] = await timed(async () => {
		await control(`/open/components/${id}/schedule`, { ...post, body: JSON.stringify({ next_in_s: 0 }) });
		await waitFor(async () => (await delivered()) >= 1, "the first component_verify_ticket push");
	});
	const tokenRes = await fetch(`${stack.url}/component-token?component_appid=${id}`, { headers: vendor });
	assert.equal(tokenRes.status, 200, `GET /component-token answers once a ticket arrived: ${await tokenRes.clone().text()}`);
	results.push(`component ${id}: ticket pushed to /open/${id}/events, GET /component-token 200 (${ms(ticketMs)})`);

	const pushedBefore = await delivered();
	const consent = await control(`/open/components/${id}/authorize`, { ...post, body: JSON.stringify({ authorizer_appid: AUTHORIZER, push: true }) });
	await waitFor(async () => (await delivered()) > pushedBefore, "the `authorized` push");
	const [exchanged, exchangeMs] = await timed(async () => {
		const res = await fetch(`${stack.url}/open/${id}/authorizations`, { method: "POST", headers: vendor, body: JSON.stringify({ auth_code: consent.auth_code }) });
		return /** @type {any} */ ({ status: res.status, body: await res.json() });
	});
	assert.equal(exchanged.status, 200, `the redirect's auth code is accepted: ${JSON.stringify(exchanged.body)}`);
	assert.equal(exchanged.body.authorizer_appid, AUTHORIZER, "the code names the account");
	assert.equal((await componentCalls()).api_query_auth, 1, "the code pushed and posted was exchanged once");
	results.push(`authorizer ${AUTHORIZER}: \`authorized\` pushed + auth code posted to /open/${id}/authorizations, 1 api_query_auth (${ms(exchangeMs)})`);
}

/** @type {string[]} */
const results = [];
try {
	for (const app of configured) await checkGateway(app, results);
	await authorise(results);
	await checkGateway(authorizer, results);
	// Scoped to one account: the same SDK set-up with another account's appid gets WeChat's wrong-secret error.
	const other = /** @type {Case} */ (configured[0]).appid;
	await assert.rejects(coWeChatApi(other, AUTHORIZER_KEY).token(), (/** @type {any} */ error) => error.code === 40125, "the authorizer's key is refused for another account");
	results.push(`co-wechat-api (authorizer): its key given with ${other}'s appid → errcode 40125, the key is that account's alone`);
	console.log(results.map((line) => `ok  ${line}`).join("\n"));
} catch (error) {
	console.log(results.map((line) => `ok  ${line}`).join("\n"));
	console.error(`FAIL ${error instanceof Error ? error.stack ?? error.message : error}`);
	process.exitCode = 1;
} finally {
	await stack.stop();
}
