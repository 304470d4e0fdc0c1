/**
 * Constant-time key comparison, observed from outside: whenever a key is checked (every wrong key, and a
 * valid key the first time this isolate sees it; auth.ts remembers verified ones), the presented key's full
 * SHA-256 digest is compared with every configured key's full digest, whichever key matches and whether one does.
 * A loop that stops at the first match, skips keys whose first bytes differ, or compares a prefix fails here
 * even if it still calls timingSafeEqual somewhere; so does one that calls it on every key but decides by its
 * own early-exit byte loop.
 */
import { afterEach, expect, it, vi } from "vitest";
import { appsFor, KEYS } from "./fixtures";
import { call } from "./helpers";

const next = appsFor("keys");
/** API_KEYS in vitest.config.ts (fixtures.apiKeysJson), in its order; the "hashed" key is stored as its digest. */
const CONFIGURED = [KEYS.admin, KEYS.all, KEYS.scoped, KEYS.hashed, KEYS.scopedAdmin, KEYS.health];
/** SHA-256: every digest compared is this long. */
const DIGEST_BYTES = 32;

afterEach(() => {
	vi.restoreAllMocks();
});

async function sha256Hex(text: string): Promise<string> {
	return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

function hex(data: unknown): string {
	const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
	if (!bytes) throw new Error(`timingSafeEqual got ${typeof data}`);
	return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every timingSafeEqual call one request makes, as [presented, configured] hex digests. */
async function comparisonsFor(presented: string, path: string): Promise<{ status: number; pairs: Array<[string, string]> }> {
	const spy = vi.spyOn(crypto.subtle, "timingSafeEqual");
	const res = await call(path, { key: presented });
	const pairs = spy.mock.calls.map(([a, b]) => [hex(a), hex(b)] as [string, string]);
	spy.mockRestore();
	return { status: res.status, pairs };
}

it.each([
	["the first configured key", KEYS.admin, 200],
	["the last configured key", KEYS.scopedAdmin, 200],
	["a key that is not configured", "not-a-key-0123456789abcdef", 401],
	["a configured key with its last character changed", `${KEYS.all.slice(0, -1)}0`, 401],
])("compares %s with all six configured digests, in full", async (_name, presented, status) => {
	const app = next("stable");
	const path = status === 200 && presented === KEYS.scopedAdmin ? "/status" : `/token?appid=${app.appid}`;
	const { status: got, pairs } = await comparisonsFor(presented, path);
	expect(got).toBe(status);
	const expected = await Promise.all(CONFIGURED.map(sha256Hex));
	const presentedDigest = await sha256Hex(presented);
	expect(pairs).toHaveLength(6);
	expect(pairs.map(([a]) => a)).toEqual(Array(6).fill(presentedDigest));
	expect(pairs.map(([, b]) => b)).toEqual(expected);
	for (const [a, b] of pairs) expect([a.length, b.length]).toEqual([DIGEST_BYTES * 2, DIGEST_BYTES * 2]);
});

it("lets timingSafeEqual decide: a valid key is refused when it answers no, whatever the bytes say", async () => {
	const app = next("classic");
	// A key this file has not used yet: a verified one would be recognised without comparing.
	vi.spyOn(crypto.subtle, "timingSafeEqual").mockReturnValue(false);
	expect((await call(`/token?appid=${app.appid}`, { key: KEYS.hashed })).status).toBe(401);
	vi.restoreAllMocks();
	expect((await call(`/token?appid=${app.appid}`, { key: KEYS.hashed })).status).toBe(200);
});
