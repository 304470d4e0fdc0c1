// @ts-check
/**
 * Baseline (c), PRIOR-ART design 4's timer with design 2's expiry check: from the first time an instance
 * serves an app (its token service starting lazily, as a Spring singleton does), its own timer
 * force-refreshes that app's token every hour (Java `Timer.schedule(task, hour, hour)`) and writes it to
 * Redis, where every reader finds it with its expiry (fetch time + expires_in). A read that finds none, or
 * an expired one, fetches under an in-process lock. Each instance runs its own timer, so four instances
 * mint four tokens an hour, and each new token revokes the one readers hold 5 minutes later.
 */
import { KeyedMutex } from "./locks.mjs";
import { appOf, tokenKey, wholeSeconds } from "./strategy.mjs";
import { fetchClassicToken } from "./wechat.mjs";

/**
 * @param {import("./strategy.mjs").StrategyContext} ctx
 * @returns {import("./strategy.mjs").Strategy}
 */
export function createHourlyTimer(ctx) {
	const lock = new KeyedMutex();
	/** @type {Map<string, NodeJS.Timeout>} */
	const timers = new Map();

	/** @param {string} appid */
	async function cached(appid) {
		const raw = await ctx.redis.get(tokenKey(ctx, appid));
		if (raw === null) return null;
		const { token, expiresAt } = JSON.parse(raw);
		const leftMs = expiresAt - Date.now();
		return leftMs > 0 ? { accessToken: /** @type {string} */ (token), expiresInS: wholeSeconds(leftMs) } : null;
	}

	/** @param {{ appid: string, secret: string }} app */
	async function refresh(app) {
		const fetched = await fetchClassicToken(ctx.apiBase, app);
		const lifetimeMs = (fetched.expiresInS / ctx.timing.speedup) * 1000;
		const expiresAt = Date.now() + lifetimeMs;
		await ctx.redis.set(tokenKey(ctx, app.appid), JSON.stringify({ token: fetched.accessToken, expiresAt }), "PX", Math.max(1, Math.floor(lifetimeMs)));
		return { accessToken: fetched.accessToken, expiresInS: wholeSeconds(lifetimeMs) };
	}

	return {
		async getToken(appid) {
			const app = appOf(ctx, appid);
			if (!timers.has(appid)) {
				// A failed run is skipped silently, as the original's swallowed TimerTask exception was.
				const timer = setInterval(() => void refresh(app).catch(() => {}), ctx.timing.refreshEveryS * 1000);
				timer.unref();
				timers.set(appid, timer);
			}
			const hit = await cached(appid);
			if (hit) return hit;
			return lock.run(appid, async () => (await cached(appid)) ?? refresh(app));
		},
		close() {
			for (const timer of timers.values()) clearInterval(timer);
		},
	};
}
