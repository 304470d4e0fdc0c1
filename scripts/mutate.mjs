#!/usr/bin/env node
// @ts-check
/**
 * `npm run mutate [-- name-filter]`: does the suite notice when a protection is removed?
 *
 * Each mutation in scripts/mutations.mjs removes or weakens one protection in src/ and is named after
 * what it removes. For each, in a copy of this checkout (node_modules symlinked, so nothing here is
 * touched), the script applies that one change, checks the result still type-checks (a mutation that does
 * not is a mistake in the list), runs the test files that should notice, and prints `killed` (a test failed) or `survived` (every
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
import { MUTATIONS } from "./mutations.mjs";

/** One test run may take this long before the mutation counts as killed by a hang (a test timeout is 30 s). */
const RUN_TIMEOUT_MS = 240_000;

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
