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
 * never reaches the simulator. Prints what it measured; exits non-zero when a check fails.
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
const OPENID = "oE2eSdkUser0000000000000001";
/** Binary media with every byte value, large enough to span many chunks, under WeChat's 2 MB image limit. */
const MEDIA_BYTES = 300 * 1024;
const apps = [
	{ sdk: "co-wechat-api", appid: "wxe2esdkstable01", secret: "e2e-sdk-secret-stable", mode: /** @type {const} */ ("stable") },
	{ sdk: "wechat-api", appid: "wxe2esdkclassic1", secret: "e2e-sdk-secret-classic", mode: /** @type {const} */ ("classic") },
];

const stack = await startLocalStack({
	brokerPort: Number(process.env.BROKER_PORT ?? 8840),
	simPort: Number(process.env.WXSIM_PORT ?? 9960),
	apps: apps.map(({ appid, secret, mode }) => ({ appid, secret, mode })),
	keys: [{ name: "sdk-service", key: KEY, apps: ["*"] }],
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
async function unknownTokenCalls() {
	return (await control("/stats")).unknown_token ?? {};
}
/** Out of band, as another server holding the AppSecret would: WeChat refuses the broker's token at once. */
/** @param {{appid: string, mode: string}} app */
async function revokeBehindEveryonesBack(app) {
	const action = app.mode === "stable" ? "rotate" : "revoke";
	await control(`/apps/${app.appid}/${action}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: app.mode }) });
}
/** @param {{mode: string}} app @param {any} before @param {any} after */
function refreshes(app, before, after) {
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
function coWeChatApi(/** @type {string} */ appid) {
	let fetches = 0;
	let store = /** @type {any} */ (null);
	const api = new CoWeChatAPI(appid, KEY, async () => store, async (/** @type {any} */ token) => {
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
			const forged = new CoWeChatAPI(appid, KEY, async () => ({ accessToken: `forged-${randomBytes(24).toString("hex")}`, expireTime: Date.now() + 3_600_000 }), async () => {}, true);
			forged.prefix = `${stack.url}/cgi-bin/`;
			return { ip: () => forged.getIp() };
		},
	};
}

/** wechat-api: the host is `endpoint` (setEndpoint forces https); the key is the constructor's appsecret. @returns {Sdk} */
function wechatApi(/** @type {string} */ appid) {
	let fetches = 0;
	let store = /** @type {any} */ (null);
	const make = (/** @type {any} */ getToken, /** @type {any} */ saveToken) => {
		const api = new WeChatAPI(appid, KEY, getToken, saveToken);
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

const results = [];
try {
	for (const app of apps) {
		const sdk = app.sdk === "co-wechat-api" ? coWeChatApi(app.appid) : wechatApi(app.appid);
		const tag = `${app.sdk} (${app.mode})`;

		const [token, tokenMs] = await timed(() => sdk.token());
		const brokers = /** @type {any} */ (await (await fetch(`${stack.url}/token?appid=${app.appid}`, { headers: { authorization: `Bearer ${KEY}` } })).json());
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
		const kept = /** @type {any} */ (await (await fetch(`${stack.url}/ticket?appid=${app.appid}&type=jsapi`, { headers: { authorization: `Bearer ${KEY}` } })).json());
		assert.equal(ticket.ticket, kept.ticket, "the SDK's ticket is the one the broker keeps");
		assert.equal((await calls(app.appid)).getticket, 1, "one getticket reached WeChat: the broker's own, not the SDK's");
		results.push(`${tag}: ticket/getticket jsapi answered by the broker, = GET /ticket, 1 upstream getticket (${ms(ticketMs)})`);

		await revokeBehindEveryonesBack(app);
		const before = await calls(app.appid);
		const fetchesBefore = sdk.tokenFetches();
		const [healed, healMs] = await timed(() => sdk.ip());
		const after = await calls(app.appid);
		assert.ok(Array.isArray(healed.ip_list), "the call made with a revoked token succeeds");
		assert.equal(refreshes(app, before, after), 1, "exactly one upstream token refresh");
		assert.equal((after.stable_token_force ?? 0) - (before.stable_token_force ?? 0), 0, "no forced refresh spent");
		// Classic also probes the refused token before its token call revokes it (a forwarded answer is evidence,
		// not proof); stable's normal stable_token call revokes nothing and needs no probe.
		const probes = app.mode === "classic" ? 1 : 0;
		assert.equal(after.getcallbackip - before.getcallbackip, 2 + probes, "WeChat saw the refused call, the broker's probe (classic) and its retry");
		assert.equal(sdk.tokenFetches(), fetchesBefore, "the SDK never saw the refusal (it fetched no new token)");
		results.push(`${tag}: token revoked behind everyone's back → healed inside one SDK call, 1 upstream refresh, 0 SDK token fetches (${ms(healMs)})`);

		const unknownBefore = await unknownTokenCalls();
		await assert.rejects(sdk.forged().ip(), (/** @type {any} */ error) => error.code === 40001, "a forged token is refused with 40001");
		assert.deepEqual(await unknownTokenCalls(), unknownBefore, "the forged token never reached the simulator");
		results.push(`${tag}: forged token → errcode 40001 from the broker, 0 calls reached the simulator`);
	}
	console.log(results.map((line) => `ok  ${line}`).join("\n"));
} catch (error) {
	console.log(results.map((line) => `ok  ${line}`).join("\n"));
	console.error(`FAIL ${error instanceof Error ? error.stack ?? error.message : error}`);
	process.exitCode = 1;
} finally {
	await stack.stop();
}
