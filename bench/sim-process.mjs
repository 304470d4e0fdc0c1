// @ts-check
/**
 * One WeChat simulator (sim/server.js) in a process of its own, so that the load generator's event loop
 * and the simulator's never share a core's time slice in one thread. Forked by world.mjs; it reports its
 * URL over IPC and exits when its parent goes away (even a parent killed with SIGKILL closes the channel).
 *
 * BENCH_SIM_SPEEDUP > 1 runs WeChat's clock that many times faster than the real one (see world.mjs).
 */
import { performance } from "node:perf_hooks";
import { startSimulator } from "../sim/server.js";

const speedup = Number(process.env.BENCH_SIM_SPEEDUP ?? "1");
const startMs = Date.now();
const startPerf = performance.now();
// performance.now() rather than Date.now(): at 120× a whole-millisecond clock would jump 120 ms at a time.
const now = speedup === 1 ? Date.now : () => startMs + (performance.now() - startPerf) * speedup;

const sim = await startSimulator({ port: 0, host: "127.0.0.1", now });
let closing = false;
function stop() {
	if (closing) return;
	closing = true;
	void sim.close().finally(() => process.exit(0));
}
process.on("disconnect", stop);
process.on("SIGTERM", stop);
process.send?.({ url: sim.url });
