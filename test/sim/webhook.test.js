// @ts-check
import { describe, expect, it } from "vitest";
import { FROZEN_NOW_MS, advance, classicToken, control, statsOf, useSimulator, ZERO_STATS } from "./helpers.js";

const APP = { appid: "wxwebhook0000001", secret: "webhook-secret" };
const KEY = "test-robot-key";

/**
 * Posts a raw body to the WeCom group-robot webhook.
 * @param {string} url
 * @param {string | null} key  null leaves the key out of the URL
 * @param {string} body
 */
async function sendRaw(url, key, body) {
  const query = key === null ? "" : `?key=${encodeURIComponent(key)}`;
  const response = await fetch(`${url}/cgi-bin/webhook/send${query}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  return { status: response.status, text: await response.text() };
}

/**
 * @param {string} url
 * @param {string | null} key
 * @param {unknown} message
 * @returns {Promise<{ status: number, body: any }>}
 */
async function send(url, key, message) {
  const { status, text } = await sendRaw(url, key, JSON.stringify(message));
  return { status, body: JSON.parse(text) };
}

/**
 * @param {string} content
 */
function text(content) {
  return { msgtype: "text", text: { content } };
}

/**
 * @param {string} url
 * @param {string} body
 */
async function postGeneric(url, body) {
  const response = await fetch(`${url}/__sim/webhook/generic`, { method: "POST", headers: { "content-type": "application/json" }, body });
  return { status: response.status, text: await response.text() };
}

/**
 * @param {string} url
 * @param {string} [key]
 * @returns {Promise<any[]>}
 */
async function messages(url, key) {
  const { status, body } = await control(url, "GET", key === undefined ? "webhook" : `webhook?key=${encodeURIComponent(key)}`);
  expect(status).toBe(200);
  return body.messages;
}

describe("POST /cgi-bin/webhook/send (WeCom group robot)", () => {
  const h = useSimulator([APP]);

  it("accepts a text message and records it with its key and the simulated time", async () => {
    await advance(h.url, 90);
    const { status, body } = await send(h.url, KEY, text("wxwebhook0000001 is unhealthy: 40164"));
    expect(status).toBe(200);
    expect(body).toEqual({ errcode: 0, errmsg: "ok" });
    expect(await messages(h.url)).toEqual([
      { key: KEY, msgtype: "text", content: "wxwebhook0000001 is unhealthy: 40164", at_ms: FROZEN_NOW_MS + 90_000 },
    ]);
  });

  it("accepts a markdown message", async () => {
    const { body } = await send(h.url, KEY, { msgtype: "markdown", markdown: { content: "**recovered**" } });
    expect(body).toEqual({ errcode: 0, errmsg: "ok" });
    expect(await messages(h.url)).toEqual([{ key: KEY, msgtype: "markdown", content: "**recovered**", at_ms: FROZEN_NOW_MS }]);
  });

  it("keeps messages in the order they arrived", async () => {
    for (const content of ["first", "second", "third"]) await send(h.url, KEY, text(content));
    expect((await messages(h.url)).map((m) => m.content)).toEqual(["first", "second", "third"]);
  });

  it.each([
    ["the key is missing", null],
    ["the key is empty", ""],
  ])("answers 93000 with HTTP 200 and records nothing when %s", async (_, key) => {
    const { status, body } = await send(h.url, key, text("lost"));
    expect(status).toBe(200);
    expect(body).toEqual({ errcode: 93000, errmsg: "invalid webhook url" });
    expect(await messages(h.url)).toEqual([]);
  });

  it.each([
    ["the body is not JSON", "msgtype=text"],
    ["the body is a JSON array", JSON.stringify([text("x")])],
    ["msgtype is missing", JSON.stringify({ text: { content: "x" } })],
    ["msgtype is one alerts never use", JSON.stringify({ msgtype: "image", image: { base64: "", md5: "" } })],
    ["the content is missing", JSON.stringify({ msgtype: "text", text: {} })],
    ["the content is empty", JSON.stringify(text(""))],
    ["the content is not a string", JSON.stringify({ msgtype: "text", text: { content: 42 } })],
    ["the content is under another msgtype", JSON.stringify({ msgtype: "markdown", text: { content: "x" } })],
    ["the Feishu shape is sent to WeCom", JSON.stringify({ msg_type: "text", content: { text: "x" } })],
  ])("answers 40008 with HTTP 200 and records nothing when %s", async (_, body) => {
    const { status, text: answer } = await sendRaw(h.url, KEY, body);
    expect(status).toBe(200);
    expect(JSON.parse(answer)).toEqual({ errcode: 40008, errmsg: "invalid message type" });
    expect(await messages(h.url)).toEqual([]);
  });

  it("answers 43002 to a GET", async () => {
    const body = JSON.parse(await (await fetch(`${h.url}/cgi-bin/webhook/send?key=${KEY}`)).text());
    expect(body.errcode).toBe(43002);
    expect(await messages(h.url)).toEqual([]);
  });

  it("keeps only the newest 1000 messages", async () => {
    for (let i = 0; i < 1003; i++) await send(h.url, KEY, text(`alert ${i}`));
    const kept = await messages(h.url);
    expect(kept).toHaveLength(1000);
    expect(kept[0].content).toBe("alert 3");
    expect(kept.at(-1).content).toBe("alert 1002");
    // 1003 real round trips, one after another: well over the 5 s default when other projects load the machine.
  }, 30_000);

  it("is neither hit by token faults nor counted in the token stats", async () => {
    await control(h.url, "POST", "faults", { kind: "reset" });
    await control(h.url, "POST", "faults", { appid: APP.appid, kind: "errcode", errcode: -1, times: 1 });
    expect((await send(h.url, KEY, text("through"))).body.errcode).toBe(0);
    const { body } = await control(h.url, "GET", "faults");
    expect(body.faults.map((/** @type {{times_left: number | null}} */ f) => f.times_left)).toEqual([null, 1]);
    expect(await statsOf(h.url, APP.appid)).toEqual({ ...ZERO_STATS, token: 0, stable_token: 0, stable_token_force: 0, getcallbackip: 0 });
  });
});

describe("POST /__sim/webhook/generic (any JSON receiver)", () => {
  const h = useSimulator();

  it("records any JSON body verbatim without a key and answers {ok: true}", async () => {
    const slack = '{"text":"wx1 is unhealthy","event":"app_unhealthy"}';
    expect(await postGeneric(h.url, slack)).toEqual({ status: 200, text: '{"ok":true}' });
    expect((await postGeneric(h.url, "[1, 2]")).status).toBe(200);
    expect(await messages(h.url)).toEqual([
      { key: null, msgtype: "json", content: slack, at_ms: FROZEN_NOW_MS },
      { key: null, msgtype: "json", content: "[1, 2]", at_ms: FROZEN_NOW_MS },
    ]);
  });

  it("answers 400 to a body that is not JSON and records nothing", async () => {
    const { status, text: answer } = await postGeneric(h.url, "payload=%7B%7D");
    expect(status).toBe(400);
    expect(JSON.parse(answer).ok).toBe(false);
    expect(await messages(h.url)).toEqual([]);
  });

  it("answers 405 to a GET", async () => {
    const response = await fetch(`${h.url}/__sim/webhook/generic`);
    expect(response.status).toBe(405);
    await response.text();
  });
});

describe("control API: webhook", () => {
  const h = useSimulator([APP]);

  it("filters messages by key", async () => {
    await send(h.url, KEY, text("mine"));
    await send(h.url, "another-robot", text("theirs"));
    await postGeneric(h.url, "{}");
    expect((await messages(h.url, KEY)).map((m) => m.content)).toEqual(["mine"]);
    expect(await messages(h.url)).toHaveLength(3);
    expect(await messages(h.url, "nobody")).toEqual([]);
  });

  it("clears the messages and reports how many there were", async () => {
    await send(h.url, KEY, text("one"));
    await postGeneric(h.url, "{}");
    expect((await control(h.url, "DELETE", "webhook")).body).toEqual({ ok: true, cleared: 2 });
    expect(await messages(h.url)).toEqual([]);
    expect((await control(h.url, "DELETE", "webhook")).body).toEqual({ ok: true, cleared: 0 });
  });

  it("fails the given number of webhook calls with an HTML page and records none of them", async () => {
    expect((await control(h.url, "POST", "webhook/fail", { times: 2, status: 502 })).body).toEqual({ ok: true });
    const first = await sendRaw(h.url, KEY, JSON.stringify(text("dropped")));
    expect(first.status).toBe(502);
    expect(first.text).toMatch(/^<html>/);
    expect(() => JSON.parse(first.text)).toThrow();
    expect((await postGeneric(h.url, "{}")).status).toBe(502);
    expect((await send(h.url, KEY, text("delivered"))).body.errcode).toBe(0);
    expect((await messages(h.url)).map((m) => m.content)).toEqual(["delivered"]);
  });

  it("fails with HTTP 500 until cleared when times and status are omitted", async () => {
    await control(h.url, "POST", "webhook/fail", {});
    for (let i = 0; i < 3; i++) expect((await sendRaw(h.url, KEY, JSON.stringify(text("x")))).status).toBe(500);
    expect((await control(h.url, "DELETE", "webhook")).body).toEqual({ ok: true, cleared: 0 });
    expect((await send(h.url, KEY, text("back"))).body.errcode).toBe(0);
  });

  it("fails calls before checking them, so a call without a key gets the error page too", async () => {
    await control(h.url, "POST", "webhook/fail", { times: 1, status: 503 });
    expect((await sendRaw(h.url, null, "not json")).status).toBe(503);
  });

  it("leaves the token endpoints alone while webhooks fail", async () => {
    await control(h.url, "POST", "webhook/fail", {});
    expect((await classicToken(h.url, { appid: APP.appid, secret: APP.secret })).access_token).toBeTypeOf("string");
  });

  it("forgets messages and the failure mode on reset", async () => {
    await send(h.url, KEY, text("old"));
    await control(h.url, "POST", "webhook/fail", {});
    await control(h.url, "POST", "reset");
    expect(await messages(h.url)).toEqual([]);
    expect((await send(h.url, KEY, text("new"))).body.errcode).toBe(0);
  });

  it.each([
    ["the body is not JSON", "nope"],
    ["status is not an HTTP status", JSON.stringify({ status: 99 })],
    ["times is zero", JSON.stringify({ times: 0 })],
    ["times is not an integer", JSON.stringify({ times: 1.5 })],
    ["a field is misspelt", JSON.stringify({ time: 1 })],
  ])("answers 400 to a failure mode when %s", async (_, body) => {
    const response = await fetch(`${h.url}/__sim/webhook/fail`, { method: "POST", body });
    expect(response.status).toBe(400);
    expect(JSON.parse(await response.text()).error).toBeTypeOf("string");
    expect((await send(h.url, KEY, text("still fine"))).body.errcode).toBe(0);
  });

  it("answers 405 for a wrong method", async () => {
    expect((await control(h.url, "POST", "webhook", {})).status).toBe(405);
    expect((await control(h.url, "GET", "webhook/fail")).status).toBe(405);
  });
});
