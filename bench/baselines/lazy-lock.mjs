// @ts-check
/**
 * Baseline (a), the common lazy cache (PRIOR-ART designs 1 and 2 without the probe): Redis holds the token
 * for a fixed 120 minutes from when it was stored; a miss is fetched under a lock that double-checks Redis
 * first. Reads take no lock. Its faults, kept on purpose: the lock is per process, so the instances that
 * miss together each fetch a token and each revokes the one before it (5 minutes later); the fixed TTL
 * starts when the token is stored, not when WeChat issued it, and ignores expires_in.
 */
import { KeyedMutex } from "./locks.mjs";
import { appOf, tokenKey, wholeSeconds } from "./strategy.mjs";
import { fetchClassicToken } from "./wechat.mjs";

/**
 * @param {import("./strategy.mjs").StrategyContext} ctx
 * @returns {import("./strategy.mjs").Strategy}
 */
export function createLazyLock(ctx) {
	const lock = new KeyedMutex();
	const ttlMs = ctx.timing.cacheTtlS * 1000;

	/** @param {string} appid */
	async function cached(appid) {
		const raw = await ctx.redis.get(tokenKey(ctx, appid));
		if (raw === null) return null;
		const { token, storedAt } = JSON.parse(raw);
		return { accessToken: /** @type {string} */ (token), expiresInS: wholeSeconds(storedAt + ttlMs - Date.now()) };
	}

	return {
		async getToken(appid) {
			const app = appOf(ctx, appid);
			const hit = await cached(appid);
			if (hit) return hit;
			return lock.run(appid, async () => {
				const again = await cached(appid);
				if (again) return again;
				const fetched = await fetchClassicToken(ctx.apiBase, app);
				await ctx.redis.set(tokenKey(ctx, appid), JSON.stringify({ token: fetched.accessToken, storedAt: Date.now() }), "PX", ttlMs);
				return { accessToken: fetched.accessToken, expiresInS: ctx.timing.cacheTtlS };
			});
		},
		close() {},
	};
}
