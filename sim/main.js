#!/usr/bin/env node
// @ts-check
/**
 * `npm run sim`: a WeChat simulator on 127.0.0.1 for local development.
 *   --port N | WXSIM_PORT   listening port (default 9860; 0 picks a free one)
 *   WXSIM_APPS              JSON array of {appid, secret, lifetime_s?, ...}; a demo app otherwise
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

/** @returns {unknown[]} */
function readApps() {
  const raw = process.env.WXSIM_APPS;
  if (raw === undefined || raw.trim() === "") return [DEMO_APP];
  let apps;
  try {
    apps = JSON.parse(raw);
  } catch {
    fail("WXSIM_APPS must be a JSON array of {appid, secret, lifetime_s?}");
  }
  if (!Array.isArray(apps)) fail("WXSIM_APPS must be a JSON array of {appid, secret, lifetime_s?}");
  return apps;
}

const port = readPort();
const apps = readApps();
/** @type {import("./server.js").Simulator} */
let simulator;
try {
  simulator = await startSimulator({
    port,
    apps,
    onMint: (record) =>
      console.log(`wechat-sim: minted ${record.kind} token ${record.token.slice(0, LOGGED_TOKEN_CHARS)}… for ${record.appid}`),
  });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
const appids = apps.map((app) => /** @type {{ appid?: unknown }} */ (app).appid).join(", ");
console.log(`wechat-sim: listening on ${simulator.url} (apps: ${appids})`);

/** @param {NodeJS.Signals} signal */
async function shutdown(signal) {
  await simulator.close();
  process.exitCode = 0;
  console.error(`wechat-sim: stopped (${signal})`);
}
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
