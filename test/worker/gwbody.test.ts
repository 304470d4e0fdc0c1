/** Bodies through the gateway: JSON replayed after a heal, binary media byte for byte, large bodies sent once. */
import { expect, it } from "vitest";
import { REPLAY_MAX_BYTES } from "../../src/gateway/forward";
import { appsFor, type TestApp } from "./fixtures";
import { expectWeChatError, fingerprint, gw, postJson, uploadMedia } from "./gateway-helpers";
import { getToken, sim, simUrl, travel } from "./helpers";

const next = appsFor("gwbody");

type Counts = Record<string, number>;

async function tokenOf(app: TestApp): Promise<string> {
	return (await getToken(app)).body.access_token as string;
}

async function counts(app: TestApp): Promise<Counts> {
	return (await sim.calls(app)) as unknown as Counts;
}

function refreshes(app: TestApp, before: Counts, after: Counts): number {
	const name = app.mode === "classic" ? "token" : "stable_token";
	return (after[name] ?? 0) - (before[name] ?? 0);
}

async function revokeBehindTheBrokersBack(app: TestApp, token: string): Promise<void> {
	await sim.rotate(app);
	if (app.mode === "classic") await travel(301);
	expect(await sim.check(token)).toBe(40001);
}

async function messagesTo(app: TestApp, touser: string): Promise<unknown[]> {
	const res = await fetch(`${simUrl}/__sim/messages?appid=${app.appid}`);
	const { messages } = (await res.json()) as { messages: { touser: string; message: unknown }[] };
	return messages.filter((m) => m.touser === touser).map((m) => m.message);
}

/** Bytes with every value, in a pattern that a lost, repeated or re-encoded chunk would break. */
function binary(size: number): Uint8Array {
	return Uint8Array.from({ length: size }, (_, i) => (i * 131 + (i >> 8)) % 256);
}

async function download(token: string, mediaId: unknown): Promise<Uint8Array> {
	return (await gw(`/cgi-bin/media/get?access_token=${encodeURIComponent(token)}&media_id=${mediaId}`)).bytes;
}

/** A photo as an SDK uploads it. */
function photo(bytes: Uint8Array): File {
	return new File([bytes], "photo.png", { type: "image/png" });
}

it.each(["stable", "classic"] as const)("%s: replays a JSON POST after a heal, and WeChat records the message once, as sent", async (mode) => {
	const app = next(mode);
	const token = await tokenOf(app);
	await revokeBehindTheBrokersBack(app, token);
	const before = await counts(app);
	const message = { touser: `user-${mode}`, msgtype: "text", text: { content: "你好 — über ✓" } };
	const res = await postJson(`/cgi-bin/message/custom/send?access_token=${encodeURIComponent(token)}`, message);
	expect(res.json).toEqual({ errcode: 0, errmsg: "ok" });
	const after = await counts(app);
	expect(refreshes(app, before, after)).toBe(1);
	expect(after.message_custom_send! - before.message_custom_send!).toBe(2);
	expect(await messagesTo(app, message.touser)).toEqual([message]);
});

it("carries a binary upload and download through byte for byte, with WeChat's content type and filename", async () => {
	const app = next("stable");
	const token = await tokenOf(app);
	const bytes = binary(300 * 1024);
	const uploaded = await uploadMedia(token, photo(bytes));
	expect(uploaded.json).toMatchObject({ type: "image", media_id: expect.any(String) });
	const mediaId = uploaded.json!.media_id as string;

	const via = await gw(`/cgi-bin/media/get?access_token=${encodeURIComponent(token)}&media_id=${mediaId}`);
	const direct = await fetch(`${simUrl}/cgi-bin/media/get?access_token=${encodeURIComponent(token)}&media_id=${mediaId}`);
	expect(via.status).toBe(200);
	expect(await fingerprint(via.bytes)).toBe(await fingerprint(bytes));
	expect(via.headers.get("content-type")).toBe("image/png");
	expect(via.headers.get("content-type")).toBe(direct.headers.get("content-type"));
	expect(via.headers.get("content-disposition")).toBe(direct.headers.get("content-disposition"));
	expect(await fingerprint(new Uint8Array(await direct.arrayBuffer()))).toBe(await fingerprint(bytes));
});

it("streams an upload of unknown length through whole", async () => {
	const app = next("classic");
	const token = await tokenOf(app);
	const bytes = binary(200 * 1024);
	const uploaded = await uploadMedia(token, photo(bytes), { stream: true });
	const mediaId = uploaded.json!.media_id as string;
	expect(await fingerprint(await download(token, mediaId))).toBe(await fingerprint(bytes));
});

it("replays an upload up to the replay size after a heal", async () => {
	const app = next("stable");
	const token = await tokenOf(app);
	await revokeBehindTheBrokersBack(app, token);
	const bytes = binary(REPLAY_MAX_BYTES - 4 * 1024); // the multipart framing stays under the limit
	const before = await counts(app);
	const uploaded = await uploadMedia(token, photo(bytes));
	expect(uploaded.json).toMatchObject({ media_id: expect.any(String) });
	const after = await counts(app);
	expect(refreshes(app, before, after)).toBe(1);
	expect(after.media_upload! - before.media_upload!).toBe(2);
	expect(await fingerprint(await download(token, uploaded.json!.media_id))).toBe(await fingerprint(bytes));
});

it.each([["a declared length", false], ["no declared length", true]] as const)(
	"forwards a body over the replay size once (%s): WeChat's refusal comes back, the token is healed for the SDK's own retry",
	async (_name, stream) => {
		const app = next("classic");
		const token = await tokenOf(app);
		await revokeBehindTheBrokersBack(app, token);
		const bytes = binary(REPLAY_MAX_BYTES + 512 * 1024);
		const before = await counts(app);
		expectWeChatError(await uploadMedia(token, photo(bytes), { stream }), 40001);
		const after = await counts(app);
		expect(after.media_upload! - before.media_upload!).toBe(1);
		expect(refreshes(app, before, after)).toBe(1);
		// What an SDK that retries does next (WxJava): send it again. The broker's token now works.
		const again = await uploadMedia(token, photo(bytes), { stream });
		expect(again.json).toMatchObject({ media_id: expect.any(String) });
		expect(await fingerprint(await download(token, again.json!.media_id))).toBe(await fingerprint(bytes));
		expect(refreshes(app, after, await counts(app))).toBe(0);
	},
);
