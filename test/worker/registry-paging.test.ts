/**
 * Paging the registry's apps (issue 16): 1,200 apps added through the admin API, then every page walked.
 * A file of its own: it is the slow one, and the mutation pass runs the registry's other tests often.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { KEYS } from "./fixtures";
import { call, sim } from "./helpers";

function adminCall(path: string, options: Parameters<typeof call>[1] = {}) {
	return call(path, { key: KEYS.admin, ...options });
}

it("pages through 1,200 apps added through the API with none missing and none twice", { timeout: 600_000 }, async () => {
	const apps = Array.from({ length: 1_200 }, (_, n) => ({ appid: `wxpage${String(n).padStart(5, "0")}`, secret: `page-secret-${n}-0123456789`, mode: "stable" as const }));
	const CONCURRENCY = 40;
	for (let i = 0; i < apps.length; i += CONCURRENCY) await Promise.all(apps.slice(i, i + CONCURRENCY).map((app) => sim.configure(app, {})));
	for (let i = 0; i < apps.length; i += CONCURRENCY) {
		await Promise.all(apps.slice(i, i + CONCURRENCY).map(async (app) => {
			const put = await adminCall(`/admin/apps/${app.appid}`, { method: "PUT", body: { secret: app.secret, mode: app.mode } });
			expect(put.status).toBe(201);
		}));
	}
	const seen: string[] = [];
	let cursor: string | null = null;
	let pages = 0;
	do {
		const page: Awaited<ReturnType<typeof call>> = await adminCall(`/admin/apps?limit=500${cursor ? `&cursor=${cursor}` : ""}`);
		expect(page.status).toBe(200);
		seen.push(...(page.body.apps as { appid: string }[]).map((a) => a.appid));
		cursor = page.body.next_cursor as string | null;
		pages++;
	} while (cursor);
	const expected = [...JSON.parse(env.WECHAT_APPS!).map((a: { appid?: string; id?: string; corpid?: string; agentid?: string }) => a.appid ?? a.id ?? `${a.corpid}-${a.agentid}`), ...apps.map((a) => a.appid)];
	expect(new Set(seen).size).toBe(seen.length);
	for (const appid of expected) expect(seen).toContain(appid);
	expect(seen).toEqual([...seen].sort());
	expect(pages).toBeGreaterThanOrEqual(Math.ceil(expected.length / 500));
});
