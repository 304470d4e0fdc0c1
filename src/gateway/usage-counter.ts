/**
 * Gateway calls and heals, counted in this isolate's memory and handed to each app's TokenAuthority in
 * batches, at most once per FLUSH_INTERVAL_MS, after the response (waitUntil): counting costs the hot path
 * no Durable Object round trip. An isolate that is evicted loses at most one interval's counts; /status
 * hands over its own isolate's counts before it reads, so what it shows is exact for that isolate.
 */
import { authority } from "../authority/stub";
import type { AppEnv } from "../env";
import { log } from "../core/log";
import { NO_GATEWAY_USE, type GatewayCounts } from "../authority/gateway-usage";

/** Ten seconds: /status is read by people and dashboards, not by anything that needs the last call. */
export const FLUSH_INTERVAL_MS = 10_000;

const pending = new Map<string, { calls: number; heals: number }>();
let lastFlushAt = 0;

export function countCall(appid: string): void {
	entry(appid).calls += 1;
}

export function countHeal(appid: string): void {
	entry(appid).heals += 1;
}

/** Hands the counts over in the background when the interval has passed. */
export function flushInBackground(env: Pick<AppEnv, "TOKEN_AUTHORITY">, waitUntil: (promise: Promise<unknown>) => void): void {
	const now = Date.now();
	// A clock that went backwards (tests reset it) must not stop the flushing.
	if (now - lastFlushAt < FLUSH_INTERVAL_MS && now >= lastFlushAt) return;
	lastFlushAt = now;
	for (const appid of [...pending.keys()]) {
		const counts = take(appid);
		waitUntil(authority(env, appid).gatewayUsage(appid, counts).catch((error: unknown) => {
			log("warn", "gateway_count_lost", { appid, calls: counts.calls, heals: counts.heals, reason: error instanceof Error ? error.name : "unknown" });
		}));
	}
}

/** This app's counts not yet handed over, and forgets them: the caller hands them over. */
export function take(appid: string): GatewayCounts {
	const counts = pending.get(appid) ?? NO_GATEWAY_USE;
	pending.delete(appid);
	return counts;
}

function entry(appid: string): { calls: number; heals: number } {
	let counts = pending.get(appid);
	if (!counts) {
		counts = { calls: 0, heals: 0 };
		pending.set(appid, counts);
	}
	return counts;
}
