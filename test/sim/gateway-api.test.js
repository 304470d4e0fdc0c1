// @ts-check
import { describe, expect, it } from "vitest";
import { FROZEN_NOW_MS, RID, advance, classicToken, control, stableToken, statsOf, useSimulator } from "./helpers.js";

const APP = { appid: "wxgateway0000001", secret: "gateway-secret" };
const OTHER = { appid: "wxgatewayother01", secret: "gateway-other" };
const creds = { appid: APP.appid, secret: APP.secret };
// Bytes that break naive text handling: NUL, 0xFF, CRLF, and a line that looks like a multipart boundary.
const TRICKY = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0x0d, 0x0a, 0x2d, 0x2d, 0x78, 0x0d, 0x0a, 0x00]);

/**
 * @param {string} url
 * @param {string} path  below /cgi-bin/
 * @param {RequestInit} [init]
 */
async function call(url, path, init) {
  const response = await fetch(`${url}/cgi-bin/${path}`, init);
  return { response, body: JSON.parse(await response.text()) };
}

/**
 * @param {string} url
 * @param {string} token
 * @param {unknown} message
 */
async function sendCustom(url, token, message) {
  const init = { method: "POST", headers: { "content-type": "application/json" }, body: typeof message === "string" ? message : JSON.stringify(message) };
  return (await call(url, `message/custom/send?access_token=${encodeURIComponent(token)}`, init)).body;
}

/**
 * Uploads with the platform's FormData, as a fetch-based SDK or gateway would.
 * @param {string} url
 * @param {string} token
 * @param {Uint8Array} bytes
 * @param {{ type?: string, filename?: string, contentType?: string, field?: string }} [options]
 */
async function upload(url, token, bytes, { type = "image", filename = "photo.png", contentType = "image/png", field = "media" } = {}) {
  const form = new FormData();
  form.set(field, new Blob([bytes], { type: contentType }), filename);
  return (await call(url, `media/upload?access_token=${encodeURIComponent(token)}&type=${type}`, { method: "POST", body: form })).body;
}

/**
 * @param {string} url
 * @param {string} token
 * @param {string} mediaId
 */
async function download(url, token, mediaId) {
  return fetch(`${url}/cgi-bin/media/get?access_token=${encodeURIComponent(token)}&media_id=${encodeURIComponent(mediaId)}`);
}

describe("POST /cgi-bin/message/custom/send", () => {
  const h = useSimulator([APP, OTHER]);

  it("accepts a text message and records it for the control API", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    const message = { touser: "oUser-0001", msgtype: "text", text: { content: "你好, gateway" } };
    expect(await sendCustom(h.url, token, message)).toEqual({ errcode: 0, errmsg: "ok" });
    const { body } = await control(h.url, "GET", `messages?appid=${APP.appid}`);
    expect(body.messages).toEqual([{ appid: APP.appid, touser: "oUser-0001", msgtype: "text", message, at_ms: FROZEN_NOW_MS }]);
    expect((await control(h.url, "GET", `messages?appid=${OTHER.appid}`)).body.messages).toEqual([]);
    expect((await control(h.url, "DELETE", "messages")).body).toEqual({ ok: true, cleared: 1 });
    expect((await control(h.url, "GET", "messages")).body.messages).toEqual([]);
  });

  it.each([
    ["47001 for a body that is not JSON", "touser=oUser&msgtype=text", 47001],
    ["40003 without touser", { msgtype: "text", text: { content: "x" } }, 40003],
    ["40008 without msgtype", { touser: "oUser", text: { content: "x" } }, 40008],
    ["47001 for a text message without content", { touser: "oUser", msgtype: "text", text: {} }, 47001],
  ])("answers %s and records nothing", async (_, message, errcode) => {
    const token = (await stableToken(h.url, creds)).access_token;
    const body = await sendCustom(h.url, token, message);
    expect(body.errcode).toBe(errcode);
    expect(body.errmsg).toMatch(RID);
    expect((await control(h.url, "GET", "messages")).body.messages).toEqual([]);
  });

  it("judges the token first: 41001, 40014, 40001, 42001", async () => {
    const message = { touser: "oUser", msgtype: "text", text: { content: "x" } };
    expect((await call(h.url, "message/custom/send", { method: "POST", body: JSON.stringify(message) })).body.errcode).toBe(41001);
    expect((await sendCustom(h.url, "86_forged", "not json")).errcode).toBe(40014);
    const old = (await classicToken(h.url, creds)).access_token;
    await classicToken(h.url, creds);
    await advance(h.url, 300);
    expect((await sendCustom(h.url, old, message)).errcode).toBe(40001);
    await advance(h.url, 6900);
    expect((await sendCustom(h.url, old, message)).errcode).toBe(42001);
    expect((await control(h.url, "GET", "messages")).body.messages).toEqual([]);
  });

  it("answers 43002 to GET", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    expect((await call(h.url, `message/custom/send?access_token=${token}`)).body.errcode).toBe(43002);
  });

  it("counts calls per app, and calls with a forged token per path without reaching any app", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await sendCustom(h.url, token, { touser: "oUser", msgtype: "text", text: { content: "x" } });
    await sendCustom(h.url, token, "{");
    await sendCustom(h.url, "86_forged", { touser: "oUser", msgtype: "text", text: { content: "x" } });
    expect((await statsOf(h.url, APP.appid)).message_custom_send).toBe(2);
    expect((await statsOf(h.url, OTHER.appid)).message_custom_send).toBe(0);
    expect((await control(h.url, "GET", "stats")).body.unknown_token).toEqual({ "/cgi-bin/message/custom/send": 1 });
  });
});

describe("temporary media: POST /cgi-bin/media/upload and GET /cgi-bin/media/get", () => {
  const h = useSimulator([APP, OTHER]);

  it("stores the exact bytes and content type and serves them back with a WeChat-style filename", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    const uploaded = await upload(h.url, token, TRICKY);
    expect(uploaded).toEqual({ type: "image", media_id: expect.stringMatching(/^[A-Za-z0-9_-]{64}$/), created_at: FROZEN_NOW_MS / 1000 });
    const response = await download(h.url, token, uploaded.media_id);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(response.headers.get("content-disposition")).toBe(`attachment; filename="${uploaded.media_id}.png"`);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(TRICKY);
  });

  it("reads the multipart body formstream sends for co-wechat-api and wechat-api", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    // formstream's framing: 26 dashes and 24 digits of boundary, the part's type looked up from its filename.
    const boundary = "--------------------------012345678901234567890123";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="media"; filename="voice.amr"\r\nContent-Type: audio/amr\r\n\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const body = Buffer.concat([Buffer.from(head), TRICKY, Buffer.from(tail)]);
    const { body: uploaded } = await call(h.url, `media/upload?access_token=${token}&type=voice`, {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": String(body.length), accept: "application/json" },
      body,
    });
    expect(uploaded.type).toBe("voice");
    const response = await download(h.url, token, uploaded.media_id);
    expect(response.headers.get("content-type")).toBe("audio/amr");
    expect(response.headers.get("content-disposition")).toBe(`attachment; filename="${uploaded.media_id}.amr"`);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(TRICKY);
  });

  it("accepts uploads far above the 64 KiB body limit of the other endpoints", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    const big = new Uint8Array(1024 * 1024).map((_, i) => (i * 7) % 256);
    const uploaded = await upload(h.url, token, big, { type: "video", filename: "clip.mp4", contentType: "video/mp4" });
    const response = await download(h.url, token, uploaded.media_id);
    expect(Buffer.from(await response.arrayBuffer()).equals(Buffer.from(big))).toBe(true);
  });

  it.each([
    ["40004 without a type", { type: "" }, TRICKY, 40004],
    ["40004 for an unknown type", { type: "doc" }, TRICKY, 40004],
    ["41005 when the file field is not named media", { field: "file" }, TRICKY, 41005],
    ["41005 for an empty file", {}, new Uint8Array(0), 41005],
    ["40012 for a thumb over 64 KB", { type: "thumb" }, new Uint8Array(64 * 1024 + 1), 40012],
  ])("answers %s", async (_, options, bytes, errcode) => {
    const token = (await classicToken(h.url, creds)).access_token;
    expect((await upload(h.url, token, bytes, options)).errcode).toBe(errcode);
  });

  it("answers 41005 to a body that is not multipart", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    const { body } = await call(h.url, `media/upload?access_token=${token}&type=image`, { method: "POST", body: TRICKY });
    expect(body.errcode).toBe(41005);
  });

  it("judges the token before the upload", async () => {
    expect((await upload(h.url, "86_forged", new Uint8Array(0), { type: "doc" })).errcode).toBe(40014);
    expect((await control(h.url, "GET", "stats")).body.unknown_token).toEqual({ "/cgi-bin/media/upload": 1 });
  });

  it("answers 40007 JSON for an unknown id, another app's media, and media older than 3 days", async () => {
    const token = (await stableToken(h.url, creds)).access_token;
    const { media_id } = await upload(h.url, token, TRICKY);
    const unknown = await download(h.url, token, "no-such-media");
    expect(unknown.headers.get("content-type")).toBe("application/json; encoding=utf-8");
    expect(JSON.parse(await unknown.text()).errcode).toBe(40007);
    const other = (await stableToken(h.url, { appid: OTHER.appid, secret: OTHER.secret })).access_token;
    expect(JSON.parse(await (await download(h.url, other, media_id)).text()).errcode).toBe(40007);
    await advance(h.url, 3 * 86400 - 1);
    const fresh = (await stableToken(h.url, creds)).access_token;
    expect((await download(h.url, fresh, media_id)).status).toBe(200);
    await advance(h.url, 1);
    expect(JSON.parse(await (await download(h.url, fresh, media_id)).text()).errcode).toBe(40007);
  });

  it("counts uploads and downloads per app and is hit by faults on media_get", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    const { media_id } = await upload(h.url, token, TRICKY);
    await control(h.url, "POST", "faults", { endpoint: "media_get", kind: "http", status: 502, times: 1 });
    const failed = await download(h.url, token, media_id);
    expect(failed.status).toBe(502);
    await failed.text();
    expect((await download(h.url, token, media_id)).status).toBe(200);
    expect(await statsOf(h.url, APP.appid)).toMatchObject({ media_upload: 1, media_get: 2 });
  });

  it("answers 413 to an upload body over 10 MiB plus framing", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    const response = await fetch(`${h.url}/cgi-bin/media/upload?access_token=${token}&type=image`, {
      method: "POST",
      body: new Uint8Array(10 * 1024 * 1024 + 64 * 1024 + 1),
    });
    expect(response.status).toBe(413);
    await response.text();
  });
});
