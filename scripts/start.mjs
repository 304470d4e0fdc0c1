#!/usr/bin/env node
// @ts-check
/**
 * `npm start`: the whole broker on this machine, no Cloudflare account and no network.
 *   1. the WeChat simulator on 127.0.0.1 with a demo app,
 *   2. `wrangler dev` on 127.0.0.1 with the demo app and a demo API key (workerd: real Durable Objects, KV),
 *   3. the cron trigger fired every minute, as Cloudflare would,
 * then prints a curl that returns a token. Ctrl-C stops everything.
 *
 * Ports: BROKER_PORT (default 8787) and WXSIM_PORT (default 9860).
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { startSimulator } from "../sim/server.js";

const BROKER_PORT = Number(process.env.BROKER_PORT ?? 8787);
const SIM_PORT = Number(process.env.WXSIM_PORT ?? 9860);
const DEMO_APP = { appid: "wxdemo0000000001", secret: "demo-secret-not-real", mode: "stable" };
const DEMO_KEY = "demo-key-change-me-0123456789";
/** Cloudflare runs the `* * * * *` trigger once a minute; wrangler dev only when asked. */
const CRON_INTERVAL_MS = 60_000;
const READY_TIMEOUT_MS = 60_000;

const sim = await startSimulator({ port: SIM_PORT, apps: [{ appid: DEMO_APP.appid, secret: DEMO_APP.secret }] }).catch((error) => {
	console.error(`Could not start the WeChat simulator on 127.0.0.1:${SIM_PORT} (${error.code ?? error.message}); if the port is taken, set WXSIM_PORT to a free one.`);
	process.exit(1);
});

// Demo secrets go to a file wrangler reads, under .wrangler/ (git-ignored), never on a command line.
mkdirSync(".wrangler", { recursive: true });
const envFile = ".wrangler/demo.env";
writeFileSync(envFile, [
	`WECHAT_APPS=${JSON.stringify([DEMO_APP])}`,
	`API_KEYS=${JSON.stringify([{ name: "demo", key: DEMO_KEY, apps: ["*"], admin: true }])}`,
	"",
].join("\n"));

const wrangler = spawn("npx", [
	"wrangler", "dev",
	"--ip", "127.0.0.1", "--port", String(BROKER_PORT),
	"--env-file", envFile,
	"--var", `WECHAT_API_BASE:${sim.url}`,
	"--test-scheduled",
	"--show-interactive-dev-session=false",
], { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" } });

const base = `http://127.0.0.1:${BROKER_PORT}`;
let cron;

async function stop(code = 0) {
	clearInterval(cron);
	wrangler.kill("SIGTERM");
	await sim.close();
	process.exit(code);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
wrangler.on("exit", (code) => {
	console.error(`wrangler dev exited (${code}).`);
	void stop(code ?? 1);
});

const deadline = Date.now() + READY_TIMEOUT_MS;
for (;;) {
	try {
		if ((await fetch(`${base}/healthz`)).ok) break;
	} catch {}
	if (Date.now() > deadline) {
		console.error(`wrangler dev did not answer on ${base} within ${READY_TIMEOUT_MS / 1000} s.`);
		await stop(1);
	}
	await new Promise((resolve) => setTimeout(resolve, 250));
}

cron = setInterval(() => {
	fetch(`${base}/__scheduled?cron=*+*+*+*+*`).then((r) => r.body?.cancel(), () => {});
}, CRON_INTERVAL_MS);

console.log(`
wx-token-broker is running on ${base}  (WeChat simulator: ${sim.url}, cron every minute)

  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' '${base}/token?appid=${DEMO_APP.appid}'

More:
  curl -s -X POST -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"appid":"${DEMO_APP.appid}","access_token":"<the token WeChat refused>"}' ${base}/token/invalidate
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' ${base}/status
  curl -s "${sim.url}/cgi-bin/getcallbackip?access_token=<token>"   # does WeChat (the simulator) accept it?

Ctrl-C stops both.
`);
