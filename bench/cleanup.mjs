// @ts-check
/**
 * Everything the bench starts (simulators, workerd, redis-server, forked baseline instances) registers how
 * to stop it here, so that a failure, an exception or Ctrl-C still leaves no process behind.
 * Stopped newest first: clients before the servers they talk to.
 */

/** A stop that hangs must not keep the others from running. */
const STOP_TIMEOUT_MS = 10_000;

/** @type {{ name: string, stop: () => Promise<void> | void }[]} */
const stack = [];
let signalled = false;

/** True once Ctrl-C or kill has begun the shutdown: errors from then on are its echoes, not failures. */
export function interrupted() {
	return signalled;
}

/**
 * @param {string} name  for the message when stopping fails
 * @param {() => Promise<void> | void} stop
 * @returns {() => Promise<void>} stops it now and forgets it
 */
export function onCleanup(name, stop) {
	const entry = { name, stop };
	stack.push(entry);
	return async () => {
		const index = stack.indexOf(entry);
		if (index === -1) return;
		stack.splice(index, 1);
		await runOne(entry);
	};
}

/** @param {{ name: string, stop: () => Promise<void> | void }} entry */
async function runOne({ name, stop }) {
	/** @type {NodeJS.Timeout | undefined} */
	let timer;
	try {
		await Promise.race([
			stop(),
			new Promise((_, reject) => {
				timer = setTimeout(() => reject(new Error(`did not stop within ${STOP_TIMEOUT_MS} ms`)), STOP_TIMEOUT_MS);
			}),
		]);
	} catch (error) {
		console.error(`bench: stopping ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
	} finally {
		clearTimeout(timer);
	}
}

export async function cleanupAll() {
	for (let entry = stack.pop(); entry; entry = stack.pop()) await runOne(entry);
}

/** Ctrl-C and kill: stop everything, then exit with the conventional 128 + signal number. */
export function cleanupOnSignals() {
	/** @type {[NodeJS.Signals, number][]} */
	const signals = [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]];
	for (const [signal, code] of signals) {
		process.once(signal, () => {
			signalled = true;
			console.error(`\nbench: ${signal}, stopping everything it started…`);
			void cleanupAll().finally(() => process.exit(code));
		});
	}
}
