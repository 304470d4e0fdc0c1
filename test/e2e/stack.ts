/**
 * The pieces an e2e test puts together on 127.0.0.1: the WeChat simulator, the broker as it ships (the
 * built bundle in programmatic Miniflare: workerd, a real Durable Object, local KV) and the real nginx.
 * Every port is picked by the OS, so a run never collides with `npm start`, the bench or another run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { inject } from "vitest";
import { bundleOptions } from "../../scripts/bundle-miniflare.mjs";
import { startSimulator, type Simulator } from "../../sim/server.js";

export { startSimulator, type Simulator };

/** nginx starts in milliseconds; a loaded CI machine gets generous room before the test gives up. */
const NGINX_READY_TIMEOUT_MS = 10_000;
const READY_POLL_MS = 50;
/** Debian puts nginx in /usr/sbin, which is not on every user's PATH (scripts/system-deps.mjs installs it). */
const NGINX = existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";

export interface BrokerApp {
	readonly appid: string;
	readonly secret: string;
	readonly mode: "stable" | "classic";
}

/** A WeCom entry of WECHAT_APPS (addressed as `<corpid>-<agentid>`). */
export interface BrokerWeComApp {
	readonly kind: "wecom";
	readonly corpid: string;
	readonly agentid: string;
	readonly secret: string;
}

/**
 * REGISTRY_KEY (base64 of 32 bytes), so the admin API's registry works as deployed. A test key: it seals
 * nothing real. A test may pass its own in `vars`.
 */
export const E2E_REGISTRY_KEY = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";

export interface ApiKey {
	readonly name: string;
	readonly key: string;
	readonly apps: readonly string[];
	readonly admin?: boolean;
}

export interface Broker {
	readonly url: string;
	dispose(): Promise<void>;
}

/** The built bundle in Miniflare. Its log lines are kept (for leak checks), not printed. */
export async function startBroker({ apps, keys, vars }: { apps: readonly (BrokerApp | BrokerWeComApp)[]; keys: readonly ApiKey[]; vars: Record<string, string> }): Promise<Broker & { logs: string[] }> {
	const logs: string[] = [];
	const mf = new Miniflare({
		...bundleOptions({ scriptPath: inject("bundlePath"), bindings: { WECHAT_APPS: JSON.stringify(apps), API_KEYS: JSON.stringify(keys), REGISTRY_KEY: E2E_REGISTRY_KEY, ...vars } }),
		// wrangler.toml's [assets]: the dashboard's static files, served ahead of the Worker with public/_headers.
		assets: { directory: "public", routerConfig: { has_user_worker: true } },
		handleRuntimeStdio(stdout, stderr) {
			for (const stream of [stdout, stderr]) stream.on("data", (chunk: Buffer) => logs.push(...chunk.toString("utf8").split("\n").filter(Boolean)));
		},
	});
	const url = (await mf.ready).href.replace(/\/$/, "");
	return { url, logs, dispose: () => mf.dispose() };
}

/** A port the OS says is free right now (nginx cannot be told to pick one itself). */
export async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as { port: number };
	await new Promise((resolve) => server.close(resolve));
	return port;
}

export interface Nginx {
	readonly url: string;
	readonly dir: string;
	stop(): Promise<void>;
}

/**
 * The real nginx (Debian's package) with `conf`, in a directory of its own: its pid, logs and temp files
 * never touch the system's, and it is stopped by its own PID.
 */
export async function startNginx(conf: (dir: string) => string, port: number): Promise<Nginx> {
	const dir = mkdtempSync(join(tmpdir(), "broker-nginx-"));
	mkdirSync(join(dir, "logs"));
	writeFileSync(join(dir, "nginx.conf"), conf(dir));
	const child: ChildProcess = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "logs", "startup.log"), "-g", "daemon off;"], {
		stdio: ["ignore", "ignore", "pipe"],
	});
	let stderr = "";
	child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
	const url = `http://127.0.0.1:${port}`;
	const deadline = Date.now() + NGINX_READY_TIMEOUT_MS;
	for (;;) {
		if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr}`);
		try {
			await (await fetch(url)).arrayBuffer();
			break;
		} catch {}
		if (Date.now() > deadline) {
			child.kill("SIGTERM");
			throw new Error(`nginx did not answer on ${url}: ${stderr}`);
		}
		await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
	}
	return {
		url,
		dir,
		async stop() {
			if (child.exitCode === null) {
				const exited = new Promise((resolve) => child.once("exit", resolve));
				// SIGQUIT: graceful shutdown, which also stops the worker processes.
				child.kill("SIGQUIT");
				await exited;
			}
			if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
		},
	};
}
