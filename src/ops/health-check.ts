/**
 * GET /health for monitors: is every app a key may use able to hand out a token, with no open incident?
 *
 * The answer comes from each app's TokenAuthority (`status()`), kept per isolate for HEALTH_CACHE_MS and
 * shared while it is being fetched, so a monitor polling every second, or a thousand of them, costs each
 * object at most one call per isolate per HEALTH_CACHE_MS: the cost is bounded by the number of apps, not
 * by the request rate.
 */
import { authority } from "../authority/stub";
import type { AppEnv } from "../env";
import type { AppStatus } from "../authority/token-authority";

/**
 * Monitors poll every 30–60 s and alert after a failure or two: an answer up to 10 s old changes nothing
 * for them, and caps what polling costs the objects.
 */
export const HEALTH_CACHE_MS = 10_000;

export interface AppHealth {
	readonly appid: string;
	readonly ok: boolean;
	/** Why not, in words an operator can act on (never a token or a secret). */
	readonly reason?: string;
}

/** One entry per configured app at most (appids come from the configuration), so this stays small. */
const cache = new Map<string, { readonly at: number; readonly health: Promise<AppHealth> }>();

export function checkApps(env: Pick<AppEnv, "TOKEN_AUTHORITY">, appids: readonly string[], now: number): Promise<AppHealth[]> {
	return Promise.all(appids.map((appid) => {
		const hit = cache.get(appid);
		if (hit && now >= hit.at && now - hit.at < HEALTH_CACHE_MS) return hit.health;
		// Plain data comes back over RPC, so a later request may await this promise too. A failed call is
		// cached like an answer: an object that cannot answer must not be asked on every poll.
		const health = authority(env, appid).status(appid).then(
			(status) => judge(appid, status),
			(): AppHealth => ({ appid, ok: false, reason: "its Durable Object did not answer" }),
		);
		cache.set(appid, { at: now, health });
		return health;
	}));
}

function judge(appid: string, status: AppStatus | null): AppHealth {
	if (!status) return { appid, ok: false, reason: "not configured in the object's view of WECHAT_APPS" };
	if (status.incident) return { appid, ok: false, reason: `open incident since ${status.incident.since}: ${status.incident.reason}` };
	if (!status.token) {
		const last = status.last_error ? `; last error: ${status.last_error.message}` : "; no token fetched yet (the next cron run or GET /token fetches one)";
		return { appid, ok: false, reason: `no usable token${last}` };
	}
	return { appid, ok: true };
}
