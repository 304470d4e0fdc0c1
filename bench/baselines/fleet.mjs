// @ts-check
/**
 * A baseline deployed the way such servers are: several instances (separate Node processes, so separate
 * locks) behind one Redis. Clients spread over them round-robin, as a load balancer would.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { onCleanup } from "../cleanup.mjs";

const INSTANCE_ENTRY = fileURLToPath(new URL("./instance.mjs", import.meta.url));
/** Four: enough to show per-process locks racing, few enough for 2 cores to run them beside the broker. */
export const INSTANCES = 4;
const START_TIMEOUT_MS = 15_000;

/**
 * @typedef {object} Fleet
 * @property {string[]} urls   one base URL per instance
 * @property {() => Promise<void>} stop
 */

/**
 * @param {{ name: string, strategy: import("./instance.mjs").StrategyName, redisUrl: string, apiBase: string,
 *   apps: { appid: string, secret: string }[], timing: import("./strategy.mjs").Timing, instances?: number }} options
 * @returns {Promise<Fleet>}
 */
export async function startFleet({ name, strategy, redisUrl, apiBase, apps, timing, instances = INSTANCES }) {
	/** @type {(() => Promise<void>)[]} */
	const stops = [];
	/** @type {Promise<number>[]} */
	const ports = [];
	for (let i = 0; i < instances; i++) {
		const config = { strategy, redisUrl, apiBase, apps, timing, keyPrefix: name };
		const child = fork(INSTANCE_ENTRY, [], { env: { ...process.env, BENCH_BASELINE: JSON.stringify(config) }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
		const exited = new Promise((resolve) => child.once("exit", resolve));
		stops.push(onCleanup(`baseline ${name} #${i + 1}`, async () => {
			if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
			await exited;
		}));
		ports.push(new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`baseline ${name} #${i + 1} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
			child.once("message", (message) => {
				clearTimeout(timer);
				resolve(/** @type {{ port: number }} */ (message).port);
			});
			child.once("exit", (code) => {
				clearTimeout(timer);
				reject(new Error(`baseline ${name} #${i + 1} exited (${code}) before it was ready`));
			});
		}));
	}
	const stop = async () => {
		await Promise.all(stops.map((s) => s()));
	};
	try {
		const listening = await Promise.all(ports);
		return { urls: listening.map((port) => `http://127.0.0.1:${port}`), stop };
	} catch (error) {
		await stop();
		throw error;
	}
}
