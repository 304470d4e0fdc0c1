// The part of autocannon 8's programmatic API the bench uses (the package ships no types).
declare module "autocannon" {
	import type { EventEmitter } from "node:events";

	interface Options {
		url: string | string[];
		connections?: number;
		duration?: number;
		method?: string;
		headers?: Record<string, string>;
		body?: string;
		pipelining?: number;
		timeout?: number;
	}

	interface Result {
		/** seconds actually run */
		duration: number;
		non2xx: number;
		errors: number;
		timeouts: number;
	}

	interface Instance extends EventEmitter, PromiseLike<Result> {
		on(event: "response", listener: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void): this;
	}

	function autocannon(options: Options): Instance;
	export default autocannon;
}
