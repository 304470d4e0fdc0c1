/*
 * GET /dashboard's script. The page holds no data: the operator pastes an admin key, kept in sessionStorage
 * (gone when the tab closes, never in a URL, sent nowhere but this broker's /status), and the table is
 * built with textContent only, so nothing /status returns is ever parsed as HTML (the page's
 * Content-Security-Policy in _headers requires Trusted Types, which that makes free).
 * /status pages: the summary over every app comes first, then one page of PAGE_SIZE apps; Next follows the
 * page's next_cursor, Previous goes back through the cursors already seen. A refresh reloads the same page.
 */
"use strict";
const KEY = "wx-token-broker-admin-key";
const PAGE_SIZE = 25;
const $ = (id) => document.getElementById(id);
let timer = null;
/** The cursor of each page shown so far (null: the first page); the last one is the page on screen. */
let cursors = [null];
let nextCursor = null;

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
	// WeCom's tickets are limited by the hour and have no daily quota (/status says null): no bar, no "/ 0".
	if (typeof c.daily_quota !== "number") {
		td.append(el("small", used + " today (no daily quota)"));
		return td;
	}
	const quota = c.daily_quota;
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

const SUMMARY = [["apps", "apps"], ["serving", "serving"], ["incidents", "open incidents"], ["never_fetched", "never fetched"], ["late", "late"]];

function renderSummary(summary) {
	const box = $("summary");
	box.replaceChildren();
	if (!summary) return (box.hidden = true);
	for (const [field, label] of SUMMARY) {
		const n = typeof summary[field] === "number" ? summary[field] : 0;
		const bad = n > 0 && (field === "incidents" || field === "late" || field === "never_fetched");
		const item = el("span", null, bad ? "bad" : "");
		item.dataset.field = field;
		item.append(el("b", n), document.createTextNode(" " + label));
		box.append(item);
	}
	box.hidden = false;
}

function render(status) {
	renderSummary(status.summary);
	nextCursor = typeof status.next_cursor === "string" ? status.next_cursor : null;
	const first = (cursors.length - 1) * PAGE_SIZE + 1;
	const shown = (status.apps || []).length;
	$("pageinfo").textContent = shown > 0 ? "apps " + first + "–" + (first + shown - 1) : "no apps";
	$("prev").disabled = cursors.length <= 1;
	$("next").disabled = nextCursor === null;
	$("pager").hidden = cursors.length <= 1 && nextCursor === null;
	const body = $("rows");
	body.replaceChildren();
	for (const app of status.apps || []) {
		if (!app) continue;
		const credentials = Array.isArray(app.credentials) && app.credentials.length > 0 ? app.credentials : [app];
		// The incident is the app's: it is shown once, on its first row.
		credentials.forEach((c, i) => body.append(row(app.appid, Object.assign({ mode: app.mode, incident: i === 0 ? app.incident : null }, c))));
	}
	$("table").hidden = false;
	const total = status.summary && typeof status.summary.apps === "number" ? status.summary.apps : shown;
	say(shown + " of " + total + " apps on this page · as of " + new Date().toLocaleTimeString(), false);
}

async function load() {
	const key = sessionStorage.getItem(KEY);
	if (!key) return;
	let res;
	try {
		const cursor = cursors[cursors.length - 1];
		const query = "?limit=" + PAGE_SIZE + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
		res = await fetch("/status" + query, { headers: { authorization: "Bearer " + key }, cache: "no-store", referrerPolicy: "no-referrer" });
	} catch (e) {
		say("Could not reach the broker: " + e.message, true);
		return;
	}
	let body = null;
	try { body = await res.json(); } catch (e) {}
	if (res.ok && body) return render(body);
	$("table").hidden = true;
	$("summary").hidden = true;
	$("pager").hidden = true;
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
	if (!key) return say("Paste an admin API key (one with \"admin\": true in API_KEYS).", true);
	sessionStorage.setItem(KEY, key);
	cursors = [null];
	say("Loading…", false);
	clearInterval(timer);
	timer = setInterval(load, 30000);
	load();
});

$("next").addEventListener("click", () => {
	if (nextCursor === null) return;
	cursors.push(nextCursor);
	load();
});

$("prev").addEventListener("click", () => {
	if (cursors.length <= 1) return;
	cursors.pop();
	load();
});

$("forget").addEventListener("click", () => {
	sessionStorage.removeItem(KEY);
	clearInterval(timer);
	$("rows").replaceChildren();
	$("table").hidden = true;
	$("summary").hidden = true;
	$("pager").hidden = true;
	cursors = [null];
	say("Key forgotten.", false);
});

if (sessionStorage.getItem(KEY)) {
	timer = setInterval(load, 30000);
	load();
}
