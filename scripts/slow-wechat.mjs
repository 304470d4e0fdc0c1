#!/usr/bin/env node
// @ts-check
/**
 * `npm run slow-wechat`: how long reads take while a due token is refreshed against a WeChat that answers
 * in 4 s. Runs the built bundle in Miniflare (real Durable Objects and KV) against the simulator, with
 * 70 s tokens so that the token falls due in real time (after ~61 s), and reads at concurrency 4 across the
 * refresh. Goal: no read waits for WeChat while the current token is valid. For contrast it ends with one
 * cold read (no token yet), the only kind that has to wait. Bounded: about 80 s, 127.0.0.1 only.
 */
import { execFileSync } from "node:child_process";
import { Miniflare } from "miniflare";
import { startSimulator } from "../sim/server.js";
import { bundleOptions } from "./bundle-miniflare.mjs";

const WECHAT_DELAY_MS = 4_000;
const LIFETIME_S = 70;
const READERS = 4;
/** Past the refresh-ahead point of a 70 s token (70 − 70/8 ≈ 61 s), with room for the refresh to land. */
const RUN_MS = 70_000;
const KEY = "slow-wechat-key-0123456789abcdef";
const apps = [
	{ appid: "wxslow0000000001", secret: "slow-secret-1", mode: "stable" },
	{ appid: "wxslow0000000002", secret: "slow-secret-2", mode: "classic" },
];
const cold = { appid: "wxslow0000000003", secret: "slow-secret-3", mode: "stable" };

execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", "dist"], { stdio: "ignore", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
const sim = await startSimulator({ port: 0, apps: [...apps, cold].map(({ appid, secret }) => ({ appid, secret, lifetime_s: LIFETIME_S })) });
const mf = new Miniflare({
	...bundleOptions({
		scriptPath: "dist/index.js",
		bindings: {
			WECHAT_APPS: JSON.stringify([...apps, cold]), API_KEYS: JSON.stringify([{ name: "slow", key: KEY, apps: ["*"] }]),
			WECHAT_API_BASE: sim.url, WECHAT_TIMEOUT_MS: "10000",
		},
	}),
	handleRuntimeStdio() {},
});
const url = (await mf.ready).href.replace(/\/$/, "");

/** @param {string} appid */
async function read(appid) {
	const started = performance.now();
	const res = await fetch(`${url}/token?appid=${appid}`, { headers: { authorization: `Bearer ${KEY}` } });
	const body = /** @type {{ access_token?: string }} */ (await res.json());
	return { ms: performance.now() - started, status: res.status, token: body.access_token };
}

try {
	for (const app of apps) if ((await read(app.appid)).status !== 200) throw new Error(`${app.appid}: first read failed`);
	const fault = await fetch(`${sim.url}/__sim/faults`, {
		method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: "slow", delay_ms: WECHAT_DELAY_MS }),
	});
	if (!fault.ok) throw new Error(`simulator refused the slow fault: ${await fault.text()}`);

	for (const app of apps) {
		const first = (await read(app.appid)).token;
		const deadline = performance.now() + RUN_MS;
		/** @type {number[]} */
		const latencies = [];
		let failed = 0;
		const tokens = new Set();
		await Promise.all(Array.from({ length: READERS }, async () => {
			while (performance.now() < deadline) {
				const r = await read(app.appid);
				latencies.push(r.ms);
				if (r.status !== 200) failed++;
				else tokens.add(r.token);
			}
		}));
		latencies.sort((a, b) => a - b);
		const stats = /** @type {{ apps: Record<string, Record<string, number>> }} */ (await (await fetch(`${sim.url}/__sim/stats?appid=${app.appid}`)).json());
		const calls = stats.apps[app.appid]?.[app.mode === "classic" ? "token" : "stable_token"];
		console.log(`${app.mode}: ${latencies.length} reads over ${RUN_MS / 1000} s across a due refresh (WeChat answering in ${WECHAT_DELAY_MS / 1000} s): ` +
			`slowest ${latencies.at(-1)?.toFixed(0)} ms, p99 ${latencies[Math.floor(latencies.length * 0.99)]?.toFixed(0)} ms, ${failed} failed; ` +
			`token replaced: ${tokens.size > 1 && [...tokens].some((t) => t !== first) ? "yes" : "no"}; upstream token calls: ${calls}`);
		if (failed > 0) process.exitCode = 1;
	}
	const c = await read(cold.appid);
	console.log(`cold read (no token yet, the one read that must wait): ${c.ms.toFixed(0)} ms, HTTP ${c.status}`);
} finally {
	await mf.dispose();
	await sim.close();
}
