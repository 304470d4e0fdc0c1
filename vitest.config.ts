import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { apiKeysJson, REGISTRY_TEST_KEY, wechatAppsJson, wechatComponentsJson, wecomSuitesJson } from "./test/worker/fixtures.ts";
import { dropKnownWorkerdNoise } from "./test/workerd-noise.ts";

// Three workerd log lines that are the tools' own and carry no information (see test/workerd-noise.ts).
dropKnownWorkerdNoise();

export default defineConfig({
	test: {
		projects: [
			{
				test: { name: "sim", include: ["test/sim/**/*.test.js"], environment: "node" },
			},
			{
				// The bench's own rules (bench/failures.mjs, bench/settings.mjs); the bench itself is `npm run bench`.
				test: { name: "bench", include: ["test/bench/**/*.test.js"], environment: "node" },
			},
			{
				// The built bundle in Miniflare with real nginx and Chromium around it (test/e2e/stack.ts).
				test: {
					name: "e2e",
					include: ["test/e2e/**/*.test.ts"],
					environment: "node",
					globalSetup: ["test/e2e/global-setup.ts"],
					// Starting workerd, nginx or Chromium takes a second or two; a busy CI machine more.
					testTimeout: 30_000,
					hookTimeout: 60_000,
				},
			},
			{
				plugins: [
					cloudflareTest(async ({ inject }) => ({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							bindings: {
								WECHAT_API_BASE: inject("simUrl"),
								WECHAT_APPS: wechatAppsJson(),
								WECHAT_COMPONENTS: wechatComponentsJson(),
								WECOM_SUITES: wecomSuitesJson(),
								// The simulator serves WeCom under /qyapi: a WeCom call sent to WeChat's base fails.
								WECOM_API_BASE: `${inject("simUrl")}/qyapi`,
								API_KEYS: await apiKeysJson(),
								REGISTRY_KEY: REGISTRY_TEST_KEY,
								// The simulator is local: a hang is detected in 300 ms instead of 5 s.
								WECHAT_TIMEOUT_MS: "300",
								ALERT_WEBHOOK_URL: `${inject("simUrl")}/cgi-bin/webhook/send?key=broker-tests`,
							},
						},
					})),
				],
				test: {
					name: "worker",
					include: ["test/worker/**/*.test.ts"],
					globalSetup: ["test/global-setup.ts"],
					setupFiles: ["test/worker/setup.ts"],
					// The simulator and its clock are shared by every file: one file at a time keeps
					// one file's clock travel from moving another file's tokens.
					fileParallelism: false,
					// Nothing sleeps, but some tests make hundreds of round trips (or /status wakes every
					// test app's object); a slow CI machine needs more than the 5 s default.
					testTimeout: 30_000,
				},
			},
		],
	},
});
