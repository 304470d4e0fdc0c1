/**
 * GET /dashboard: one plain HTML page for operators, served by the Worker. It holds no data: the operator
 * pastes an admin key, the page keeps it in sessionStorage (gone when the tab closes, never in a URL,
 * never sent anywhere but this broker's /status) and renders what /status answers.
 *
 * The script and style are inline, and the Content-Security-Policy admits exactly those two by their
 * SHA-256 (computed once per isolate): no other script, style, frame, form target or origin can run or be
 * reached from the page. The script builds the table with textContent only, so nothing /status returns
 * is ever parsed as HTML, which also lets the policy require Trusted Types.
 */

const STYLE = `
:root { font: 14px/1.4 system-ui, sans-serif; color: #1d2327; background: #f6f7f7; }
body { margin: 0 auto; max-width: 1200px; padding: 1.5rem; }
h1 { font-size: 1.3rem; margin: 0 0 1rem; }
form { display: flex; gap: .5rem; margin-bottom: 1rem; }
input { flex: 1; max-width: 28rem; padding: .4rem .6rem; font: inherit; }
button { padding: .4rem .9rem; font: inherit; cursor: pointer; }
#message { margin: .5rem 0 1rem; min-height: 1.4em; }
#message.error { color: #b32d2e; font-weight: 600; }
table { width: 100%; border-collapse: collapse; background: #fff; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #dcdcde; vertical-align: top; }
th { background: #f0f0f1; font-weight: 600; }
td.mono { font-family: ui-monospace, monospace; white-space: nowrap; }
.bar { width: 9rem; height: .6rem; background: #dcdcde; border-radius: .3rem; overflow: hidden; }
.bar > span { display: block; height: 100%; background: #2271b1; }
.bar.warn > span { background: #dba617; }
.bar.full > span { background: #b32d2e; }
.bad { color: #b32d2e; }
.ok { color: #00a32a; }
small { color: #646970; }
`;

const SCRIPT = `
"use strict";
const KEY = "wx-token-broker-admin-key";
const $ = (id) => document.getElementById(id);
let timer = null;

function say(text, isError) {
	const m = $("message");
	m.textContent = text;
	m.className = isError ? "error" : "";
}

function el(tag, text, className) {
	const node = document.createElement(tag);
	if (text !== undefined && text !== null) node.textContent = String(text);
	if (className) node.className = className;
	return node;
}

function duration(s) {
	if (typeof s !== "number") return "–";
	if (s < 120) return s + " s";
	if (s < 7200) return Math.round(s / 60) + " min";
	return (s / 3600).toFixed(1) + " h";
}

function until(iso) {
	if (!iso) return "–";
	const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
	return s <= 0 ? "due now" : "in " + duration(s);
}

function callsOf(c) {
	const calls = c.calls_today;
	if (typeof calls === "number") return calls;
	if (!calls || typeof calls !== "object") return 0;
	if (c.mode === "classic" && typeof calls.token === "number") return calls.token;
	if (typeof calls.stable_token === "number" && c.mode === "stable") return calls.stable_token;
	return Object.values(calls).reduce((a, b) => a + (typeof b === "number" ? b : 0), 0);
}

function quotaCell(c) {
	const td = el("td");
	const used = callsOf(c);
	const quota = typeof c.daily_quota === "number" ? c.daily_quota : 0;
	const share = quota > 0 ? Math.min(1, used / quota) : 0;
	const bar = el("div", null, "bar" + (share >= 0.9 ? " full" : share >= 0.5 ? " warn" : ""));
	const fill = el("span");
	fill.style.width = (share * 100).toFixed(1) + "%";
	bar.append(fill);
	bar.title = used + " of " + quota;
	td.append(bar, el("small", used + " / " + quota + " today"));
	return td;
}

function row(appid, c) {
	const tr = el("tr");
	tr.dataset.appid = appid;
	tr.dataset.credential = c.type || "token";
	// A credential of /status's list carries its masked value as "value"; an app without the list, as "token".
	const masked = c.value !== undefined ? c.value : c.token;
	tr.append(
		el("td", appid, "mono"),
		el("td", c.type && c.type !== "token" ? c.label || c.type : c.mode || "token"),
		el("td", masked || "none", "mono" + (masked ? "" : " bad")),
		el("td", masked ? duration(c.expires_in) : "–"),
		el("td", until(c.next_refresh)),
		quotaCell(c),
		el("td", c.incident ? "since " + c.incident.since + ": " + c.incident.reason : "none", c.incident ? "bad" : "ok"),
		el("td", c.last_error ? c.last_error.at + ": " + c.last_error.message : "none", c.last_error ? "bad" : ""),
	);
	return tr;
}

function render(status) {
	const body = $("rows");
	body.replaceChildren();
	for (const app of status.apps || []) {
		if (!app) continue;
		const credentials = Array.isArray(app.credentials) && app.credentials.length > 0 ? app.credentials : [app];
		// The incident is the app's: it is shown once, on its first row.
		credentials.forEach((c, i) => body.append(row(app.appid, Object.assign({ mode: app.mode, incident: i === 0 ? app.incident : null }, c))));
	}
	$("table").hidden = false;
	say((status.apps || []).length + " apps · as of " + new Date().toLocaleTimeString(), false);
}

async function load() {
	const key = sessionStorage.getItem(KEY);
	if (!key) return;
	let res;
	try {
		res = await fetch("/status", { headers: { authorization: "Bearer " + key }, cache: "no-store", referrerPolicy: "no-referrer" });
	} catch (e) {
		say("Could not reach the broker: " + e.message, true);
		return;
	}
	let body = null;
	try { body = await res.json(); } catch (e) {}
	if (res.ok && body) return render(body);
	$("table").hidden = true;
	if (res.status === 401) {
		sessionStorage.removeItem(KEY);
		clearInterval(timer);
	}
	say("HTTP " + res.status + ": " + (body && body.message ? body.message : "unexpected answer from /status"), true);
}

$("login").addEventListener("submit", (event) => {
	event.preventDefault();
	const key = $("key").value.trim();
	$("key").value = "";
	if (!key) return say("Paste an admin API key (one with \\"admin\\": true in API_KEYS).", true);
	sessionStorage.setItem(KEY, key);
	say("Loading…", false);
	clearInterval(timer);
	timer = setInterval(load, 30000);
	load();
});

$("forget").addEventListener("click", () => {
	sessionStorage.removeItem(KEY);
	clearInterval(timer);
	$("rows").replaceChildren();
	$("table").hidden = true;
	say("Key forgotten.", false);
});

if (sessionStorage.getItem(KEY)) {
	timer = setInterval(load, 30000);
	load();
}
`;

const HTML = (style: string, script: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>wx-token-broker · dashboard</title>
<style>${style}</style>
</head>
<body>
<h1>wx-token-broker</h1>
<form id="login" autocomplete="off">
<input id="key" type="password" placeholder="Admin API key" aria-label="Admin API key" autocomplete="off" spellcheck="false">
<button type="submit">Show status</button>
<button type="button" id="forget">Forget key</button>
</form>
<div id="message" role="status">Paste an admin key. It stays in this tab (sessionStorage) and is sent only to this broker's /status.</div>
<table id="table" hidden>
<thead><tr><th>App</th><th>Credential</th><th>Value (masked)</th><th>Expires in</th><th>Next refresh</th><th>Calls today / quota</th><th>Incident</th><th>Last error</th></tr></thead>
<tbody id="rows"></tbody>
</table>
<script>${script}</script>
</body>
</html>
`;

export const DASHBOARD_HTML = HTML(STYLE, SCRIPT);

async function sha256Base64(text: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
	return btoa(String.fromCharCode(...digest));
}

let headers: Promise<Record<string, string>> | undefined;

/** The page's headers: a CSP that admits only its own inline script and style, by hash. */
export function dashboardHeaders(): Promise<Record<string, string>> {
	headers ??= Promise.all([sha256Base64(SCRIPT), sha256Base64(STYLE)]).then(([script, style]) => ({
		"Content-Type": "text/html; charset=utf-8",
		"Content-Security-Policy": [
			"default-src 'none'",
			`script-src 'sha256-${script}'`,
			`style-src 'sha256-${style}'`,
			"connect-src 'self'",
			"img-src 'none'",
			"base-uri 'none'",
			"form-action 'none'",
			"frame-ancestors 'none'",
			"require-trusted-types-for 'script'",
		].join("; "),
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy": "no-referrer",
		"X-Frame-Options": "DENY",
	}));
	return headers;
}
