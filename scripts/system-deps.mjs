#!/usr/bin/env node
// @ts-check
/**
 * The system packages `npm test` needs beside node_modules: nginx (the relay e2e test) and Chromium (the
 * dashboard test), both from Debian's packages. Run by `npm test` before vitest, so a fresh machine's
 * `npm install && npm test` has them: as root it installs what is missing with apt-get; otherwise it stops
 * and says what to install. Silent when everything is there.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Debian package → the binary the tests run. /usr/sbin is not on every user's PATH, so it is searched too. */
const PACKAGES = [
	{ name: "nginx", binary: "nginx", usedBy: "test/e2e/relay.test.ts" },
	{ name: "chromium", binary: "chromium", usedBy: "test/e2e/dashboard.test.ts" },
];

function onPath(/** @type {string} */ binary) {
	const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/bin"];
	return dirs.some((dir) => dir !== "" && existsSync(join(dir, binary)));
}

const missing = PACKAGES.filter((p) => !onPath(p.binary));
if (missing.length > 0) {
	const names = missing.map((p) => p.name).join(" ");
	const why = missing.map((p) => `${p.name} (${p.usedBy})`).join(", ");
	const isRoot = process.getuid?.() === 0;
	if (!isRoot || !onPath("apt-get")) {
		console.error(`npm test needs ${why}, from Debian's packages. As root, or with sudo:\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${names}`);
		process.exit(1);
	}
	console.error(`system-deps: installing ${names} with apt-get (about 30 s, once)…`);
	const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
	for (const args of [["update"], ["install", "-y", "--no-install-recommends", ...missing.map((p) => p.name)]]) {
		const result = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env });
		if (result.status !== 0) {
			console.error(`system-deps: apt-get ${args[0]} failed (${result.status ?? result.signal}); install ${names} by hand.`);
			process.exit(1);
		}
	}
	const still = missing.filter((p) => !onPath(p.binary));
	if (still.length > 0) {
		console.error(`system-deps: apt-get installed ${names}, but ${still.map((p) => p.binary).join(", ")} is still not found.`);
		process.exit(1);
	}
}
