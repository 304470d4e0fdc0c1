#!/usr/bin/env node
// @ts-check
/**
 * `npm start`: the whole broker on this machine, no Cloudflare account and no network: the WeChat
 * simulator and `wrangler dev` with two demo apps (stable and classic), a WeCom agent and an open-platform
 * component and a WeCom suite whose tickets the simulator pushes to the broker every minute, a demo admin key and a demo reader key (not admin, first app only: for trying a 403), and the watchdog cron fired once at boot (so every
 * configured app's alarm chain starts and its first token is fetched before anyone asks) and every minute as
 * Cloudflare would. Prints a curl that returns a token; Ctrl-C stops everything.
 *
 * Ports: BROKER_PORT (default 8787) and WXSIM_PORT (default 9860).
 */
import { DEMO_ADMIN_KEY, DEMO_APPS, DEMO_AUTHORIZER_APPID, DEMO_COMPONENT, DEMO_KEYS, DEMO_PUSH_INTERVAL_S, DEMO_READER_KEY, DEMO_REDIRECT_URI, DEMO_REGISTRY_APP, DEMO_SUITE, DEMO_SUITE_AGENTID, DEMO_SUITE_CORPID, DEMO_SUITE_REDIRECT_URI, DEMO_WECOM_APPS } from "./demo.mjs";
import { startLocalStack } from "./local-stack.mjs";

const [DEMO_APP, SECOND_APP] = /** @type {[typeof DEMO_APPS[0], typeof DEMO_APPS[0]]} */ (DEMO_APPS);
const WECOM_APP = /** @type {typeof DEMO_WECOM_APPS[0]} */ (DEMO_WECOM_APPS[0]);
const WECOM_ID = `${WECOM_APP.corpid}-${WECOM_APP.agentid}`;
const PAGE = "https://example.com/page?x=1";
const DEMO_KEY = DEMO_ADMIN_KEY;
/** Cloudflare runs the `* * * * *` trigger once a minute; wrangler dev only when asked. */
const CRON_INTERVAL_MS = 60_000;

const stack = await startLocalStack({
	brokerPort: Number(process.env.BROKER_PORT ?? 8787),
	simPort: Number(process.env.WXSIM_PORT ?? 9860),
	apps: [...DEMO_APPS],
	simOnlyApps: [DEMO_REGISTRY_APP],
	wecomApps: [...DEMO_WECOM_APPS],
	components: [DEMO_COMPONENT],
	suites: [DEMO_SUITE],
	pushIntervalS: DEMO_PUSH_INTERVAL_S,
	keys: [...DEMO_KEYS],
	persistTo: ".wrangler/demo-state",
	// Without the broker the simulator and the cron are no use: stop them too, and free their ports.
	onBrokerExit(code) {
		console.error(`wrangler dev exited (${code}); stopping the WeChat simulator too.`);
		void stop();
	},
}).catch((error) => {
	console.error(`Could not start the broker: ${error.code ?? error.message}. If a port is taken, set BROKER_PORT or WXSIM_PORT.`);
	process.exit(1);
});
const { url, sim } = stack;

/** The watchdog, as Cloudflare's trigger runs it: it starts the chain of each app that has none yet. */
function fireCron() {
	// Read to the end: a body cancelled mid-way makes workerd print a red "Broken pipe" ERROR on every run.
	return fetch(`${url}/__scheduled?cron=*+*+*+*+*`).then((r) => r.text(), () => {});
}
// At boot: every WECHAT_APPS app gets its first token and its alarm now, so /health is 200 from the start.
await fireCron();
// The component's and the suite's first tickets now rather than at the simulator's next minute (its earlier
// pushes found no broker yet), so the printed /component-token and /suite-token curls answer at once.
const COMPONENT_ID = DEMO_COMPONENT.component_appid;
const SUITE_ID = DEMO_SUITE.suite_id;
const CORP_APP = `${DEMO_SUITE_CORPID}-${DEMO_SUITE_AGENTID}`;
for (const schedule of [`open/components/${COMPONENT_ID}`, `wecom/suites/${SUITE_ID}`]) {
	await fetch(`${sim.url}/__sim/${schedule}/schedule`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ next_in_s: 0 }) })
		.then((r) => r.text(), () => {});
}
const cron = setInterval(() => void fireCron(), CRON_INTERVAL_MS);

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
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' ${url}/health
  curl -s -H 'Authorization: Bearer ${DEMO_READER_KEY}' '${url}/token?appid=${SECOND_APP.appid}'   # 403: not this key's app
  open ${url}/dashboard and paste ${DEMO_KEY}

Add an app at runtime (the registry: no redeploy; its first token is fetched at once), read it back, list the apps:
  curl -s -X PUT -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"secret":"${DEMO_REGISTRY_APP.secret}","mode":"stable"}' ${url}/admin/apps/${DEMO_REGISTRY_APP.appid}
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' '${url}/token?appid=${DEMO_REGISTRY_APP.appid}'
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' ${url}/admin/apps
  curl -s -X POST -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"name":"billing","apps":["${DEMO_REGISTRY_APP.appid}"]}' ${url}/admin/keys   # a new key, shown once

JS-SDK: a signed wx.config for a page, and the ticket to check its signature by hand:
  curl -s -X POST -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"appid":"${DEMO_APP.appid}","url":"${PAGE}"}' ${url}/jssdk/config
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' '${url}/ticket?appid=${DEMO_APP.appid}&type=jsapi'
  printf 'jsapi_ticket=%s&noncestr=%s&timestamp=%s&url=%s' <ticket> <nonceStr> <timestamp> '${PAGE}' | sha1sum   # = signature
WeCom agent ${WECOM_ID} (its token, and wx.config + wx.agentConfig):
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' '${url}/token?appid=${WECOM_ID}'
  curl -s -X POST -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"appid":"${WECOM_ID}","url":"${PAGE}"}' ${url}/jssdk/config
  curl -s "${sim.url}/qyapi/cgi-bin/getcallbackip?access_token=<token>"   # does WeCom (the simulator) accept it?
Open platform: component ${COMPONENT_ID}, its ticket pushed to ${url}/open/${COMPONENT_ID}/events every minute:
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' '${url}/component-token?component_appid=${COMPONENT_ID}'
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' ${url}/admin/components/${COMPONENT_ID}   # the newest ticket's age, never the ticket
Authorise an account for it: the link to send a customer to (a fresh pre_auth_code), the account consenting on
WeChat's page (the simulator's, which pushes \`authorized\` to the event URL), then its token and a wx.config:
  curl -s -X POST -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"redirect_uri":"${DEMO_REDIRECT_URI}"}' ${url}/open/${COMPONENT_ID}/auth-url
  curl -s -X POST -H 'content-type: application/json' \\
       -d '{"authorizer_appid":"${DEMO_AUTHORIZER_APPID}","pre_auth_code":"<the pre_auth_code in that url, %40 as @>","push":true}' \\
       ${sim.url}/__sim/open/components/${COMPONENT_ID}/authorize
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' '${url}/token?appid=${DEMO_AUTHORIZER_APPID}'
  curl -s -X POST -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"appid":"${DEMO_AUTHORIZER_APPID}","url":"${PAGE}"}' ${url}/jssdk/config
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' ${url}/open/${COMPONENT_ID}/authorizers
WeCom service provider: suite ${SUITE_ID}, its suite_ticket pushed to ${url}/wecom-suite/${SUITE_ID}/events every minute:
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' '${url}/suite-token?suite_id=${SUITE_ID}'
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' ${url}/admin/suites/${SUITE_ID}   # the newest ticket's age, never the ticket
Install it in a company: the install link (a fresh pre_auth_code), the company's admin installing on WeCom's page
(the simulator's, which pushes \`create_auth\` to the instruction URL), then its agent's token, a wx.config with
wx.agentConfig, and the suite's installs:
  curl -s -X POST -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"redirect_uri":"${DEMO_SUITE_REDIRECT_URI}"}' ${url}/wecom-suite/${SUITE_ID}/install-url
  curl -s -X POST -H 'content-type: application/json' \\
       -d '{"corpid":"${DEMO_SUITE_CORPID}","pre_auth_code":"<the pre_auth_code in that url>","agentid":${DEMO_SUITE_AGENTID},"push":true}' \\
       ${sim.url}/__sim/wecom/suites/${SUITE_ID}/install
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' '${url}/token?appid=${CORP_APP}'
  curl -s -X POST -H 'Authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
       -d '{"appid":"${CORP_APP}","url":"${PAGE}"}' ${url}/jssdk/config
  curl -s -H 'Authorization: Bearer ${DEMO_KEY}' ${url}/wecom-suite/${SUITE_ID}/installs

Ctrl-C stops both.
`);
