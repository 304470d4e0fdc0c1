/** Starts one WeChat simulator for the whole run, with every test app registered, and tells the pool its URL. */
import type { TestProject } from "vitest/node";
import { startSimulator } from "../sim/server.js";
import { allTestApps, allWeComApps } from "./worker/fixtures";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const sim = await startSimulator({
		port: 0,
		apps: allTestApps().map(({ appid, secret }) => ({ appid, secret })),
		wecomApps: allWeComApps().map(({ corpid, agentid, secret }) => ({ corpid, secret, ...(agentid && { agentid }) })),
	});
	project.provide("simUrl", sim.url);
	return () => sim.close();
}
