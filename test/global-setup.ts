/**
 * Starts one WeChat simulator for the whole run, with every test app registered, and tells the pool its URL.
 * Its clock is frozen and moves only when a test travels (helpers.ts), like the broker's faked Date: on the
 * real clock it would run ahead of the broker by however long the run takes, which a 120 s token notices
 * (modes.test.ts) once a test makes a few hundred round trips.
 */
import type { TestProject } from "vitest/node";
import { startSimulator } from "../sim/server.js";
import { shiftToTestTimeOfDay } from "./time-of-day";
import { weComVectors } from "./wecom-crypto-vectors";
import { allInstallTestSuites, allTestApps, allTestComponents, allTestSuites, allTokenTestSuites, allWeComApps, REGISTRY_TEST_COMPONENTS, REGISTRY_TEST_SUITES, registryTestComponent, registryTestSuite } from "./worker/fixtures";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const frozenAt = Date.now() + shiftToTestTimeOfDay(Date.now());
	const sim = await startSimulator({
		port: 0,
		now: () => frozenAt,
		apps: allTestApps().map(({ appid, secret }) => ({ appid, secret })),
		wecomApps: allWeComApps().map(({ corpid, agentid, secret }) => ({ corpid, secret, ...(agentid && { agentid }) })),
		// No event URL: the broker under test has no port, so tests take the pushes and deliver them.
		components: [...allTestComponents(), ...Array.from({ length: REGISTRY_TEST_COMPONENTS }, (_, n) => registryTestComponent(n))],
		suites: [...allTestSuites(), ...allTokenTestSuites(), ...allInstallTestSuites(), ...Array.from({ length: REGISTRY_TEST_SUITES }, (_, n) => registryTestSuite(n))],
	});
	project.provide("simUrl", sim.url);
	project.provide("wecomVectors", weComVectors());
	return () => sim.close();
}
