/**
 * Drops three kinds of line that workerd prints during a passing `npm test`, each traced to its cause in
 * the tools, where no change to the broker or the tests can remove it:
 *
 * - "WebSocket peer disconnected": @cloudflare/vitest-pool-workers 0.15.1 closes the WebSocket to each test
 *   file's runner worker when the file ends, and workerd logs the close. The pool's own list of workerd
 *   messages to ignore (`ignoreMessages` in its pool/index.mjs) has "WebSocket was aborted" but not this
 *   wording, and the pool's Miniflare log handler cannot be replaced from the project config.
 * - "stream disconnected prematurely" followed by "uncaught exception … Network connection lost": the
 *   simulator's `reset` fault closes the socket without an answer (what a dying relay does). workerd logs
 *   this from its own HTTP client even when the `fetch` promise is awaited inside try/catch, as the broker's
 *   WeChat client does: a bare `try { await fetch(url) } catch {}` in a test prints the same three lines.
 *
 * Only whole log messages that match these exact wordings are dropped; anything else workerd says, and
 * every line vitest prints, goes through unchanged. Installed by vitest.config.ts in the vitest process,
 * which is where the pool writes workerd's messages (one write per message, to stdout or stderr by level).
 */
const NOISE: readonly RegExp[] = [
	/^exception = workerd\/api\/web-socket\.c\+\+:\d+: disconnected: WebSocket peer disconnected\n?(stack:[^\n]*\n?)?$/,
	/^exception = kj\/async-io\.c\+\+:\d+: disconnected: stream disconnected prematurely\n?(stack:[^\n]*\n?)?$/,
	/^uncaught exception; source = Uncaught \(in promise\); stack = Error: Network connection lost\.\n?$/,
	/^uncaught exception; exception = workerd\/jsg\/[^\n]*: disconnected: jsg\.Error: Network connection lost\.\n?(stack:[^\n]*\n?)?$/,
];

let installed = false;

/** Wraps the process's stdout and stderr: the pool writes workerd's messages to one or the other by level. */
export function dropKnownWorkerdNoise(): void {
	if (installed) return;
	installed = true;
	for (const stream of [process.stdout, process.stderr]) {
		const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
		stream.write = ((chunk: unknown, ...rest: unknown[]) => {
			const text = typeof chunk === "string" ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString("utf8") : null;
			if (text !== null && NOISE.some((pattern) => pattern.test(text))) {
				const callback = rest.find((arg) => typeof arg === "function") as (() => void) | undefined;
				callback?.();
				return true;
			}
			return write(chunk, ...rest);
		}) as typeof stream.write;
	}
}
