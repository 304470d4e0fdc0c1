/**
 * Builds the deployable bundle once for the e2e project (`wrangler deploy --dry-run`, what `npm run build`
 * does), into .wrangler/ so that it never races `npm run build` or the bench over dist/.
 */
import { execFileSync } from "node:child_process";
import type { TestProject } from "vitest/node";

const OUT_DIR = ".wrangler/e2e-dist";

export default function setup(project: TestProject): void {
	execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", OUT_DIR], {
		stdio: ["ignore", "ignore", "pipe"],
		env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
	});
	project.provide("bundlePath", `${OUT_DIR}/index.js`);
}
