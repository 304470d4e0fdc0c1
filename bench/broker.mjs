// @ts-check
/**
 * The broker as it ships: the bundle `npm run build` makes (dist/index.js, what `wrangler deploy` uploads),
 * run by programmatic Miniflare: workerd with a real Durable Object (SQLite storage) and a local KV
 * namespace. Miniflare rather than `wrangler dev`, whose proxy worker caps throughput near 1k req/s on
 * 2 cores (TOOLCHAIN.md) and would measure itself instead of the broker.
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { Miniflare } from "miniflare";
import { bundleOptions } from "../scripts/bundle-miniflare.mjs";
import { onCleanup } from "./cleanup.mjs";

export const BUNDLE_PATH = "dist/index.js";
/** One admin key for every request; the bench measures tokens, not authorisation. */
const BENCH_KEY = "bench-admin-key-0123456789abcdef";
export const AUTH_HEADERS = Object.freeze({ authorization: `Bearer ${BENCH_KEY}` });
/** Where the Worker's log lines go (bench/.tmp is git-ignored); printing them would swamp the table. */
const LOG_DIR = "bench/.tmp";

/** Same as src/keys.ts edgeKey(): the KV edge copy of an app's token. */
export function edgeKey(/** @type {string} */ appid) {
	return `cred:v2:${appid}:token`;
}

/** `npm run build` (wrangler deploy --dry-run --outdir dist); its output is shown only if it fails. */
export async function buildWorker() {
	const started = performance.now();
	const child = spawn("npm", ["run", "build"], {
		stdio: ["ignore", "pipe", "pipe"],
		env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
	});
	const stop = onCleanup("npm run build", () => void child.kill("SIGTERM"));
	let output = "";
	child.stdout.on("data", (chunk) => (output += chunk));
	child.stderr.on("data", (chunk) => (output += chunk));
	const code = await new Promise((resolve) => child.once("close", resolve));
	await stop();
	if (code !== 0) throw new Error(`npm run build failed (${code}):\n${output}`);
	return { seconds: (performance.now() - started) / 1000 };
}

/**
 * @typedef {object} BrokerApp
 * @property {string} appid
 * @property {string} secret
 * @property {"stable" | "classic"} mode
 */

/**
 * @typedef {object} Broker
 * @property {string} url           e.g. http://127.0.0.1:41234 (no trailing slash)
 * @property {(appid: string) => Promise<void>} deleteEdgeCopy
 * @property {(appid: string) => Promise<boolean>} hasEdgeCopy
 * @property {() => Promise<void>} fireCron   what Cloudflare's `* * * * *` trigger does
 * @property {() => { lines: number, errors: number, warnings: number }} logCounts
 * @property {() => Promise<void>} dispose
 */

/**
 * `bindings`: more of the Worker's variables and secrets (e.g. REGISTRY_KEY for the registry scenario).
 *
 * `onLine`: sees every log line of the Worker (the scale scenario reads its alarm and watchdog lines).
 *
 * @param {{ name: string, apps: BrokerApp[], apiBase: string, bindings?: Record<string, string>, onLine?: (line: string) => void }} options
 * @returns {Promise<Broker>}
 */
export async function startBroker({ name, apps, apiBase, bindings = {}, onLine }) {
	mkdirSync(LOG_DIR, { recursive: true });
	const log = createWriteStream(`${LOG_DIR}/worker-${name}.log`);
	const counts = { lines: 0, errors: 0, warnings: 0 };
	/** @param {import("node:stream").Readable} stream */
	const collect = (stream) => {
		// A line may straddle two chunks: the unfinished tail waits for the next one.
		let tail = "";
		stream.on("data", (/** @type {Buffer} */ chunk) => {
			const lines = (tail + chunk.toString("utf8")).split("\n");
			tail = lines.pop() ?? "";
			for (const line of lines) {
				if (line === "") continue;
				counts.lines++;
				onLine?.(line);
				if (line.includes('"level":"error"')) counts.errors++;
				else if (line.includes('"level":"warn"')) counts.warnings++;
			}
			log.write(chunk);
		});
	};

	const mf = new Miniflare({
		...bundleOptions({
			scriptPath: BUNDLE_PATH,
			bindings: {
				WECHAT_APPS: JSON.stringify(apps),
				API_KEYS: JSON.stringify([{ name: "bench", key: BENCH_KEY, apps: ["*"], admin: true }]),
				WECHAT_API_BASE: apiBase,
				...bindings,
			},
		}),
		handleRuntimeStdio(stdout, stderr) {
			collect(stdout);
			collect(stderr);
		},
	});
	const stop = onCleanup(`Miniflare (${name})`, async () => {
		await mf.dispose();
		await new Promise((resolve) => log.end(resolve));
	});
	let url;
	try {
		url = (await mf.ready).href.replace(/\/$/, "");
	} catch (error) {
		await stop();
		throw error;
	}
	// Miniflare types these with the Workers runtime's types, which this Node project does not load.
	const kv = /** @type {{ get(key: string): Promise<string | null>, delete(key: string): Promise<void> }} */ (
		/** @type {unknown} */ (await mf.getKVNamespace("TOKEN_CACHE")));
	const worker = /** @type {{ scheduled(options: { cron: string }): Promise<unknown> }} */ (/** @type {unknown} */ (await mf.getWorker()));
	return {
		url,
		async deleteEdgeCopy(appid) {
			await kv.delete(edgeKey(appid));
		},
		async hasEdgeCopy(appid) {
			return (await kv.get(edgeKey(appid))) !== null;
		},
		async fireCron() {
			await worker.scheduled({ cron: "* * * * *" });
		},
		logCounts: () => ({ ...counts }),
		dispose: stop,
	};
}
