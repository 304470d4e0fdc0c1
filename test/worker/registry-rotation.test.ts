/**
 * Rotating REGISTRY_KEY without downtime (issue 16): the new key in REGISTRY_KEY, the old one in
 * REGISTRY_KEY_PREVIOUS; sealed values keep opening, `POST /admin/registry/reseal` moves them to the new key,
 * `GET /admin/registry` counts what is left. A file of its own: the Registry object is per test file, and
 * here it must hold only the apps this test rotates.
 */
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { openApp, type StoredRegisteredApp } from "../../src/authority/registered-app";
import { authority } from "../../src/authority/stub";
import worker from "../../src/index";
import { sealingKeys } from "../../src/registry/seal";
import { KEYS, REGISTRY_TEST_KEY, REGISTRY_TEST_KEY_B, registryTestApp } from "./fixtures";
import { call, sim } from "./helpers";

const ROTATED = { REGISTRY_KEY: REGISTRY_TEST_KEY_B, REGISTRY_KEY_PREVIOUS: REGISTRY_TEST_KEY };

async function rotated(path: string, method = "GET"): Promise<{ status: number; body: Record<string, any> }> {
	const ctx = createExecutionContext();
	const response = await worker.fetch(new Request(`https://broker.test${path}`, { method, headers: { authorization: `Bearer ${KEYS.admin}` } }), { ...env, ...ROTATED }, ctx);
	await waitOnExecutionContext(ctx);
	return { status: response.status, body: await response.json() };
}

function stored(appid: string): Promise<StoredRegisteredApp> {
	return runInDurableObject(authority(env, appid), async (_instance, state) => (await state.storage.get<StoredRegisteredApp>("registered"))!);
}

it("keeps sealed secrets opening across a rotation, reseals them under the new key, and counts what is left", async () => {
	const apps = [registryTestApp(50), registryTestApp(51, "classic")];
	for (const app of apps) {
		await sim.configure(app, {});
		expect((await call(`/admin/apps/${app.appid}`, { method: "PUT", key: KEYS.admin, body: { secret: app.secret, mode: app.mode } })).status).toBe(201);
	}
	const [oldKid, newKid] = [(await sealingKeys({ REGISTRY_KEY: REGISTRY_TEST_KEY })).current.kid, (await sealingKeys({ REGISTRY_KEY: REGISTRY_TEST_KEY_B })).current.kid];

	// Deployed with the new key and the old one as previous: every object opens what the old key sealed.
	for (const app of apps) {
		const before = await stored(app.appid);
		expect(before.sealed.kid).toBe(oldKid);
		const opened = await openApp(ROTATED, before);
		expect("app" in opened && opened.app.secret).toBe(app.secret);
		// Without the previous key it would not: that is what REGISTRY_KEY_PREVIOUS is for.
		const without = await openApp({ REGISTRY_KEY: REGISTRY_TEST_KEY_B }, before);
		expect("failure" in without && without.failure.message).toMatch(new RegExp(`key id ${oldKid}.*REGISTRY_KEY_PREVIOUS`));
		await runInDurableObject(authority(env, app.appid), (instance) => {
			(instance as unknown as { env: typeof env }).env = { ...env, ...ROTATED };
		});
	}
	const summary = await rotated("/admin/registry");
	expect(summary.body).toMatchObject({
		registry_key: { configured: true, usable: true, key_id: newKid, previous_key_id: oldKid },
		apps: { registry: 2 }, sealed: { with_current_key: 0, with_other_keys: 2 },
	});

	const resealed = await rotated("/admin/registry/reseal", "POST");
	expect(resealed).toMatchObject({ status: 200, body: { resealed: 2, failed: [], remaining: 0, done: true, next_cursor: null } });
	for (const app of apps) {
		const after = await stored(app.appid);
		expect(after.sealed.kid).toBe(newKid);
		const opened = await openApp({ REGISTRY_KEY: REGISTRY_TEST_KEY_B }, after);
		expect("app" in opened && opened.app.secret).toBe(app.secret);
	}
	expect((await rotated("/admin/registry")).body.sealed).toEqual({ with_current_key: 2, with_other_keys: 0 });
	expect((await rotated("/admin/registry/reseal", "POST")).body).toMatchObject({ resealed: 0, remaining: 0, done: true });
	// The apps never stopped serving.
	for (const app of apps) expect((await call(`/token?appid=${app.appid}`)).status).toBe(200);
});
