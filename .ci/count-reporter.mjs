// @ts-check
/**
 * A vitest reporter for CI that counts every failure, not only failed tests: a test file that fails to
 * import, a beforeAll/afterAll hook or describe body that throws, and an error thrown outside any test
 * (an unhandled rejection) each count as one failure. Vitest's JSON reporter counts none of those in
 * numFailedTests, so a broken file could print "233 passed, 0 failed".
 *
 * Writes {passed, failed, skipped, problems} to the file named by COUNT_REPORT_FILE.
 */
import { writeFileSync } from "node:fs";

/** @typedef {import("vitest/node").TestModule} TestModule */
/** @typedef {import("vitest/node").TestSuite} TestSuite */

export default class CountReporter {
	/**
	 * @param {ReadonlyArray<TestModule>} modules
	 * @param {ReadonlyArray<{ message?: string }>} unhandledErrors
	 */
	onTestRunEnd(modules, unhandledErrors) {
		let passed = 0;
		let failed = 0;
		let skipped = 0;
		/** @type {string[]} */
		const problems = [];
		for (const module of modules) {
			for (const test of module.children.allTests()) {
				const state = test.result().state;
				if (state === "passed") passed++;
				else if (state === "failed") failed++;
				else skipped++;
			}
			/** @type {Array<TestModule | TestSuite>} */
			const scopes = [module, ...module.children.allSuites()];
			for (const scope of scopes) {
				// Errors of the file or suite itself: import errors, hooks, code outside any test.
				for (const error of scope.errors()) {
					failed++;
					problems.push(`${module.relativeModuleId}${scope === module ? "" : ` > ${/** @type {TestSuite} */ (scope).fullName}`}: ${error.message ?? "error"}`);
				}
			}
			// A module that failed without a recorded error or failed test still failed.
			if (module.state() === "failed" && module.errors().length === 0 && !hasFailedTest(module)) {
				failed++;
				problems.push(`${module.relativeModuleId}: failed`);
			}
		}
		for (const error of unhandledErrors) {
			failed++;
			problems.push(`unhandled error: ${error.message ?? "error"}`);
		}
		const file = process.env.COUNT_REPORT_FILE;
		if (file) writeFileSync(file, JSON.stringify({ passed, failed, skipped, problems }));
	}
}

/** @param {TestModule} module */
function hasFailedTest(module) {
	for (const _ of module.children.allTests("failed")) return true;
	return false;
}
