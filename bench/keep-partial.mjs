#!/usr/bin/env node
// @ts-check
/**
 * `node bench/keep-partial.mjs open_platform`: copies sections of a partial run (bench/.tmp/results-partial.json,
 * which `--only` writes so that it never replaces the full run's figures) into bench/results.json, each with
 * a `<section>_run` entry saying which run, machine and commit it came from. How a long scenario run on its
 * own (scale, open-platform) joins the full run's file. `--append` adds a section's runs (one per N) to those
 * already kept, and its run entry to a list, instead of replacing them.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeResults } from "./report.mjs";

const PARTIAL = "bench/.tmp/results-partial.json";
const FULL = "bench/results.json";

const append = process.argv.includes("--append");
const sections = process.argv.slice(2).filter((arg) => arg !== "--append");
if (sections.length === 0) {
	console.error(`usage: node bench/keep-partial.mjs <section>… (e.g. open_platform): copies them from ${PARTIAL} into ${FULL}`);
	process.exit(2);
}
const partial = JSON.parse(readFileSync(PARTIAL, "utf8"));
const full = JSON.parse(readFileSync(FULL, "utf8"));
let commit = "unknown";
try {
	commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
} catch {
	// Not a checkout: the run's other fields still say when and where.
}
for (const section of sections) {
	if (partial[section] === null || partial[section] === undefined) {
		console.error(`${PARTIAL} has no ${section}: run that scenario with --only first`);
		process.exit(1);
	}
	const run = { generated_at: partial.generated_at, duration_s: partial.duration_s, machine: partial.machine, commit, settings: partial.settings, worker_logs: partial.worker_logs };
	if (append && Array.isArray(full[section]) && Array.isArray(partial[section])) {
		full[section] = [...full[section], ...partial[section]];
		full[`${section}_run`] = [full[`${section}_run`], run].flat().filter(Boolean);
	} else {
		full[section] = partial[section];
		full[`${section}_run`] = run;
	}
}
writeResults(FULL, full);
console.log(`${FULL}: ${sections.join(", ")} from the run of ${partial.generated_at}`);
