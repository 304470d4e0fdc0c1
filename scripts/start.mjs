#!/usr/bin/env node
// @ts-check
/**
 * `npm start`: the whole broker on this machine, no Cloudflare account and no network: the WeChat
 * simulator and `wrangler dev` with a demo app and a demo admin key, and the cron trigger fired every
 * minute as Cloudflare would. Prints a curl that returns a token; Ctrl-C stops everything.
 *
 * Ports: BROKER_PORT (default 8787) and WXSIM_PORT (default 9860).
 */
import { startLocalStack } from "./local-stack.mjs";

const DEMO_APP = { appid: "wxdemo0000000001", secret: "demo-secret-not-real", mode: /** @type {const} */ ("stable") };
const DEMO_KEY = "demo-key-change-me-0123456789";
/** Cloudflare runs the `* * * * *` trigger once a minute; wrangler dev only when asked. */
const CRON_INTERVAL_MS = 60_000;

const stack = await startLocalStack({
	brokerPort: Number(process.env.BROKER_PORT ?? 8787),
	simPort: Number(process.env.WXSIM_PORT ?? 9860),
	apps: [DEMO_APP],
	keys: [{ name: "demo", key: DEMO_KEY, apps: ["*"], admin: true }],
	persistTo: ".wrangler/demo-state",
}).catch((error) => {
	console.error(`Could not start the broker: ${error.code ?? error.message}. If a port is taken, set BROKER_PORT or WXSIM_PORT.`);
	process.exit(1);
});
const { url, sim } = stack;

const cron = setInterval(() => {
	fetch(`${url}/__scheduled?cron=*+*+*+*+*`).then((r) => r.body?.cancel(), () => {});
}, CRON_INTERVAL_MS);

async function stop() {
	clearInterval(cron);
	await stack.stop();
	process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());

console.log(`
wx-token-broker is running on ${url}  (WeChat simulator: ${sim.url}, cron every minute)

  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' '${url}/token?appid=${DEMO_APP.appid}'

More:
  curl -s -X POST -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"appid":"${DEMO_APP.appid}","access_token":"<the token WeChat refused>"}' ${url}/token/invalidate
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' ${url}/status
  curl -s "${sim.url}/cgi-bin/getcallbackip?access_token=<token>"   # does WeChat (the simulator) accept it?

Ctrl-C stops both.
`);
