// @ts-check
/**
 * Baseline (b), PRIOR-ART design 1 as written: the whole method is one lock (Java `synchronized`), Redis
 * holds the token for a fixed 120 minutes, and every read first asks WeChat's getcallbackip whether the
 * token still works (up to 5 tries), fetching a new one if not. Every read costs a WeChat call and waits
 * for it inside the lock; a token found dead is replaced, which revokes the one the other instances hold.
 */
import { Mutex } from "./locks.mjs";
import { appOf, tokenKey, wholeSeconds } from "./strategy.mjs";
import { TOKEN_REJECTED, fetchClassicToken, probeToken } from "./wechat.mjs";

/** The design's "up to 5 tries" of the probe when WeChat does not answer clearly. */
const PROBE_TRIES = 5;

/**
 * @param {import("./strategy.mjs").StrategyContext} ctx
 * @returns {import("./strategy.mjs").Strategy}
 */
export function createProbeEveryRead(ctx) {
	const lock = new Mutex();
	const ttlMs = ctx.timing.cacheTtlS * 1000;

	/** @param {string} token */
	async function stillWorks(token) {
		for (let attempt = 1; attempt <= PROBE_TRIES; attempt++) {
			const errcode = await probeToken(ctx.apiBase, token);
			if (errcode === 0) return true;
			if (TOKEN_REJECTED.has(errcode)) return false;
		}
		return false;
	}

	return {
		getToken(appid) {
			const app = appOf(ctx, appid);
			return lock.run(async () => {
				const raw = await ctx.redis.get(tokenKey(ctx, appid));
				if (raw !== null) {
					const { token, storedAt } = JSON.parse(raw);
					if (await stillWorks(token)) return { accessToken: token, expiresInS: wholeSeconds(storedAt + ttlMs - Date.now()) };
				}
				const fetched = await fetchClassicToken(ctx.apiBase, app);
				await ctx.redis.set(tokenKey(ctx, appid), JSON.stringify({ token: fetched.accessToken, storedAt: Date.now() }), "PX", ttlMs);
				return { accessToken: fetched.accessToken, expiresInS: ctx.timing.cacheTtlS };
			});
		},
		close() {},
	};
}
