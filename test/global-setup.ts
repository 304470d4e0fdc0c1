/** Starts one WeChat simulator for the whole run, with every test app registered, and tells the pool its URL. */
import type { TestProject } from "vitest/node";
import { startSimulator } from "../sim/server.js";
import { allTestApps } from "./worker/fixtures";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const sim = await startSimulator({ port: 0, apps: allTestApps().map(({ appid, secret }) => ({ appid, secret })) });
	project.provide("simUrl", sim.url);
	return () => sim.close();
}
