/**
 * An app's gateway use per WeChat day, as its TokenAuthority stores it (storage key "gateway", keys.ts).
 * Pure, so the counting rule can be read apart from the object. The isolates add their counts in batches
 * (usage-counter.ts), so a request on the hot path never waits for the object.
 */
import { wechatDay } from "../core/usage";

export interface GatewayCounts {
	/** Calls forwarded to WeChat (a healed call counts once). */
	readonly calls: number;
	/** Calls WeChat refused for a bad token that the broker refreshed and retried: the SDK saw the success. */
	readonly heals: number;
}

export interface StoredGatewayUsage extends GatewayCounts {
	/** Days since the epoch in China time, like the token quotas. */
	readonly day: number;
}

export const NO_GATEWAY_USE: GatewayCounts = { calls: 0, heals: 0 };

/** Today's counts after adding `add`; yesterday's are dropped once the WeChat day turns. */
export function addGatewayUse(stored: StoredGatewayUsage | undefined, add: GatewayCounts, now: number): StoredGatewayUsage {
	const day = wechatDay(now);
	const base = stored?.day === day ? stored : { day, ...NO_GATEWAY_USE };
	return { day, calls: base.calls + add.calls, heals: base.heals + add.heals };
}
