#!/usr/bin/env node
// @ts-check
/**
 * `npm run mutate [-- name-filter]`: does the suite notice when a protection is removed?
 *
 * Each mutation below removes or weakens one protection in src/ and is named after what it removes. For
 * each, in a copy of this checkout (node_modules symlinked, so nothing here is touched), the script applies
 * that one change, checks the result still type-checks (a mutation that does not is a mistake in this
 * list), runs the test files that should notice, and prints `killed` (a test failed) or `survived` (every
 * test passed: the protection is unguarded). A `find` snippet no longer in its file is STALE: src/ changed
 * and the entry must follow it. Exits non-zero on any survivor, stale entry or mistake.
 *
 * Not part of `npm test`: it runs the worker tests once per mutation (about 10 minutes for the list).
 * `npm run mutate -- --check` only checks that every snippet is still in its file, exactly once (a second).
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** @typedef {{ name: string, file: string, find: string, replace: string, tests: string[] }} Mutation */

/** One test run may take this long before the mutation counts as killed by a hang (a test timeout is 30 s). */
const RUN_TIMEOUT_MS = 240_000;

/** @type {Mutation[]} */
const MUTATIONS = [
	// Authentication and the request boundary.
	{
		name: "constant-time key comparison: stop at the first matching key",
		file: "src/auth.ts",
		find: "if (crypto.subtle.timingSafeEqual(digest, await keyDigest(key))) match ??= key;",
		replace: "if (match) break;\n\t\tif (crypto.subtle.timingSafeEqual(digest, await keyDigest(key))) match ??= key;",
		tests: ["keys"],
	},
	{
		name: "constant-time key comparison: skip keys whose first byte differs",
		file: "src/auth.ts",
		find: "if (crypto.subtle.timingSafeEqual(digest, await keyDigest(key))) match ??= key;",
		replace: "const candidate = new Uint8Array(await keyDigest(key));\n\t\tif (candidate[0] !== new Uint8Array(digest)[0]) continue;\n\t\tif (crypto.subtle.timingSafeEqual(digest, candidate)) match ??= key;",
		tests: ["keys"],
	},
	{
		name: "constant-time key comparison: decide by an early-exit byte loop, call timingSafeEqual for show",
		file: "src/auth.ts",
		find: "if (crypto.subtle.timingSafeEqual(digest, await keyDigest(key))) match ??= key;",
		replace: "const candidate = new Uint8Array(await keyDigest(key));\n\t\tconst presentedBytes = new Uint8Array(digest);\n\t\tcrypto.subtle.timingSafeEqual(digest, candidate);\n\t\tif (candidate.every((b, i) => b === presentedBytes[i])) match ??= key;",
		tests: ["keys"],
	},
	{
		name: "bearer scope check (a key used for an app outside its apps)",
		file: "src/auth.ts",
		find: "if (principal.apps === \"*\" || principal.apps.has(appid)) return;",
		replace: "return;",
		tests: ["auth"],
	},
	{
		name: "admin check",
		file: "src/auth.ts",
		find: "if (principal.admin) return;",
		replace: "return;",
		tests: ["auth"],
	},
	{
		name: "Cache-Control: no-store on every response",
		file: "src/app.ts",
		find: "c.res.headers.set(\"Cache-Control\", \"no-store\");",
		replace: "",
		tests: ["http"],
	},
	{
		name: "ALLOWED_IPS",
		file: "src/app.ts",
		find: "if (config.allowedIps.length === 0) return next();",
		replace: "if (config.allowedIps.length >= 0) return next();",
		tests: ["sec"],
	},
	{
		name: "4 KiB body limit",
		file: "src/app.ts",
		find: "maxSize: MAX_BODY_BYTES,",
		replace: "maxSize: 1024 * 1024,",
		tests: ["http"],
	},
	{
		name: "512-character token limit on invalidation",
		file: "src/app.ts",
		find: " || reported.length > MAX_TOKEN_CHARS",
		replace: "",
		tests: ["limits"],
	},
	{
		name: "/healthz without I/O (it reads KV)",
		file: "src/app.ts",
		find: "app.get(\"/healthz\", (c) => c.json({ ok: true }));",
		replace: "app.get(\"/healthz\", async (c) => {\n\tawait c.env.TOKEN_CACHE.get(\"healthz\");\n\treturn c.json({ ok: true });\n});",
		tests: ["limits"],
	},
	{
		name: "/healthz without configuration (it loads and checks it)",
		file: "src/app.ts",
		find: "app.get(\"/healthz\", (c) => c.json({ ok: true }));",
		replace: "app.get(\"/healthz\", (c) => c.json({ ok: loadConfig(c.env).apps.size > 0 }));",
		tests: ["limits"],
	},
	{
		name: "no Retry-After on a 502",
		file: "src/app.ts",
		find: "...(retryAfterS !== undefined && code !== \"wechat_error\" && { retryAfterS }),",
		replace: "...(retryAfterS !== undefined && { retryAfterS }),",
		tests: ["limits"],
	},
	{
		name: "KV edge copy served only before its refreshAt",
		file: "src/edge-cache.ts",
		find: " || isDue(value, now)) return null;",
		replace: ") return null;",
		tests: ["edge"],
	},
	// The refresh engine: single flight, compare-and-refresh, lifetimes.
	{
		name: "single flight (join the refresh under way)",
		file: "src/token-authority.ts",
		find: "if (this.#flight) return this.#flight.promise;",
		replace: "",
		tests: ["cold", "inval"],
	},
	{
		name: "compare-and-refresh (a stale report costs nothing)",
		file: "src/token-authority.ts",
		find: "if (reported !== current.accessToken) {",
		replace: "if (reported !== current.accessToken && Date.now() < 0) {",
		tests: ["inval"],
	},
	{
		name: "stable: a normal call before spending one of the 20 daily forces",
		file: "src/token-authority.ts",
		find: "const normal = await this.#fetchAndStore(app, \"invalidate\", false, { unlessToken: reported });\n\t\t\tif (!normal.ok || normal.token.accessToken !== reported) return normal;",
		replace: "",
		tests: ["inval"],
	},
	{
		name: "a read waits for a forced refresh in flight",
		file: "src/token-authority.ts",
		find: "if (this.#flight?.forced) {",
		replace: "if (this.#flight?.forced && Date.now() < 0) {",
		tests: ["limits"],
	},
	{
		name: "failed refresh keeps serving the still-accepted token",
		file: "src/token-authority.ts",
		find: "return isUsable(still, Date.now()) ? ok(still) : outcome;",
		replace: "return outcome;",
		tests: ["errors"],
	},
	{
		name: "refresh-ahead margin",
		file: "src/lifetime.ts",
		find: "const REFRESH_AHEAD_FRACTION = 1 / 8;",
		replace: "const REFRESH_AHEAD_FRACTION = 0;",
		tests: ["cron", "modes"],
	},
	{
		name: "classic: reported lifetime capped at planned refresh + 300 s",
		file: "src/lifetime.ts",
		find: "return Math.min(token.expiresAt, Math.max(now, token.refreshAt) + CLASSIC_PREVIOUS_VALID_S * MS_PER_S);",
		replace: "return token.expiresAt;",
		tests: ["modes"],
	},
	{
		name: "classic: lifetime capped at 300 s after an unanswered call",
		file: "src/token-authority.ts",
		find: "if (!current || app.mode !== \"classic\" || failure.kind !== \"unreachable\") return current;",
		replace: "if (!current || app.mode !== \"classic\" || failure.kind !== \"unreachable\" || Date.now() > 0) return current;",
		tests: ["errors"],
	},
	{
		name: "expires_in under 60 s refused",
		file: "src/wechat/client.ts",
		find: "const MIN_EXPIRES_IN_S = 60;",
		replace: "const MIN_EXPIRES_IN_S = 1;",
		tests: ["errors"],
	},
	{
		name: "masked tokens in log lines",
		file: "src/log.ts",
		find: "return `${token.slice(0, VISIBLE_TOKEN_CHARS)}…(${token.length} chars)`;",
		replace: "return token;",
		tests: ["inval"],
	},
	// The cron and the edge copy.
	{
		name: "cron refreshes only when due",
		file: "src/token-authority.ts",
		find: "if (isUsable(current, now) && !isDue(current, now)) return { appid: app.appid, action: \"fresh\" };",
		replace: "",
		tests: ["cron"],
	},
	{
		name: "cron respects the failure backoff",
		file: "src/token-authority.ts",
		find: "if (now < retryAt) return { appid: app.appid, action: \"backing_off\" };",
		replace: "",
		tests: ["guard", "fault"],
	},
	{
		name: "edge copy written after a refresh",
		file: "src/token-authority.ts",
		find: "await this.#writeEdge(app, token, now);",
		replace: "",
		tests: ["edge"],
	},
	{
		name: "cron repairs a failed KV write of the object",
		file: "src/token-authority.ts",
		find: "if (!this.#state.edgeWritten && isUsable(current, Date.now())) await this.#writeEdge(app, current, Date.now());",
		replace: "",
		tests: ["repair"],
	},
	// Forced refreshes and quota.
	{
		name: "forced-refresh rate limit on invalidation (30 s)",
		file: "src/token-authority.ts",
		find: "const limited = this.#forcedRefreshLimit(now) ?? this.#quotaGuard(app, now);",
		replace: "const limited = this.#quotaGuard(app, now);",
		tests: ["inval", "limits"],
	},
	{
		name: "forced-refresh Retry-After is the time left of the 30 s",
		file: "src/token-authority.ts",
		find: "retryAfterS: Math.ceil(waitMs / 1_000),",
		replace: "retryAfterS: 86_400,",
		tests: ["limits"],
	},
	{
		name: "forced-refresh limit persisted before the upstream call",
		file: "src/token-authority.ts",
		find: "if (forced) await this.ctx.storage.put(STATE_KEY, this.#state);",
		replace: "",
		tests: ["limits"],
	},
	{
		name: "quota guard on invalidation",
		file: "src/token-authority.ts",
		find: "const limited = this.#forcedRefreshLimit(now) ?? this.#quotaGuard(app, now);",
		replace: "const limited = this.#forcedRefreshLimit(now);",
		tests: ["quota"],
	},
	{
		name: "quota guard on admin refresh",
		file: "src/token-authority.ts",
		find: "const limited = this.#forcedRefreshLimit(now) ?? this.#stableForceLimit(app, now) ?? this.#quotaGuard(app, now);",
		replace: "const limited = this.#forcedRefreshLimit(now) ?? this.#stableForceLimit(app, now);",
		tests: ["guard"],
	},
	{
		name: "20-a-day stable force limit on admin refresh",
		file: "src/token-authority.ts",
		find: "const limited = this.#forcedRefreshLimit(now) ?? this.#stableForceLimit(app, now) ?? this.#quotaGuard(app, now);",
		replace: "const limited = this.#forcedRefreshLimit(now) ?? this.#quotaGuard(app, now);",
		tests: ["inval"],
	},
	{
		name: "20-a-day stable force limit on invalidation",
		file: "src/token-authority.ts",
		find: "const limited = this.#stableForceLimit(app, Date.now());\n\t\t\tif (limited) return fail(limited);",
		replace: "",
		tests: ["limits"],
	},
	{
		name: "conserving mode: one attempt per refresh past the guard share",
		file: "src/token-authority.ts",
		find: "}, conserving ? 1 : undefined);",
		replace: "}, undefined);",
		tests: ["guard"],
	},
	{
		name: "conserving mode: 300 s between refreshes past the guard share",
		file: "src/token-authority.ts",
		find: "? CONSERVING_BACKOFF_S",
		replace: "? BACKOFF_BASE_S",
		tests: ["guard"],
	},
	// Backoff and retries.
	{
		name: "backoff growth (2 s, 4 s, 8 s …)",
		file: "src/token-authority.ts",
		find: "Math.min(BACKOFF_BASE_S * 2 ** (failures - 1), BACKOFF_CAP_S[failure.class])",
		replace: "Math.min(BACKOFF_BASE_S, BACKOFF_CAP_S[failure.class])",
		tests: ["backoff"],
	},
	{
		name: "60 s backoff cap for transient failures",
		file: "src/token-authority.ts",
		find: "retryable: 60,",
		replace: "retryable: 300,",
		tests: ["backoff"],
	},
	{
		name: "300 s backoff cap for fatal failures",
		file: "src/token-authority.ts",
		find: "fatal: 300 }",
		replace: "fatal: 3_600 }",
		tests: ["backoff"],
	},
	{
		name: "300 s backoff cap for quota failures",
		file: "src/token-authority.ts",
		find: "quota: 300,",
		replace: "quota: 3_600,",
		tests: ["backoff"],
	},
	{
		name: "backoff on reads of a due token",
		file: "src/token-authority.ts",
		find: "if (isUsable(current, now) && (!isDue(current, now) || now < retryAt)) return ok(current);",
		replace: "if (isUsable(current, now) && !isDue(current, now)) return ok(current);",
		tests: ["backoff"],
	},
	{
		name: "backoff on reads with no usable token",
		file: "src/token-authority.ts",
		find: "if (!isUsable(current, now) && now < retryAt && lastError) {",
		replace: "if (!isUsable(current, now) && Date.now() < 0 && lastError) {",
		tests: ["backoff", "errors"],
	},
	{
		name: "503 Retry-After is the backoff left",
		file: "src/token-authority.ts",
		find: "retryAfterS: Math.max(1, Math.ceil((retryAt - now) / 1_000)),",
		replace: "retryAfterS: 60,",
		tests: ["backoff"],
	},
	{
		name: "retry bound of 3 attempts",
		file: "src/wechat/retry.ts",
		find: "export const MAX_ATTEMPTS = 3;",
		replace: "export const MAX_ATTEMPTS = 4;",
		tests: ["backoff"],
	},
	{
		name: "only transient failures are retried",
		file: "src/wechat/retry.ts",
		find: " || result.failure.class !== \"retryable\"",
		replace: "",
		tests: ["backoff", "errors"],
	},
	// Alerts.
	{
		name: "alert retry queue (keep an alert the webhook refused)",
		file: "src/token-authority.ts",
		find: "if (!sent && alert!.failures + 1 < MAX_ALERT_SENDS) {",
		replace: "if (!sent && alert!.failures + 1 < 1) {",
		tests: ["alertq"],
	},
	{
		name: "alert dropped after 5 failed sends",
		file: "src/alerts.ts",
		find: "export const MAX_ALERT_SENDS = 5;",
		replace: "export const MAX_ALERT_SENDS = 50;",
		tests: ["alertq"],
	},
];

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const checkOnly = process.argv.includes("--check");
const filter = process.argv.slice(2).find((arg) => !arg.startsWith("--"));
const selected = MUTATIONS.filter((m) => !filter || m.name.includes(filter));

if (checkOnly) {
	const bad = selected.flatMap((m) => {
		const count = readFileSync(join(root, m.file), "utf8").split(m.find).length - 1;
		return count === 1 ? [] : [`${count === 0 ? "STALE" : "ERROR"}    ${m.name} (snippet found ${count} times in ${m.file})`];
	});
	for (const line of bad) console.log(line);
	console.log(`${selected.length - bad.length} of ${selected.length} snippets found exactly once`);
	process.exit(bad.length === 0 ? 0 : 1);
}

/** @param {string} cwd @param {string} command @param {string[]} args */
function run(cwd, command, args) {
	const result = spawnSync(command, args, {
		cwd, encoding: "utf8", timeout: RUN_TIMEOUT_MS,
		env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "true", FORCE_COLOR: "0" },
	});
	return { ok: result.status === 0, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

/** The checkout as git sees it (tracked and untracked, not ignored), copied; node_modules linked. */
function copyCheckout() {
	const dir = mkdtempSync(join(tmpdir(), "wx-mutate-"));
	const listed = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" });
	if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
	for (const file of listed.stdout.split("\0").filter(Boolean)) {
		mkdirSync(dirname(join(dir, file)), { recursive: true });
		try {
			cpSync(join(root, file), join(dir, file));
		} catch {
			// Listed by git but deleted in the work tree.
		}
	}
	symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir");
	return dir;
}

/**
 * The type checker, kept in this process across mutations: every unchanged file is parsed once, and only
 * the mutated file is checked again (a protection removed inside a module shows its type errors there).
 * A `tsc --noEmit` per mutation would cost 10-20 s each on a busy machine.
 * @param {string} dir
 */
function typeChecker(dir) {
	const configPath = join(dir, "tsconfig.json");
	const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
		...ts.sys,
		onUnRecoverableConfigFileDiagnostic: (d) => {
			throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
		},
	});
	if (!parsed) throw new Error(`cannot read ${configPath}`);
	const host = ts.createCompilerHost(parsed.options);
	/** @type {Map<string, ts.SourceFile>} */
	const cache = new Map();
	/** @type {string | undefined} */
	let fresh;
	const getSourceFile = host.getSourceFile.bind(host);
	host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
		if (fileName !== fresh && cache.has(fileName)) return cache.get(fileName);
		const file = getSourceFile(fileName, languageVersion, onError, shouldCreate);
		if (file && fileName !== fresh) cache.set(fileName, file);
		return file;
	};
	/** @type {ts.Program | undefined} */
	let program;
	/** @param {string} path @returns {string[]} the file's type errors, empty when it type-checks */
	return (path) => {
		fresh = path;
		cache.delete(path);
		program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options, host, oldProgram: program });
		const file = program.getSourceFile(path);
		if (!file) return [`${path} is not part of the TypeScript project`];
		return [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]
			.map((d) => ts.flattenDiagnosticMessageText(d.messageText, " "));
	};
}

/** @param {string[]} names */
const testFiles = (names) => names.map((name) => `test/worker/${name}.test.ts`);

const work = copyCheckout();
const typeErrors = typeChecker(work);
const bin = (/** @type {string} */ tool) => join(work, "node_modules", ".bin", tool);
/** @type {Array<{ name: string, verdict: "killed" | "survived" | "STALE" | "ERROR", note?: string }>} */
const results = [];
try {
	for (const file of new Set(selected.map((m) => join(work, m.file)))) {
		const errors = typeErrors(file);
		if (errors.length > 0) throw new Error(`${file} does not type-check before any mutation: ${errors[0]}`);
	}
	// The listed tests must pass on the unmutated code, or every mutation would look killed.
	const allTests = [...new Set(selected.flatMap((m) => m.tests))];
	const baseline = run(work, bin("vitest"), ["run", "--project", "worker", ...testFiles(allTests)]);
	if (!baseline.ok) {
		console.error(baseline.output.split("\n").slice(-40).join("\n"));
		throw new Error(`the listed test files fail without any mutation: fix them first (${allTests.join(", ")})`);
	}
	console.log(`baseline: ${allTests.length} test files pass unmutated; ${selected.length} mutations\n`);

	for (const mutation of selected) {
		const path = join(work, mutation.file);
		const original = readFileSync(path, "utf8");
		const count = original.split(mutation.find).length - 1;
		if (count !== 1) {
			const verdict = count === 0 ? "STALE" : "ERROR";
			const note = count === 0 ? `snippet no longer in ${mutation.file}` : `snippet found ${count} times in ${mutation.file}`;
			results.push({ name: mutation.name, verdict, note });
			console.log(`${verdict.padEnd(8)} ${mutation.name} (${note})`);
			continue;
		}
		writeFileSync(path, original.replace(mutation.find, mutation.replace));
		try {
			const errors = typeErrors(path);
			if (errors.length > 0) {
				const note = `does not type-check: ${errors[0]}`;
				results.push({ name: mutation.name, verdict: "ERROR", note });
				console.log(`ERROR    ${mutation.name} (${note})`);
				continue;
			}
			const started = Date.now();
			const tested = run(work, bin("vitest"), ["run", "--project", "worker", "--bail=1", ...testFiles(mutation.tests)]);
			const verdict = tested.ok ? "survived" : "killed";
			const note = `${mutation.tests.join(", ")}; ${((Date.now() - started) / 1000).toFixed(0)} s`;
			results.push({ name: mutation.name, verdict, note });
			console.log(`${verdict.padEnd(8)} ${mutation.name} (${note})`);
		} finally {
			writeFileSync(path, original);
		}
	}
} finally {
	rmSync(work, { recursive: true, force: true });
}

const tally = (/** @type {string} */ verdict) => results.filter((r) => r.verdict === verdict).length;
console.log(`\n${tally("killed")} killed, ${tally("survived")} survived, ${tally("STALE")} stale, ${tally("ERROR")} errors (of ${selected.length} mutations)`);
process.exitCode = results.every((r) => r.verdict === "killed") ? 0 : 1;
