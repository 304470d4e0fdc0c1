#!/usr/bin/env node
// @ts-check
/**
 * `npm run sim`: a WeChat simulator on 127.0.0.1 for local development.
 *   --port N | WXSIM_PORT   listening port (default 9860; 0 picks a free one)
 *   WXSIM_APPS              JSON array of {appid, secret, lifetime_s?, ...}; a demo app otherwise
 *   WXSIM_WECOM_APPS        JSON array of {corpid, agentid?, secret, ...} (WeCom, served under /qyapi); none otherwise
 *
 * WeChat endpoints: GET /cgi-bin/token, POST /cgi-bin/stable_token, GET /cgi-bin/getcallbackip,
 * GET /cgi-bin/ticket/getticket, POST /cgi-bin/message/custom/send, POST /cgi-bin/media/upload,
 * GET /cgi-bin/media/get, POST /cgi-bin/webhook/send (WeCom robot); WeCom under /qyapi/cgi-bin/: gettoken,
 * get_jsapi_ticket, ticket/get, getcallbackip. The control API (/__sim/…) is listed in sim/control.js.
 */
import { parseArgs } from "node:util";
import { startSimulator } from "./server.js";

const DEFAULT_PORT = 9860;
const DEMO_APP = Object.freeze({ appid: "wxdemo0000000001", secret: "demo-secret-not-real" });
// Enough of a token to match it against a broker's logs, too little to use it.
const LOGGED_TOKEN_CHARS = 8;

/**
 * @param {string} message
 * @returns {never}
 */
function fail(message) {
  console.error(`wechat-sim: ${message}`);
  process.exit(2);
}

/** @returns {number} */
function readPort() {
  let values;
  try {
    ({ values } = parseArgs({ options: { port: { type: "string" } } }));
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const raw = values.port ?? process.env.WXSIM_PORT ?? String(DEFAULT_PORT);
  const port = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(port) || port < 0 || port > 65535) fail(`port must be 0-65535, got ${JSON.stringify(raw)}`);
  return port;
}

/**
 * @param {string} name      environment variable
 * @param {string} shape     what each element looks like, for the error message
 * @param {unknown[]} absent what to use when it is unset
 * @returns {unknown[]}
 */
function readJsonArray(name, shape, absent) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return absent;
  let list;
  try {
    list = JSON.parse(raw);
  } catch {
    fail(`${name} must be a JSON array of ${shape}`);
  }
  if (!Array.isArray(list)) fail(`${name} must be a JSON array of ${shape}`);
  return list;
}

const port = readPort();
const apps = readJsonArray("WXSIM_APPS", "{appid, secret, lifetime_s?}", [DEMO_APP]);
const wecomApps = readJsonArray("WXSIM_WECOM_APPS", "{corpid, agentid?, secret}", []);
/** @type {import("./server.js").Simulator} */
let simulator;
try {
  simulator = await startSimulator({
    port,
    apps,
    wecomApps,
    onMint: (record) =>
      console.log(`wechat-sim: minted ${record.kind} token ${record.token.slice(0, LOGGED_TOKEN_CHARS)}… for ${record.appid}`),
  });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
const appids = apps.map((app) => /** @type {{ appid?: unknown }} */ (app).appid).join(", ");
const corpids = [...new Set(wecomApps.map((app) => /** @type {{ corpid?: unknown }} */ (app).corpid))].join(", ");
console.log(`wechat-sim: listening on ${simulator.url} (apps: ${appids}${corpids ? `; WeCom corps under /qyapi: ${corpids}` : ""})`);

/** @param {NodeJS.Signals} signal */
async function shutdown(signal) {
  await simulator.close();
  process.exitCode = 0;
  console.error(`wechat-sim: stopped (${signal})`);
}
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
