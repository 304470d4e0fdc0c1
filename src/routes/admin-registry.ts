/**
 * The registry itself (DESIGN.md, "Apps and keys at runtime: the registry"):
 *   GET  /admin/registry         counts, and how many sealed secrets still use a key other than REGISTRY_KEY
 *   POST /admin/registry/reseal  seals those again under REGISTRY_KEY, a batch per call; repeat until done
 * Rotation: put the new key in REGISTRY_KEY and the old one in REGISTRY_KEY_PREVIOUS, deploy, call reseal
 * (passing each answer's next_cursor) until next_cursor is null and `"done": true`, then remove
 * REGISTRY_KEY_PREVIOUS. Apps listed under `failed` need their secret PUT again.
 */
import type { Hono } from "hono";
import type { BrokerEnv } from "../access/reads";
import { authority } from "../authority/stub";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import { registry } from "../registry/registry";
import { sealingKeys, type SealingKeys } from "../registry/seal";
import { APPID_PATTERN } from "../config/config";
import { decodeCursor, encodeCursor, requireFullAdmin } from "./admin-input";

/**
 * Apps resealed per call: each is one call to its object, plus two to the Registry; 20 keeps a call well
 * inside the Free plan's 50 subrequests per invocation.
 */
export const RESEAL_BATCH = 20;

export function mountAdminRegistry(app: Hono<BrokerEnv>): void {
	app.get("/admin/registry", async (c) => {
		requireFullAdmin(c.get("principal"));
		const config = c.get("config");
		let keys: SealingKeys | null = null;
		let keyProblem: string | null = null;
		try {
			keys = config.registry ? await sealingKeys(c.env) : null;
		} catch (error) {
			if (!(error instanceof BrokerError)) throw error;
			keyProblem = error.message;
		}
		const summary = config.registry ? await registry(c.env).summary(keys?.current.kid ?? null) : null;
		return c.json({
			registry_key: {
				configured: config.registry,
				usable: keys !== null,
				...(keys && { key_id: keys.current.kid }),
				previous_key_id: keys?.previous?.kid ?? null,
				...(keys?.previousProblem && { previous_problem: keys.previousProblem }),
				...(keyProblem !== null && { problem: keyProblem }),
			},
			apps: { secret: config.apps.size, registry: summary?.apps ?? 0 },
			keys: { secret: config.keys.length, registry: summary?.keys ?? 0 },
			sealed: { with_current_key: summary?.sealed_with_current_key ?? 0, with_other_keys: summary?.sealed_with_other_keys ?? 0 },
			kv_writes_pending: summary?.kv_writes_pending ?? 0,
		});
	});

	app.post("/admin/registry/reseal", async (c) => {
		requireFullAdmin(c.get("principal"));
		if (!c.get("config").registry) throw new BrokerError("bad_request", "REGISTRY_KEY is not set: there is no registry to reseal.");
		// A missing or malformed key is a config_error naming what to set.
		const keys = await sealingKeys(c.env);
		const store = registry(c.env);
		// Past apps that could not be resealed (their message is in `failed`), so they cannot hold up the rest.
		const after = decodeCursor(c.req.query("cursor"), APPID_PATTERN);
		const batch = await store.toReseal(keys.current.kid, after, RESEAL_BATCH);
		const results = await Promise.all(batch.map(async (appid) => ({ appid, result: await authority(c.env, appid).reseal() })));
		const resealed = results.flatMap(({ appid, result }) => (result && "kid" in result ? [{ appid, kid: result.kid }] : []));
		const failed = results.filter(({ result }) => !result || !("kid" in result) || result.kid !== keys.current.kid);
		if (resealed.length > 0) await store.setSealedKids(resealed);
		const { sealed_with_other_keys: remaining } = await store.summary(keys.current.kid);
		log("info", "registry_resealed", { count: resealed.length, failed: failed.length, remaining });
		return c.json({
			resealed: resealed.filter((r) => r.kid === keys.current.kid).length,
			failed: failed.map(({ appid, result }) => ({ appid, message: result && "failure" in result ? result.failure.message : "the app's object holds no sealed secret; PUT the app again" })),
			remaining,
			next_cursor: batch.length === RESEAL_BATCH ? encodeCursor(batch[batch.length - 1]!) : null,
			done: remaining === 0,
		});
	});
}
