// @ts-check
/**
 * What every baseline design is, seen from its HTTP front: given an appid, a token and how many more
 * (real) seconds it says the token is good for. Shared types and the time scale they run at.
 */

/**
 * @typedef {object} Timing  the designs' own constants, in real seconds (divided by the world's speedup)
 * @property {number} cacheTtlS        design 1's fixed 120-minute Redis TTL
 * @property {number} refreshEveryS    design 4's hourly timer
 * @property {number} speedup          WeChat seconds per real second: converts WeChat's expires_in
 */

/**
 * @typedef {object} StrategyContext
 * @property {import("ioredis").Redis} redis
 * @property {string} apiBase
 * @property {ReadonlyMap<string, { appid: string, secret: string }>} apps
 * @property {Timing} timing
 * @property {string} keyPrefix   one per fleet, so fleets sharing the Redis never share a key
 */

/** @typedef {{ accessToken: string, expiresInS: number }} Served */

/**
 * @typedef {object} Strategy
 * @property {(appid: string) => Promise<Served>} getToken
 * @property {() => void} close   stops timers
 */

/** @param {number} ms */
export function wholeSeconds(ms) {
	return Math.max(0, Math.floor(ms / 1000));
}

/**
 * @param {StrategyContext} ctx
 * @param {string} appid
 */
export function tokenKey(ctx, appid) {
	return `${ctx.keyPrefix}:access_token:${appid}`;
}

/**
 * @param {StrategyContext} ctx
 * @param {string} appid
 */
export function appOf(ctx, appid) {
	const app = ctx.apps.get(appid);
	if (!app) throw new Error(`unknown app ${appid}`);
	return app;
}
