#!/usr/bin/env node
// @ts-check
/**
 * `npm run e2e`: the broker checked from outside, as a client sees it, under `wrangler dev` with the
 * simulator: concurrent cold reads, invalidation storms, a restart on persisted storage, and a short hot
 * read load in which every answer is checked (status, no-store, the current token, its expires_in).
 * Prints what it measured; exits non-zero when any check fails. 127.0.0.1 only, bounded.
 */
import assert from "node:assert/strict";
import { startLocalStack } from "./local-stack.mjs";

const CONCURRENCY = 200;
const HOT_READS = 2_000;
const HOT_CONCURRENCY = 20;
const KEY = "e2e-admin-key-0123456789abcdef";
const apps = [
	{ appid: "wxe2eclassic0001", secret: "e2e-secret-classic", mode: /** @type {const} */ ("classic") },
	{ appid: "wxe2estable00001", secret: "e2e-secret-stable", mode: /** @type {const} */ ("stable") },
];

const stack = await startLocalStack({
	brokerPort: Number(process.env.BROKER_PORT ?? 8797),
	simPort: Number(process.env.WXSIM_PORT ?? 9867),
	apps,
	keys: [{ name: "e2e", key: KEY, apps: ["*"], admin: true }],
	persistTo: ".wrangler/e2e-state",
	quiet: true,
});
const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };

/** @param {string} path @param {RequestInit} [init] */
async function broker(path, init = {}) {
	const res = await fetch(`${stack.url}${path}`, { headers, ...init });
	return { status: res.status, body: /** @type {any} */ (await res.json()) };
}
/** @param {{appid: string, mode: string}} app */
async function upstreamCalls(app) {
	const stats = /** @type {any} */ (await (await fetch(`${stack.sim.url}/__sim/stats?appid=${app.appid}`)).json());
	const calls = stats.apps[app.appid] ?? {};
	return (app.mode === "classic" ? calls.token : calls.stable_token) ?? 0;
}
/** @param {string} token */
async function wechatAccepts(token) {
	const body = /** @type {any} */ (await (await fetch(`${stack.sim.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`)).json());
	return body.errcode === undefined;
}
/** @param {number} ms */
const ms = (ms) => `${ms.toFixed(0)} ms`;

const results = [];
try {
	for (const app of apps) {
		let t0 = performance.now();
		const cold = await Promise.all(Array.from({ length: CONCURRENCY }, () => broker(`/token?appid=${app.appid}`)));
		const coldMs = performance.now() - t0;
		assert.ok(cold.every((r) => r.status === 200), "every cold read succeeds");
		const tokens = new Set(cold.map((r) => r.body.access_token));
		assert.equal(tokens.size, 1, "one token for all cold readers");
		assert.equal(await upstreamCalls(app), 1, "one upstream call for all cold readers");
		const [first] = tokens;
		assert.ok(await wechatAccepts(first));
		results.push(`${app.mode}: ${CONCURRENCY} concurrent cold reads → ${tokens.size} token, ${await upstreamCalls(app)} upstream call, ${ms(coldMs)}`);

		// What makes a client report a token: WeChat refused it. Without that, the broker may confirm the
		// token still works and answer it as it is, so the storm starts from a revoked token.
		await fetch(`${stack.sim.url}/__sim/apps/${app.appid}/revoke`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: app.mode }) }).then((r) => r.text());
		assert.ok(!(await wechatAccepts(first)), "the simulator revoked the token");
		t0 = performance.now();
		const storm = await Promise.all(Array.from({ length: CONCURRENCY }, () =>
			broker("/token/invalidate", { method: "POST", body: JSON.stringify({ appid: app.appid, access_token: first }) })));
		const stormMs = performance.now() - t0;
		const renewed = new Set(storm.map((r) => r.body.access_token));
		assert.ok(storm.every((r) => r.status === 200), "every report of the current token succeeds");
		assert.equal(renewed.size, 1, "one new token for the whole storm");
		assert.ok(!renewed.has(first));
		const [second] = renewed;
		assert.ok(await wechatAccepts(second));
		const afterStorm = await upstreamCalls(app);
		// The cold read's call and one refresh (stable: a normal call hands out a new token, no force needed).
		assert.equal(afterStorm, 2, "one upstream token call for the whole storm");
		results.push(`${app.mode}: ${CONCURRENCY} concurrent reports of the current (revoked) token → 1 new token, ${afterStorm - 1} upstream call(s), ${ms(stormMs)}`);

		const stale = await Promise.all(Array.from({ length: CONCURRENCY }, () =>
			broker("/token/invalidate", { method: "POST", body: JSON.stringify({ appid: app.appid, access_token: first }) })));
		assert.ok(stale.every((r) => r.status === 200 && r.body.access_token === second), "stale reports get the current token");
		assert.equal(await upstreamCalls(app), afterStorm, "stale reports cost nothing upstream");
		results.push(`${app.mode}: ${CONCURRENCY} concurrent reports of the old token → current token, 0 upstream calls`);
	}

	const before = await Promise.all(apps.map((app) => broker(`/token?appid=${app.appid}`)));
	assert.deepEqual(before.map((r) => r.status), apps.map(() => 200), "every read before the restart succeeds");
	const callsBefore = await Promise.all(apps.map(upstreamCalls));
	let t0 = performance.now();
	await stack.restart();
	const restartMs = performance.now() - t0;
	const status = await broker("/status");
	assert.equal(status.status, 200, "/status answers after a restart");
	const after = await Promise.all(apps.map((app) => broker(`/token?appid=${app.appid}`)));
	assert.deepEqual(after.map((r) => r.status), apps.map(() => 200), "every read after the restart succeeds");
	assert.deepEqual(after.map((r) => r.body.access_token), before.map((r) => r.body.access_token), "same tokens after a restart");
	assert.deepEqual(await Promise.all(apps.map(upstreamCalls)), callsBefore, "no upstream call after a restart");
	assert.deepEqual(status.body.apps.map((/** @type {any} */ a) => a.token?.slice(0, 8)), before.map((r) => r.body.access_token.slice(0, 8)));
	results.push(`restart of workerd on persisted storage (${ms(restartMs)}): same tokens, 0 upstream calls; /status reads every object`);

	const app = apps[1];
	assert.ok(app);
	const expected = after[1]?.body.access_token;
	assert.ok(typeof expected === "string");
	let next = 0;
	/** @type {number[]} */
	const latencies = [];
	/** Every hot read is checked; the first few that break an expectation are kept for the report. */
	/** @type {string[]} */
	const broken = [];
	let brokenCount = 0;
	t0 = performance.now();
	await Promise.all(Array.from({ length: HOT_CONCURRENCY }, async () => {
		while (next++ < HOT_READS) {
			const start = performance.now();
			const res = await fetch(`${stack.url}/token?appid=${app.appid}`, { headers });
			const text = await res.text();
			latencies.push(performance.now() - start);
			/** @type {any} */
			let body = null;
			try {
				body = JSON.parse(text);
			} catch {}
			const problem = res.status !== 200 ? `status ${res.status}`
				: res.headers.get("cache-control") !== "no-store" ? `Cache-Control ${res.headers.get("cache-control")}`
				: body?.access_token !== expected ? "a different token than the current one"
				: !(Number.isInteger(body.expires_in) && body.expires_in > 0) ? `expires_in ${body?.expires_in}`
				: null;
			if (problem) {
				brokenCount++;
				if (broken.length < 3) broken.push(problem);
			}
		}
	}));
	assert.equal(latencies.length, HOT_READS, "every hot read answered");
	assert.equal(brokenCount, 0, `hot reads that broke an expectation: ${brokenCount} of ${HOT_READS} (${broken.join("; ")})`);
	const seconds = (performance.now() - t0) / 1_000;
	latencies.sort((a, b) => a - b);
	const pct = (/** @type {number} */ p) => (latencies[Math.floor((latencies.length - 1) * p)] ?? 0).toFixed(1);
	results.push(`hot GET /token through wrangler dev: ${HOT_READS} reads, ${HOT_CONCURRENCY} at a time, every one 200 with the current token → ${(HOT_READS / seconds).toFixed(0)} req/s, p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms (a smoke figure: wrangler dev's proxy caps throughput)`);
	console.log(results.map((line) => `ok  ${line}`).join("\n"));
} catch (error) {
	console.log(results.map((line) => `ok  ${line}`).join("\n"));
	console.error(`FAIL ${error instanceof Error ? error.message : error}`);
	process.exitCode = 1;
} finally {
	await stack.stop();
}
