#!/usr/bin/env node
// @ts-check
/**
 * `npm run bench`: the broker's performance beside the designs it replaces, in one bounded run on
 * 127.0.0.1 (see bench/README.md for what each row means). Prints one table; writes bench/results.json.
 *
 * Order matters: the broker's paths are measured first on a machine with nothing else running, the
 * baselines' throughput next, then the bursts, and last the compressed day, where every system runs
 * at once so that they share the machine alike. Everything started is stopped at the end, on failure,
 * and on Ctrl-C (cleanup.mjs).
 */
import { randomBytes } from "node:crypto";
import { cpus, platform, release } from "node:os";
import { benchApps } from "./apps.mjs";
import { AUTH_HEADERS, BUNDLE_PATH, buildWorker, startBroker } from "./broker.mjs";
import { cleanupAll, cleanupOnSignals, interrupted } from "./cleanup.mjs";
import { BenchFailure, requireSuccess } from "./failures.mjs";
import { REDIS_INSTALL_HINT, redisAvailable, startRedis } from "./redis.mjs";
import { headline, markdownTable, tableRows, writeResults } from "./report.mjs";
import { runGrantScenarios } from "./grant-scenarios.mjs";
import { readSettings } from "./settings.mjs";
import { baselineStampedes, fastLifetimeS, LABELS, measureBaselineThroughput, startFastFleets } from "./scenarios/baselines.mjs";
import { measureBrokerPaths } from "./scenarios/broker-paths.mjs";
import { measureBundle } from "./scenarios/bundle.mjs";
import { measureGateway } from "./scenarios/gateway.mjs";
import { compressedDay, CRON_INTERVAL_MS, DAY_TOKEN_LIFETIME_S } from "./scenarios/day.mjs";
import { stampede, summarizeRuns } from "./scenarios/stampede.mjs";
import { storm, summarizeStorms } from "./scenarios/storm.mjs";
import { measureRegistry } from "./scenarios/registry.mjs";
import { measureScale } from "./scenarios/scale.mjs";
import { measureTickets } from "./scenarios/tickets.mjs";
import { round } from "./stats.mjs";
import { startWorld } from "./world.mjs";

/** Apps and keys the registry scenario registers: issue 16's bound for the hot path. */
const REGISTRY_BENCH_APPS = 1_000;

/** The fast world's clock rate: WeChat's 7200 s token lives the day run's 60 real seconds (120×). */
const FAST_WORLD_SPEEDUP = 7200 / DAY_TOKEN_LIFETIME_S;

const benchStartedAt = performance.now();
/** Progress on stderr, with the time since start: stdout carries only the table. */
function step(/** @type {string} */ message) {
	console.error(`bench [${Math.round((performance.now() - benchStartedAt) / 1000)} s]: ${message}`);
}

async function main() {
	const settings = readSettings();
	const { only } = settings;
	const apps = benchApps(settings);
	/** @type {string[]} */
	const skipped = [];
	if (settings.partial) skipped.push(`scenarios: only ${[...only].join(", ")} (--only / BENCH_ONLY); figures in ${settings.resultsPath}`);

	step("building the Worker (npm run build)…");
	const build = await buildWorker();
	const bundle = measureBundle(BUNDLE_PATH);

	const realWorld = await startWorld({ name: "real time" });
	const brokerApps = [apps.broker.hot, apps.broker.objectPath, apps.broker.stale, ...apps.broker.stampedes.map((s) => s.app), ...apps.broker.storms.map((s) => s.app), apps.gateway.hot, ...apps.gateway.heals, apps.tickets.hot, ...apps.tickets.stampedes.map((s) => s.app)];
	await realWorld.registerApps(brokerApps);
	await realWorld.registerApps(apps.brokerDay.map((app) => ({ appid: app.appid, secret: app.secret, lifetime_s: DAY_TOKEN_LIFETIME_S })));
	await realWorld.registerApps(apps.strategies.map((strategy) => apps.baselines[strategy].hot));

	/** @type {any} */
	let brokerPaths = null;
	/** @type {any} */
	let gateway = null;
	/** @type {any[] | null} */
	let brokerStampedes = null;
	/** @type {any[] | null} */
	let storms = null;
	/** @type {any} */
	let tickets = null;
	/** @type {any} */
	let mainLogs = null;
	if (only.has("throughput") || only.has("gateway") || only.has("stampede") || only.has("storm") || only.has("tickets")) {
		const broker = await startBroker({ name: "main", apps: brokerApps, apiBase: realWorld.url });
		if (only.has("throughput")) {
			step("broker: throughput of each path beside /healthz…");
			brokerPaths = await measureBrokerPaths({ broker, world: realWorld, apps: apps.broker, settings });
			requireSuccess("throughput (broker)", pointOutcomes(brokerPaths.points));
		}
		if (only.has("gateway")) {
			step("gateway: a business call straight to the simulator and through the gateway, and healed calls…");
			gateway = await measureGateway({ broker, world: realWorld, apps: apps.gateway, settings });
			requireSuccess("gateway", pointOutcomes(gateway.points));
		}
		if (only.has("tickets")) {
			step("tickets: cold stampedes of GET /ticket, then GET /ticket and the gateway's getticket beside /healthz…");
			tickets = await measureTickets({ broker, world: realWorld, apps: apps.tickets, settings });
			requireSuccess("tickets", [
				...pointOutcomes(tickets.points),
				...tickets.stampedes.map((/** @type {any} */ s) => burstOutcome(`ticket stampede N=${s.n}`, s.runs)),
			]);
		}
		if (only.has("stampede")) {
			step("broker: stampedes…");
			brokerStampedes = [];
			for (const mode of /** @type {const} */ (["classic", "stable"])) {
				for (const n of settings.stampedeSizes) {
					const runs = [];
					for (const s of apps.broker.stampedes.filter((x) => x.mode === mode && x.n === n)) {
						runs.push(await stampede({ world: realWorld, appid: s.app.appid, urls: [broker.url], n, headers: AUTH_HEADERS, checkAfterMs: 0 }));
					}
					requireSuccess("stampede (broker)", [burstOutcome(`broker (${mode}) N=${n}`, runs)]);
					const summary = summarizeRuns(runs);
					console.error(`  stampede broker ${mode} N=${n}: ${summary.upstream_calls} upstream calls, ${summary.distinct_tokens} tokens, p99 ${summary.p99_ms} ms`);
					brokerStampedes.push({ mode, ...summary });
				}
			}
		}
		if (only.has("storm")) {
			step("broker: invalidation storms…");
			storms = [];
			for (const mode of /** @type {const} */ (["classic", "stable"])) {
				for (const n of settings.stampedeSizes) {
					const runs = [];
					for (const s of apps.broker.storms.filter((x) => x.mode === mode && x.n === n)) {
						runs.push(await storm({ world: realWorld, broker, appid: s.app.appid, mode, n }));
					}
					requireSuccess("invalidation storm", [burstOutcome(`broker (${mode}) N=${n}`, runs)]);
					const summary = { mode, ...summarizeStorms(runs) };
					console.error(`  storm broker ${mode} N=${n}: ${summary.upstream_calls} upstream calls (${summary.forced_calls} forced), p99 ${summary.p99_ms} ms`);
					storms.push(summary);
				}
			}
		}
		mainLogs = broker.logCounts();
		await broker.dispose();
	}

	/** @type {any} */
	let baselineThroughput = null;
	/** @type {any[] | null} */
	let baselineStampedeRows = null;
	/** @type {import("./scenarios/day.mjs").DaySystem[]} */
	const baselineDaySystems = [];
	let fastWorld = null;
	const baselinesWanted = only.has("throughput") || only.has("stampede") || only.has("day");
	if (!baselinesWanted) {
		// Nothing of theirs was asked for: no note needed.
	} else if (!settings.baselines) {
		skipped.push("baselines: skipped by --no-baselines / BENCH_BASELINES=0");
	} else if (!redisAvailable()) {
		const message = `baselines: redis-server was not found on PATH; ${REDIS_INSTALL_HINT}`;
		console.error(`bench: ${message}. Skipping the baselines.`);
		skipped.push(message);
	} else {
		const redis = await startRedis();
		if (only.has("throughput")) {
			step("baselines: throughput, 4 instances each behind one Redis…");
			baselineThroughput = await measureBaselineThroughput({ redisUrl: redis.url, world: realWorld, apps, settings });
			requireSuccess("throughput (baselines)", pointOutcomes(baselineThroughput.points));
		}
		if (only.has("stampede") || only.has("day")) {
			fastWorld = await startWorld({ name: "fast", speedup: FAST_WORLD_SPEEDUP });
			await fastWorld.registerApps(apps.strategies.flatMap((strategy) => [...apps.baselines[strategy].stampedes.map((s) => s.app), apps.baselines[strategy].day]));
			const fleets = await startFastFleets({ redisUrl: redis.url, world: fastWorld, apps });
			if (only.has("stampede")) {
				step(`baselines: stampedes in the fast world (WeChat's clock ×${FAST_WORLD_SPEEDUP})…`);
				baselineStampedeRows = await baselineStampedes({ world: fastWorld, apps, fleets });
				requireSuccess("stampede (baselines)", baselineStampedeRows.map((row) => burstOutcome(`${row.label} N=${row.n}`, row.runs)));
			}
			for (const strategy of apps.strategies) {
				baselineDaySystems.push({
					id: strategy, label: LABELS[strategy], world: fastWorld, appid: apps.baselines[strategy].day.appid,
					urls: /** @type {import("./baselines/fleet.mjs").Fleet} */ (fleets.get(strategy)).urls,
				});
			}
		}
	}

	/** @type {any} */
	let day = null;
	/** @type {any} */
	let dayLogs = null;
	if (only.has("day")) {
		step(`compressed day: ${settings.daySeconds} s of client load, ${DAY_TOKEN_LIFETIME_S} s tokens, every system at once…`);
		const dayBroker = await startBroker({ name: "day", apps: apps.brokerDay, apiBase: realWorld.url });
		const daySystems = await compressedDay({
			seconds: settings.daySeconds,
			crons: [dayBroker.fireCron],
			systems: [
				...apps.brokerDay.map((app) => ({ id: `broker-${app.mode}`, label: `broker (${app.mode})`, world: realWorld, appid: app.appid, urls: [dayBroker.url], headers: AUTH_HEADERS })),
				...baselineDaySystems,
			],
		});
		dayLogs = dayBroker.logCounts();
		requireSuccess("compressed day", daySystems.map((d) => ({ label: d.label, requests: d.attempted, failed: d.failed, firstError: d.first_error ?? undefined })));
		day = {
			seconds: settings.daySeconds,
			token_lifetime_s: DAY_TOKEN_LIFETIME_S,
			cron_interval_ms: CRON_INTERVAL_MS,
			fast_world_speedup: fastWorld ? FAST_WORLD_SPEEDUP : null,
			fast_world_token_lifetime_s: fastWorld ? fastLifetimeS(FAST_WORLD_SPEEDUP) : null,
			systems: daySystems,
		};
	}

	/** @type {any} */
	let registry = null;
	if (only.has("registry")) {
		step(`registry: ${REGISTRY_BENCH_APPS} apps and keys through the admin API, then hot GET /token beside /healthz…`);
		const registryBroker = await startBroker({ name: "registry", apps: [apps.broker.hot], apiBase: realWorld.url, bindings: { REGISTRY_KEY: randomBytes(32).toString("base64") } });
		registry = await measureRegistry({ broker: registryBroker, world: realWorld, secretApp: apps.broker.hot, n: REGISTRY_BENCH_APPS, settings });
		requireSuccess("registry", pointOutcomes(registry.points));
		await registryBroker.dispose();
	}

	/** @type {any[] | null} */
	let scale = null;
	if (only.has("scale")) {
		scale = [];
		for (const n of settings.scaleSizes) {
			const run = await measureScale({ n, trafficS: settings.scaleTrafficS, quietS: settings.scaleQuietS, step });
			console.error(`  scale N=${n}: registered in ${run.register_s} s; ${run.reads.refused_by_wechat} refused, ${run.reads.unavailable_503} × 503 of ${run.reads.total} reads; `
				+ `${run.alarms.late} of ${run.alarms.count} alarms late (p99 ${run.alarms.delay_p99_ms} ms); ${run.refreshes.made} refreshes of ${run.refreshes.planned} planned; `
				+ `${run.quiet.alarms_per_refresh} alarms/refresh, ${run.quiet.object_requests_per_app_hour_at_7200s_tokens} object requests/app/h at 7200 s tokens (poll: 60); watchdog ≤ ${run.watchdog.subrequests_max} subrequests; `
				+ `old poll ${run.old_poll_sample.objects_per_s} objects/s (a run at N: ${run.old_poll_sample.one_run_at_n_s} s); workerd ${run.workerd_rss_mib.after_traffic} MiB`);
			requireSuccess("scale", [{ label: `scale N=${n}`, requests: run.reads.total, failed: run.reads.unavailable_503 + run.reads.other_failures + run.reads.refused_by_wechat, firstError: run.reads.first_error ?? undefined }]);
			scale.push(run);
		}
	}

	const { openPlatform, wecomSuite } = await runGrantScenarios({ settings, only, step });

	const results = {
		generated_at: new Date().toISOString(),
		machine: { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model ?? "unknown", os: `${platform()} ${release()}` },
		settings: { ...settings, only: [...only] },
		build_s: round(build.seconds, 1),
		bundle,
		throughput: { broker: brokerPaths, baselines: baselineThroughput },
		gateway,
		tickets,
		stampede: { broker: brokerStampedes, baselines: baselineStampedeRows },
		storm: storms,
		day,
		registry,
		scale,
		open_platform: openPlatform,
		wecom_suite: wecomSuite,
		worker_logs: { main: mainLogs, day: dayLogs },
		skipped,
		duration_s: 0,
	};
	results.duration_s = round((performance.now() - benchStartedAt) / 1000, 1);
	const table = markdownTable(tableRows(results));
	const lines = headline(results);
	writeResults(settings.resultsPath, { ...results, headline: lines, table });
	console.log(table);
	console.log("");
	for (const line of lines) console.log(`- ${line}`);
	console.log(`\n${results.duration_s} s on ${results.machine.cpus} × ${results.machine.cpu_model}, Node ${process.version}. All figures: ${settings.resultsPath}.`);
	for (const line of skipped) console.log(`Skipped: ${line}`);
}

/** @param {{ label: string, concurrency: number, requests: number, failed: number }[]} points */
function pointOutcomes(points) {
	return points.map((p) => ({ label: `${p.label} c=${p.concurrency}`, requests: p.requests, failed: p.failed }));
}

/** @param {string} label @param {{ n: number, failed: number }[]} runs */
function burstOutcome(label, runs) {
	return { label, requests: runs.reduce((sum, r) => sum + r.n, 0), failed: runs.reduce((sum, r) => sum + r.failed, 0) };
}

cleanupOnSignals();
try {
	await main();
} catch (error) {
	// A failed scenario explains itself; anything else is the bench's own bug, with its stack.
	if (error instanceof BenchFailure) console.error(`bench: FAILED, nothing written. ${error.message}`);
	else if (!interrupted()) console.error(`bench: failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
	process.exitCode = 1;
} finally {
	await cleanupAll();
}
