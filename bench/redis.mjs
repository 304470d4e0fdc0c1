// @ts-check
/**
 * A throwaway redis-server for the baselines: the one shared cache their instances are deployed behind.
 * In memory only (no RDB snapshot, no AOF), bound to 127.0.0.1 on a free port, stopped with the bench.
 */
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { onCleanup } from "./cleanup.mjs";

/** BENCH_REDIS_SERVER names another binary (a build outside PATH). */
const REDIS_BINARY = process.env.BENCH_REDIS_SERVER ?? "redis-server";
const READY_TIMEOUT_MS = 10_000;
export const REDIS_INSTALL_HINT = "install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), then run `npm run bench` again";

/** @returns {boolean} */
export function redisAvailable() {
	const probe = spawnSync(REDIS_BINARY, ["--version"], { stdio: "ignore" });
	return probe.error === undefined && probe.status === 0;
}

/** A port nobody listens on right now (the kernel's pick); redis-server takes it a moment later. */
async function freePort() {
	const server = createServer();
	await new Promise((resolve, reject) => {
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => resolve(undefined));
	});
	const address = server.address();
	await new Promise((resolve) => server.close(() => resolve(undefined)));
	if (address === null || typeof address === "string") throw new Error("could not find a free port");
	return address.port;
}

/**
 * @returns {Promise<{ url: string, port: number, stop: () => Promise<void> }>}
 */
export async function startRedis() {
	const port = await freePort();
	const child = spawn(REDIS_BINARY, [
		"--port", String(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
	], { stdio: ["ignore", "pipe", "pipe"] });
	const exited = new Promise((resolve) => child.once("exit", resolve));
	const stop = onCleanup("redis-server", async () => {
		if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
		await exited;
	});
	let output = "";
	try {
		await new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS);
			child.once("error", (error) => {
				clearTimeout(timer);
				reject(error);
			});
			child.once("exit", (code) => {
				clearTimeout(timer);
				reject(new Error(`redis-server exited (${code}):\n${output}`));
			});
			child.stdout.on("data", (chunk) => {
				output += chunk;
				if (output.includes("Ready to accept connections")) {
					clearTimeout(timer);
					resolve(undefined);
				}
			});
			child.stderr.on("data", (chunk) => (output += chunk));
		});
	} catch (error) {
		await stop();
		throw error;
	}
	// Keep draining its log so a full pipe never blocks it.
	child.stdout.resume();
	child.stderr.resume();
	return { url: `redis://127.0.0.1:${port}`, port, stop };
}
