// @ts-check
/**
 * The broker on this machine: the WeChat simulator plus `wrangler dev` (workerd: real Durable Objects, KV),
 * both on 127.0.0.1. Shared by `npm start` and `npm run e2e`.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { startSimulator } from "../sim/server.js";

/** `wrangler dev` takes ~2 s; a cold npx and first bundle can take much longer on a busy machine. */
const READY_TIMEOUT_MS = 60_000;
const READY_POLL_MS = 250;

/**
 * @typedef {{ appid: string, secret: string, mode?: "stable" | "classic" }} App
 * @typedef {{ name: string, key: string, apps: string[], admin?: boolean }} ApiKey
 * @typedef {{ url: string, port: number, sim: import("../sim/server.js").Simulator, stop: () => Promise<void>, restart: () => Promise<void> }} LocalStack
 */

/**
 * The simulator keeps its tokens in memory, so the broker's storage starts empty with it: a token
 * persisted by an earlier run would be one this simulator never issued.
 *
 * `simOnlyApps`: apps the simulator knows but WECHAT_APPS does not (added through the admin API at runtime).
 *
 * `components`: open-platform components, in WECHAT_COMPONENTS and in the simulator, which pushes each one's
 * tickets to the broker's event URL every `pushIntervalS`.
 *
 * `suites`: WeCom suites, in WECOM_SUITES and in the simulator, which pushes each one's suite_ticket to the
 * broker's instruction URL every `pushIntervalS` (without it, on WeCom's 7–15 minute schedule).
 *
 * @typedef {{ component_appid: string, secret: string, token: string, encoding_aes_key: string }} Component
 * @typedef {{ suite_id: string, secret: string, token: string, encoding_aes_key: string, provider_corpid?: string, provider_secret?: string }} Suite
 * @param {{ brokerPort: number, simPort: number, apps: App[], simOnlyApps?: App[], wecomApps?: { kind: "wecom", corpid: string, agentid: string, secret: string }[], components?: Component[], suites?: Suite[], pushIntervalS?: number, keys: ApiKey[], persistTo: string, vars?: Record<string, string>, quiet?: boolean, onBrokerExit?: (code: number | null) => void }} options
 * @returns {Promise<LocalStack>}
 */
export async function startLocalStack({ brokerPort, simPort, apps, simOnlyApps = [], wecomApps = [], components = [], suites = [], pushIntervalS, keys, persistTo, vars = {}, quiet = false, onBrokerExit }) {
	rmSync(persistTo, { recursive: true, force: true });
	const url = `http://127.0.0.1:${brokerPort}`;
	const sim = await startSimulator({
		port: simPort,
		apps: [...apps, ...simOnlyApps].map(({ appid, secret }) => ({ appid, secret })),
		wecomApps: wecomApps.map(({ corpid, agentid, secret }) => ({ corpid, agentid, secret })),
		// Pushes before the broker answers fail, as WeChat's do; the next one comes on schedule.
		components: components.map((c) => ({ ...c, event_url: `${url}/open/${c.component_appid}/events`, ...(pushIntervalS && { push_interval_s: pushIntervalS }) })),
		suites: suites.map((s) => ({ ...s, callback_url: `${url}/wecom-suite/${s.suite_id}/events`, ...(pushIntervalS && { push_min_s: pushIntervalS, push_max_s: pushIntervalS }) })),
	});
	// Secrets go to a file wrangler reads, under .wrangler/ (git-ignored), never onto a command line.
	mkdirSync(".wrangler", { recursive: true });
	const envFile = `.wrangler/local-${brokerPort}.env`;
	// A fresh REGISTRY_KEY per run: the storage it seals is wiped above, so nothing sealed outlives it.
	const values = {
		WECHAT_APPS: JSON.stringify([...apps, ...wecomApps]), API_KEYS: JSON.stringify(keys), REGISTRY_KEY: randomBytes(32).toString("base64"),
		...(components.length > 0 && { WECHAT_COMPONENTS: JSON.stringify(components) }),
		...(suites.length > 0 && { WECOM_SUITES: JSON.stringify(suites) }),
		...vars,
	};
	writeFileSync(envFile, Object.entries(values).map(([name, value]) => `${name}=${value.replaceAll("{sim}", sim.url)}\n`).join(""));

	/** @type {import("node:child_process").ChildProcess | undefined} */
	let wrangler;
	/** The wrangler processes this stack stopped itself; any other exit is reported to onBrokerExit. */
	const stopped = new WeakSet();
	/** Set once the first launch answered: an exit before that is launch()'s own error. */
	let started = false;
	async function launch() {
		wrangler = spawn("npx", [
			"wrangler", "dev",
			"--ip", "127.0.0.1", "--port", String(brokerPort),
			"--env-file", envFile,
			"--var", `WECHAT_API_BASE:${sim.url}`,
			// The simulator serves WeCom under /qyapi, as qyapi.weixin.qq.com would be a separate host.
			"--var", `WECOM_API_BASE:${sim.url}/qyapi`,
			"--persist-to", persistTo,
			"--test-scheduled",
			"--show-interactive-dev-session=false",
		], {
			stdio: ["ignore", quiet ? "ignore" : "inherit", quiet ? "ignore" : "inherit"],
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
			detached: true, // its own process group, so stopping it stops workerd too
		});
		const child = wrangler;
		child.once("exit", (code) => {
			if (started && !stopped.has(child)) onBrokerExit?.(code);
		});
		const deadline = Date.now() + READY_TIMEOUT_MS;
		for (;;) {
			if (wrangler.exitCode !== null) throw new Error(`wrangler dev exited (${wrangler.exitCode})`);
			try {
				if ((await fetch(`${url}/healthz`)).ok) return;
			} catch {}
			if (Date.now() > deadline) throw new Error(`wrangler dev did not answer on ${url} within ${READY_TIMEOUT_MS / 1000} s`);
			await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
		}
	}
	async function kill() {
		const child = wrangler;
		// Gone already: killed by a signal leaves exitCode null, and its "exit" event will not come again.
		if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
		stopped.add(child);
		const exited = new Promise((resolve) => child.once("exit", resolve));
		try {
			process.kill(-child.pid, "SIGTERM");
		} catch {}
		await exited;
	}

	try {
		await launch();
		started = true;
	} catch (error) {
		await kill();
		await sim.close();
		throw error;
	}
	return {
		url,
		port: brokerPort,
		sim,
		/** Stops workerd (in-memory state gone) and starts it again on the same persisted storage. */
		async restart() {
			await kill();
			await launch();
		},
		async stop() {
			await kill();
			await sim.close();
		},
	};
}
