/**
 * The promise to clients, checked against the simulator's WeChat semantics: a token cached for the
 * reported `expires_in` is accepted by WeChat for all of that time.
 */
import { describe, expect, it } from "vitest";
import { appsFor, type Mode, type TestApp } from "./fixtures";
import { getToken, runCron, settle, sim, travel } from "./helpers";

const next = appsFor("modes");
/** Hundreds of round trips to the broker and the simulator; no sleeping, but more than the 5 s default. */
const SLOW_TEST_MS = 30_000;

/**
 * Runs `hours` of simulated time in `stepS` steps. At every step a client asks for a token (as a client
 * whose cache ran out would) and every token handed out so far is checked with WeChat's business API
 * for as long as the broker said it would last.
 */
async function holdTokens(app: TestApp, { hours, stepS, cron }: { hours: number; stepS: number; cron: boolean }) {
	const promised = new Map<string, number>(); // token → promised until (ms)
	let checks = 0;
	for (let t = 0; t < hours * 3600; t += stepS) {
		if (cron) await runCron([app]);
		const res = await getToken(app);
		expect(res.status).toBe(200);
		const until = Date.now() + (res.body.expires_in as number) * 1_000;
		const token = res.body.access_token as string;
		promised.set(token, Math.max(promised.get(token) ?? 0, until));
		for (const [held, heldUntil] of promised) {
			if (heldUntil <= Date.now()) continue;
			checks++;
			expect(await sim.check(held), `token promised for ${(heldUntil - Date.now()) / 1000} s more`).toBe(0);
		}
		await travel(stepS);
	}
	return { tokens: promised.size, checks };
}

describe.each(["stable", "classic"] as const)("%s mode", (mode: Mode) => {
	it("never hands out a token WeChat rejects before its expires_in, with the cron refreshing (5 h)", async () => {
		const app = next(mode);
		const { tokens, checks } = await holdTokens(app, { hours: 5, stepS: 300, cron: true });
		expect(tokens).toBeGreaterThanOrEqual(3);
		expect(checks).toBeGreaterThanOrEqual(60); // at least one held token checked per step
		// One upstream call per token: nothing wasted.
		expect(await sim.tokenCalls(app)).toBe(tokens);
	}, SLOW_TEST_MS);

	it("never hands out a token WeChat rejects before its expires_in, with reads alone refreshing (5 h)", async () => {
		const app = next(mode);
		const { tokens } = await holdTokens(app, { hours: 5, stepS: 300, cron: false });
		expect(await sim.tokenCalls(app)).toBe(tokens);
	}, SLOW_TEST_MS);

	it("scales its margins to a 120 s lifetime and keeps the promise", async () => {
		const app = next(mode);
		await sim.configure(app, { lifetime_s: 120 });
		const { tokens } = await holdTokens(app, { hours: 1 / 6, stepS: 6, cron: true });
		expect(tokens).toBeGreaterThanOrEqual(5);
	}, SLOW_TEST_MS);
});

it("classic: reports the lifetime up to the planned refresh plus WeChat's 300 s overlap", async () => {
	const app = next("classic");
	const res = await getToken(app);
	// 7200 s token, refreshed 900 s ahead: the old token is sure until the refresh + 300 s.
	expect(res.body.expires_in).toBe(7200 - 900 + 300);
});

it("classic: the replaced token keeps working 300 s after a refresh, then WeChat revokes it", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	await travel(7200 - 900);
	expect((await getToken(app)).body.access_token).toBe(first); // due: answered at once, replaced behind
	await settle(app);
	const second = (await getToken(app)).body.access_token as string;
	expect(second).not.toBe(first);
	await travel(290);
	expect(await sim.check(first)).toBe(0);
	await travel(20);
	expect(await sim.check(first)).toBe(40001);
	expect(await sim.check(second)).toBe(0);
});

it("stable: reports the remaining lifetime of a stable token WeChat already had", async () => {
	const app = next("stable");
	await sim.rotate(app); // another holder of the secret created the current stable token…
	await travel(1000); // …1000 s ago
	const res = await getToken(app);
	// WeChat floors the remaining seconds, and its clock ran on by a few ms since the token was made.
	expect(res.body.expires_in).toBeGreaterThanOrEqual(7200 - 1000 - 1);
	expect(res.body.expires_in).toBeLessThanOrEqual(7200 - 1000);
	expect(await sim.tokenCalls(app)).toBe(1);
});

it("stable: refreshes inside WeChat's 300 s rotation window, where WeChat hands out a new token", async () => {
	const app = next("stable");
	const first = (await getToken(app)).body.access_token as string;
	await travel(7200 - 300 - 1);
	await runCron([app]);
	expect(await sim.tokenCalls(app)).toBe(1); // not due yet: WeChat would return the same token
	await travel(31);
	await runCron([app]);
	expect(await sim.tokenCalls(app)).toBe(2);
	const second = (await getToken(app)).body.access_token as string;
	expect(second).not.toBe(first);
	expect(await sim.check(first)).toBe(0); // a normal rotation leaves the old token valid to its expiry
});
