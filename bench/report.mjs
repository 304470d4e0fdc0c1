// @ts-check
/**
 * One table for the terminal and for bench/README.md (Markdown, columns padded so it reads in both), and
 * results.json with every figure behind it, the rounds of each point included.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const COLUMNS = ["measure", "system", "load", "req/s", "× ceiling", "p50 ms", "p99 ms", "WeChat calls (ideal)", "rejected", "note"];

/** @param {number | null | undefined} value @param {number} [digits] */
function num(value, digits = 0) {
	if (value === null || value === undefined || Number.isNaN(value)) return "–";
	return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** @param {number} bytes */
function kib(bytes) {
	return `${num(bytes / 1024, 1)} KiB`;
}

/**
 * @param {any} results  the object written to results.json
 * @returns {string[][]}
 */
export function tableRows(results) {
	/** @type {string[][]} */
	const rows = [];
	// A partial run (--only) leaves the sections it skipped null.
	const broker = results.throughput.broker;
	/** @type {Map<number, number>} */
	const ceiling = new Map((broker?.points ?? []).filter((/** @type {any} */ p) => p.target === "healthz").map((/** @type {any} */ p) => [p.concurrency, p.rps]));
	for (const p of broker?.points ?? []) {
		rows.push([
			"throughput", `broker ${p.label}`, `c=${p.concurrency}, ${results.settings.pointS} s ×${results.settings.repeats}`,
			num(p.rps), num(p.rps / (ceiling.get(p.concurrency) ?? Number.NaN), 2), num(p.p50_ms, 2), num(p.p99_ms, 2),
			p.target === "healthz" ? "–" : `${num(broker.upstream_calls_during_load[p.target])} (0)`, "–",
			[
				p.target === "token-object" ? `KV copy stayed absent: ${broker.object_path_edge_copy_stayed_absent ? "yes" : "NO"}` : "",
				p.failed ? `${p.failed} failed` : "",
			].filter(Boolean).join("; "),
		]);
	}
	const registry = results.registry;
	const registryCeiling = new Map((registry?.points ?? []).filter((/** @type {any} */ p) => p.target === "healthz").map((/** @type {any} */ p) => [p.concurrency, p.rps]));
	for (const p of registry?.points ?? []) {
		rows.push([
			"registry", `broker ${p.label}`, `c=${p.concurrency}, ${results.settings.pointS} s ×${results.settings.repeats}`,
			num(p.rps), num(p.rps / (registryCeiling.get(p.concurrency) ?? Number.NaN), 2), num(p.p50_ms, 2), num(p.p99_ms, 2),
			p.target === "token-registry" ? `${num(registry.upstream_calls_during_load)} (0)` : "–", "–",
			[
				p.target === "healthz" ? `${registry.apps} apps registered in ${registry.register_apps_s} s, ${registry.keys} keys in ${registry.register_keys_s} s` : "",
				p.failed ? `${p.failed} failed` : "",
			].filter(Boolean).join("; "),
		]);
	}
	const baselines = results.throughput.baselines;
	if (baselines) {
		const nodeCeiling = new Map(baselines.points.filter((/** @type {any} */ p) => p.target === "node-healthz").map((/** @type {any} */ p) => [p.concurrency, p.rps]));
		for (const p of baselines.points) {
			const upstream = baselines.upstream_calls_during_load[p.target];
			rows.push([
				"throughput", p.label, `c=${p.concurrency}, round-robin over 4`,
				num(p.rps), num(p.rps / (nodeCeiling.get(p.concurrency) ?? Number.NaN), 2), num(p.p50_ms, 2), num(p.p99_ms, 2),
				upstream ? `${upstream.token_calls} (0)` : "–", "–",
				[upstream?.probe_calls ? `${num(upstream.probe_calls)} getcallbackip probes` : "", `${num(p.rps / (ceiling.get(p.concurrency) ?? Number.NaN), 2)}× broker /healthz`, p.failed ? `${p.failed} failed` : ""].filter(Boolean).join("; "),
			]);
		}
	}
	const gateway = results.gateway;
	if (gateway) {
		const direct = new Map(gateway.points.filter((/** @type {any} */ p) => p.target === "sim-direct").map((/** @type {any} */ p) => [p.concurrency, p.rps]));
		for (const p of gateway.points) {
			rows.push([
				"gateway", p.label, `c=${p.concurrency}, ${results.settings.pointS} s ×${results.settings.repeats}`,
				num(p.rps), num(p.rps / (ceiling.get(p.concurrency) ?? Number.NaN), 2), num(p.p50_ms, 2), num(p.p99_ms, 2),
				`${num(gateway.token_calls_during_load)} token (0)`, "–",
				[p.target === "gateway" ? `${num(p.rps / (direct.get(p.concurrency) ?? Number.NaN), 2)}× straight to the simulator` : "", p.failed ? `${p.failed} failed` : ""].filter(Boolean).join("; "),
			]);
		}
		for (const h of gateway.heals) {
			rows.push([
				"gateway heal", `broker (${h.mode})`, `${h.n} calls, token revoked at WeChat`, "–", "–", num(h.healed_p50_ms, 1), "–",
				`${num(h.refreshes_per_heal)} token per heal (1)`, "–", `a plain call through the gateway on the same apps: p50 ${num(h.plain_p50_ms, 1)} ms`,
			]);
		}
	}
	const tickets = results.tickets;
	if (tickets) {
		const ticketCeiling = new Map(tickets.points.filter((/** @type {any} */ p) => p.target === "healthz").map((/** @type {any} */ p) => [p.concurrency, p.rps]));
		for (const p of tickets.points) {
			rows.push([
				"tickets", `broker ${p.label}`, `c=${p.concurrency}, ${results.settings.pointS} s ×${results.settings.repeats}`,
				num(p.rps), num(p.rps / (ticketCeiling.get(p.concurrency) ?? Number.NaN), 2), num(p.p50_ms, 2), num(p.p99_ms, 2),
				p.target === "healthz" ? "–" : `${num(tickets.getticket_calls_during_load)} getticket, ${num(tickets.token_calls_during_load)} token (0)`, "–",
				p.failed ? `${p.failed} failed` : "",
			]);
		}
		for (const s of tickets.stampedes) {
			rows.push([
				"ticket stampede", "broker GET /ticket (stable)", `N=${s.n} cold, at once`, "–", "–", num(s.p50_ms, 1), num(s.p99_ms, 1),
				`${num(s.getticket_calls)} getticket (1), ${num(s.token_calls)} token (1)`, "–", `${num(s.distinct_tickets)} distinct ticket(s)${s.failed ? `; ${s.failed} failed` : ""}`,
			]);
		}
	}
	for (const s of results.stampede.broker ?? []) {
		rows.push([
			"stampede", `broker (${s.mode})`, `N=${s.n} cold, at once`, "–", "–", num(s.p50_ms, 1), num(s.p99_ms, 1),
			`${num(s.upstream_calls)} (1)`, `${num(s.rejected)}/${s.n}`, `${num(s.distinct_tokens)} distinct token(s), checked at once${s.failed ? `; ${s.failed} failed` : ""}`,
		]);
	}
	for (const s of results.stampede.baselines ?? []) {
		rows.push([
			"stampede", s.label, `N=${s.n} cold, over 4`, "–", "–", num(s.p50_ms, 1), num(s.p99_ms, 1),
			`${num(s.upstream_calls)} (1)`, `${num(s.rejected)}/${s.n}`, `${num(s.distinct_tokens)} distinct token(s), checked ${num(s.check_after_ms / 1000, 1)} s later (> the 5-min overlap)${s.failed ? `; ${s.failed} failed` : ""}`,
		]);
	}
	for (const s of results.storm ?? []) {
		rows.push([
			"invalidation storm", `broker (${s.mode})`, `N=${s.n} reports of the current token`, "–", "–", num(s.p50_ms, 1), num(s.p99_ms, 1),
			// WeChat refused the token (revoked behind the broker's back): classic probes then refreshes, stable's normal call finds the new token.
			`${num(s.upstream_calls)} (1)`, "–",
			`${num(s.distinct_tokens)} distinct token(s) back, ${num(s.still_old_token)} old${s.failed ? `; ${s.failed} failed` : ""}`,
		]);
	}
	for (const d of results.day?.systems ?? []) {
		rows.push([
			"compressed day", d.label, `${num(d.elapsed_s, 0)} s, ${results.day.token_lifetime_s} s tokens`, num(d.rps), "–", num(d.p50_ms, 2), num(d.p99_ms, 2),
			`${num(d.upstream_token_calls)} (${d.ideal_calls}) = ${num(d.calls_per_lifetime, 2)}/lifetime`, `${num(d.rejected)}/${num(d.checked)}`,
			[
				d.probe_calls ? `${num(d.probe_calls)} getcallbackip probes` : "",
				d.rejected ? `errcodes ${Object.entries(d.rejected_by_errcode).map(([code, n]) => `${code}×${n}`).join(" ")}` : "",
				d.failed ? `${d.failed} failed` : "",
			].filter(Boolean).join("; "),
		]);
	}
	const b = results.bundle;
	rows.push([
		"bundle", b.path, "wrangler deploy --dry-run", "–", "–", "–", "–", "–", "–",
		`${kib(b.raw_bytes)} raw, ${kib(b.gzip_bytes)} gzip = ${num(b.share_of_free_limit * 100, 1)} % of the 3 MiB Free limit (10 MiB Paid)`,
	]);
	for (const o of results.open_platform ?? []) {
		const c = o.component_token;
		const b = o.ticket_burst;
		rows.push([
			"open platform", `broker, ${num(o.authorizers)} authorizers`, `${o.run_s} s, ${o.token_lifetime_s.authorizer} s / ${o.token_lifetime_s.component} s tokens`, "–", "–", "–", "–",
			`${num(c.calls)} component token (${num(c.planned)}); naive per-authorizer fetch, computed: ${num(c.naive_calls)}`, `${num(o.reads.refused_by_wechat + o.reads.unavailable_503)}/${num(o.reads.total)}`,
			`1 call in ${c.intervals_with_one_call} of ${c.per_refresh_interval.length} refresh intervals; ${num(o.authorizer_token.refreshes.made)} authorizer refreshes (${num(o.authorizer_token.refreshes.planned)} planned); ${num(o.alarms.late)} of ${num(o.alarms.count)} alarms > 1 s late`,
		]);
		rows.push([
			"ticket pushes", "broker POST /open/{c}/events", `${num(b.pushes)} at c=${b.concurrency}`, num(b.pushes_per_s), "–", num(b.p50_ms, 1), num(b.p99_ms, 1), "–", `${num(b.wrong_answers)} wrong`,
			`${num(b.success)} success, ${num(b.refused_older_409)} × 409 (older); newest kept: ${b.newest_kept ? "yes" : "NO"}`,
		]);
	}
	for (const w of results.wecom_suite ?? []) {
		const t = w.suite_token;
		rows.push([
			"wecom suite", `broker, ${num(w.companies)} companies`, `${w.run_s} s, ${w.token_lifetime_s.corp} s / ${w.token_lifetime_s.suite} s tokens`, "–", "–", "–", "–",
			`${num(t.calls)} suite token (${num(t.planned)}); naive per-company fetch, computed: ${num(t.naive_calls)}`, `${num(w.reads.refused_by_wechat + w.reads.unavailable_503)}/${num(w.reads.total)}`,
			`installed in ${w.install_s} s; ${num(w.corp_token.refreshes.made)} corp refreshes (${num(w.corp_token.refreshes.planned)} planned); ${num(w.alarms.late)} of ${num(w.alarms.count)} alarms > 1 s late`,
		]);
	}
	return rows;
}

/**
 * The ratios that matter, in words, from the same results.
 * @param {any} results
 * @returns {string[]}
 */
export function headline(results) {
	const lines = [];
	if (results.throughput.broker) lines.push(throughputHeadline(results));
	if (results.stampede.broker) lines.push(stampedeHeadline(results));
	if (results.storm) lines.push(stormHeadline(results));
	if (results.day) lines.push(dayHeadline(results));
	return lines;
}

/** @param {any} results */
function throughputHeadline(results) {
	const points = results.throughput.broker.points;
	const at = (/** @type {string} */ target, /** @type {number} */ c) => points.find((/** @type {any} */ p) => p.target === target && p.concurrency === c)?.rps;
	const concurrencies = results.settings.concurrencies;
	const ratios = (/** @type {string} */ target) => concurrencies.map((/** @type {number} */ c) => num(at(target, c) / at("healthz", c), 2)).join(" / ");
	return `Throughput as a share of the same Worker's GET /healthz (c = ${concurrencies.join(" / ")}): GET /token from the KV copy ${ratios("token-kv")}, from the Durable Object ${ratios("token-object")}, stale POST /token/invalidate ${ratios("invalidate-stale")}; WeChat calls during all of it: ${Object.values(results.throughput.broker.upstream_calls_during_load).reduce((/** @type {number} */ a, /** @type {number} */ b) => a + b, 0)}.`;
}

/** @param {any} results */
function stampedeHeadline(results) {
	const largest = Math.max(...results.settings.stampedeSizes);
	const brokerStampede = results.stampede.broker.filter((/** @type {any} */ s) => s.n === largest);
	const baselineStampede = (results.stampede.baselines ?? []).filter((/** @type {any} */ s) => s.n === largest);
	return `Stampede of ${largest} cold readers: the broker made ${brokerStampede.map((/** @type {any} */ s) => `${s.upstream_calls} (${s.mode})`).join(", ")} WeChat call(s) and handed out ${brokerStampede.map((/** @type {any} */ s) => s.distinct_tokens).join(", ")} distinct token(s)` +
		(baselineStampede.length ? `; baselines (a) / (b) / (c) made ${baselineStampede.map((/** @type {any} */ s) => s.upstream_calls).join(" / ")} calls, and ${baselineStampede.map((/** @type {any} */ s) => s.rejected).join(" / ")} of their ${largest} answers carried a token WeChat refused once the 5-minute overlap had passed (medians of ${results.settings.repeats}).` : ".");
}

/** @param {any} results */
function stormHeadline(results) {
	const largest = Math.max(...results.settings.stampedeSizes);
	const storms = results.storm.filter((/** @type {any} */ s) => s.n === largest);
	const oneToken = storms.every((/** @type {any} */ s) => s.distinct_tokens === 1 && s.still_old_token === 0 && s.failed === 0);
	return `Invalidation storm of ${largest} reports of one token: ${storms.map((/** @type {any} */ s) => `${s.mode} ${s.upstream_calls} call(s)${s.forced_calls ? ` (${s.forced_calls} forced)` : ""}`).join(", ")}; ${oneToken ? "every reporter got the same new token" : "NOT every reporter got the same new token (see results.json)"}.`;
}

/** @param {any} results */
function dayHeadline(results) {
	const day = results.day.systems;
	return `Compressed day (${results.day.seconds} s, ${results.day.token_lifetime_s} s tokens, ideal ${day[0]?.ideal_calls} calls): ${day.map((/** @type {any} */ d) => `${d.label} ${d.upstream_token_calls} calls, ${d.rejected}/${d.checked} sampled tokens refused`).join("; ")}.`;
}

/** @param {string[][]} rows */
export function markdownTable(rows) {
	const all = [COLUMNS, ...rows].map((row) => row.map((cell) => cell.replaceAll("|", "\\|")));
	const widths = COLUMNS.map((_, i) => Math.max(...all.map((row) => (row[i] ?? "").length)));
	const line = (/** @type {string[]} */ row) => `| ${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(" | ")} |`;
	return [line(/** @type {string[]} */ (all[0])), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...all.slice(1).map(line)].join("\n");
}

/**
 * @param {string} path
 * @param {unknown} results
 */
export function writeResults(path, results) {
	mkdirSync(dirname(path), { recursive: true });
	writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}
