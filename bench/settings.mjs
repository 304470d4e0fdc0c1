// @ts-check
/**
 * What `npm run bench` measures and for how long. Every knob is a flag or an environment variable, so a
 * slower machine can shorten the run and a quiet one can lengthen it; with the defaults the whole bench
 * takes ~25 minutes on 2 cores, 15 of them the scale scenario, plus the open-platform and wecom-suite
 * scenarios: ~10 minutes each at 1,000 and ~27 each at 10,000 on quiet cores (~54 grants a second; each stops
 * with advice when granting outlasts the first refresh, as it does on a heavily shared machine). `--only`
 * picks scenarios; `--only open-platform --open 10000` runs the open platform alone at 10,000 authorizers.
 *
 *   --seconds N      | BENCH_SECONDS      seconds per throughput point (default 2)
 *   --repeats N      | BENCH_REPEATS      timings repeated, medians reported (default 3)
 *   --concurrency L  | BENCH_CONCURRENCY  comma-separated connection counts (default 1,16,64)
 *   --stampede L     | BENCH_STAMPEDE     comma-separated burst sizes (default 100,1000)
 *   --day-seconds N  | BENCH_DAY_SECONDS  length of the compressed-day run (default 150)
 *   --scale L        | BENCH_SCALE        comma-separated app counts of the scale scenario (default 1000,10000)
 *   --scale-seconds T,Q | BENCH_SCALE_SECONDS  its traffic and quiet phases in s (default: two refresh
 *                                        intervals of its token lifetime, bench/scenarios/scale.mjs)
 *   --open L         | BENCH_OPEN         comma-separated authorizer counts of the open-platform scenario
 *                                        (default 1000,10000)
 *   --open-seconds T,Q | BENCH_OPEN_SECONDS  its traffic and quiet phases in s (default: as scale's, from the
 *                                        authorizer token's lifetime, bench/open-figures.mjs)
 *   --open-pushes M  | BENCH_OPEN_PUSHES  ticket pushes in its burst (default 2000)
 *   --wecom L        | BENCH_WECOM        comma-separated installed-company counts of the wecom-suite scenario
 *                                        (default 1000,10000)
 *   --wecom-seconds T,Q | BENCH_WECOM_SECONDS  its traffic and quiet phases in s (default: as scale's, from
 *                                        the corp token's lifetime, bench/open-figures.mjs wecomLifetimes)
 *   --only L         | BENCH_ONLY         comma-separated scenarios to run (default: all of SCENARIOS); a
 *                                        partial run writes bench/.tmp/results-partial.json, never results.json
 *   --no-baselines   | BENCH_BASELINES=0  skip the Redis baselines
 *                      BENCH_REDIS_SERVER the redis-server binary (default: redis-server on PATH)
 */
import { parseArgs } from "node:util";

/**
 * @typedef {object} Settings
 * @property {number} pointS          seconds of load per throughput point
 * @property {number} warmupS         seconds of unmeasured load before a target's first point
 * @property {number} repeats
 * @property {number[]} concurrencies
 * @property {number[]} stampedeSizes
 * @property {number} daySeconds
 * @property {number[]} scaleSizes     apps per scale run (issue 17)
 * @property {number | null} scaleTrafficS    seconds of readers per scale run (null: from the lifetime)
 * @property {number | null} scaleQuietS      seconds with no client per scale run (null: from the lifetime)
 * @property {number[]} openSizes      authorizers per open-platform run (issue 18)
 * @property {number | null} openTrafficS     seconds of readers per open-platform run (null: from the lifetime)
 * @property {number | null} openQuietS       seconds with no client per open-platform run (null: from the lifetime)
 * @property {number[]} wecomSizes     installed companies per wecom-suite run (issue 19)
 * @property {number | null} wecomTrafficS    seconds of readers per wecom-suite run (null: from the lifetime)
 * @property {number | null} wecomQuietS      seconds with no client per wecom-suite run (null: from the lifetime)
 * @property {number} openPushes       ticket pushes in each open-platform run's burst
 * @property {boolean} baselines
 * @property {ReadonlySet<Scenario>} only   the scenarios to run
 * @property {boolean} partial              not every scenario runs
 * @property {string} resultsPath
 */

/** Each runs for the broker and, unless skipped, the baselines; the bundle is measured on every run. */
export const SCENARIOS = /** @type {const} */ (["throughput", "gateway", "stampede", "storm", "day", "tickets", "registry", "scale", "open-platform", "wecom-suite"]);
/** @typedef {typeof SCENARIOS[number]} Scenario */

/** @param {string} raw @returns {Set<Scenario>} */
function scenarios(raw) {
	const names = raw.split(",").map((part) => part.trim()).filter(Boolean);
	const unknown = names.filter((name) => !(/** @type {readonly string[]} */ (SCENARIOS)).includes(name));
	if (names.length === 0 || unknown.length > 0) {
		throw new Error(`--only must list scenarios out of ${SCENARIOS.join(", ")}, got ${JSON.stringify(raw)}`);
	}
	return new Set(/** @type {Scenario[]} */ (names));
}

/** @param {string} name @param {string} raw @param {number} min @param {number} max */
function number(name, raw, min, max) {
	const value = Number(raw);
	if (raw.trim() === "" || !Number.isFinite(value) || value < min || value > max) {
		throw new Error(`${name} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
	}
	return value;
}

/** @param {string} name @param {string} raw @param {number} max */
function list(name, raw, max) {
	const values = raw.split(",").map((part) => number(name, part, 1, max));
	if (values.some((v) => !Number.isInteger(v))) throw new Error(`${name} must list whole numbers, got ${JSON.stringify(raw)}`);
	return values;
}

/**
 * Traffic and quiet seconds `T,Q` of a refresh-by-alarm scenario; unset, both null (from the lifetime).
 * @param {string} name @param {string | undefined} given
 */
function phases(name, given) {
	if (given === undefined) return { trafficS: null, quietS: null };
	const [trafficS = 150, quietS = 90] = list(name, given, 1200);
	return { trafficS, quietS };
}

/**
 * @param {string[]} [argv]
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {Settings}
 */
export function readSettings(argv = process.argv.slice(2), env = process.env) {
	const { values } = parseArgs({
		args: argv,
		options: {
			seconds: { type: "string" },
			repeats: { type: "string" },
			concurrency: { type: "string" },
			stampede: { type: "string" },
			"day-seconds": { type: "string" },
			scale: { type: "string" },
			"scale-seconds": { type: "string" },
			open: { type: "string" },
			"open-seconds": { type: "string" },
			"open-pushes": { type: "string" },
			wecom: { type: "string" },
			"wecom-seconds": { type: "string" },
			only: { type: "string" },
			"no-baselines": { type: "boolean" },
		},
	});
	const only = scenarios(values.only ?? env.BENCH_ONLY ?? SCENARIOS.join(","));
	const partial = SCENARIOS.some((name) => !only.has(name));
	const pointS = number("--seconds", values.seconds ?? env.BENCH_SECONDS ?? "2", 0.5, 60);
	return {
		pointS,
		// JIT, connection pools and the Durable Object's first instantiation settle within a second.
		warmupS: Math.min(1, pointS),
		repeats: number("--repeats", values.repeats ?? env.BENCH_REPEATS ?? "3", 1, 15),
		concurrencies: list("--concurrency", values.concurrency ?? env.BENCH_CONCURRENCY ?? "1,16,64", 1024),
		// Beyond ~4000 the client runs out of sockets before the server is tested.
		stampedeSizes: list("--stampede", values.stampede ?? env.BENCH_STAMPEDE ?? "100,1000", 4000),
		// At least two 60 s token lifetimes (day.mjs), or "calls per lifetime" says nothing; 150 s is 2.5.
		daySeconds: number("--day-seconds", values["day-seconds"] ?? env.BENCH_DAY_SECONDS ?? "150", 120, 600),
		scaleSizes: list("--scale", values.scale ?? env.BENCH_SCALE ?? "1000,10000", 100_000),
		// Unset, each N's phases cover two refreshes of every app (scale.mjs defaultPhases).
		...(() => {
			const { trafficS, quietS } = phases("--scale-seconds", values["scale-seconds"] ?? env.BENCH_SCALE_SECONDS);
			return { scaleTrafficS: trafficS, scaleQuietS: quietS };
		})(),
		openSizes: list("--open", values.open ?? env.BENCH_OPEN ?? "1000,10000", 100_000),
		...(() => {
			const { trafficS, quietS } = phases("--open-seconds", values["open-seconds"] ?? env.BENCH_OPEN_SECONDS);
			return { openTrafficS: trafficS, openQuietS: quietS };
		})(),
		openPushes: number("--open-pushes", values["open-pushes"] ?? env.BENCH_OPEN_PUSHES ?? "2000", 1, 10_000),
		wecomSizes: list("--wecom", values.wecom ?? env.BENCH_WECOM ?? "1000,10000", 100_000),
		...(() => {
			const { trafficS, quietS } = phases("--wecom-seconds", values["wecom-seconds"] ?? env.BENCH_WECOM_SECONDS);
			return { wecomTrafficS: trafficS, wecomQuietS: quietS };
		})(),
		baselines: !(values["no-baselines"] ?? env.BENCH_BASELINES === "0"),
		only,
		partial,
		// A partial run must not replace the full run's figures, which bench/README.md quotes.
		resultsPath: partial ? "bench/.tmp/results-partial.json" : "bench/results.json",
	};
}
