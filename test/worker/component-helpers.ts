/**
 * What the component tests share: the simulated open platform's control API, ticket pushes delivered to the
 * broker's event URL as WeChat sends them, and the component object's alarm.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { componentAuthority } from "../../src/authority/stub";
import { KEYS, type TestComponent } from "./fixtures";
import { simUrl, travel } from "./helpers";

export async function simOpen(path: string, body?: unknown): Promise<any> {
	const res = await fetch(`${simUrl}/__sim/open/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) });
	const parsed = await res.json();
	if (res.status !== 200) throw new Error(JSON.stringify(parsed));
	return parsed;
}

/** The simulator's view of the component: its call counts and its push schedule. */
export async function componentInfo(component: TestComponent): Promise<{ stats: Record<string, number>; schedule: { running: boolean } }> {
	const res = await fetch(`${simUrl}/__sim/open/components/${component.component_appid}`);
	return (await res.json()) as { stats: Record<string, number>; schedule: { running: boolean } };
}

/** The simulator's call counts for the component (api_component_token, api_start_push_ticket, …). */
export async function componentStats(component: TestComponent): Promise<Record<string, number>> {
	return (await componentInfo(component)).stats;
}

/** A fresh ticket push made by the simulator and delivered to the broker's event URL; the answer's text. */
export async function pushTicket(component: TestComponent): Promise<string> {
	await simOpen(`components/${component.component_appid}/take`);
	await simOpen(`components/${component.component_appid}/push`, {});
	const { pushes } = await simOpen(`components/${component.component_appid}/take`) as { pushes: { query: string; body: string }[] };
	const push = pushes.at(-1)!;
	const res = await exports.default.fetch(new Request(`https://broker.test/open/${component.component_appid}/events?${push.query}`, {
		method: "POST", headers: { "content-type": "text/xml" }, body: push.body,
	}));
	return res.text();
}

/** The component object's armed alarm (ms), or null. */
export function componentAlarm(component: TestComponent): Promise<number | null> {
	return runInDurableObject(componentAuthority(env, component.component_appid), (_o, state) => state.storage.getAlarm());
}

/** Moves the clock to the component's alarm (if ahead) and delivers it; throws when none is armed. */
export async function ringComponent(component: TestComponent): Promise<number> {
	const at = await componentAlarm(component);
	if (at === null) throw new Error(`${component.component_appid} has no alarm armed`);
	const ahead = Math.max(0, Math.ceil((at - Date.now()) / 1_000));
	if (ahead > 0) await travel(ahead);
	await runDurableObjectAlarm(componentAuthority(env, component.component_appid));
	return ahead;
}

/** The component object's /status entry (its token, incident, and tickets). */
export async function componentStatus(component: TestComponent): Promise<Record<string, any>> {
	const id = component.component_appid;
	return (await componentAuthority(env, id).status(`component:${id}`)) as unknown as Record<string, any>;
}

/** A key of the registry scoped to `scope` (e.g. component:<id>), made through POST /admin/keys; the key itself. */
export async function registryKey(name: string, scope: string[], admin = false): Promise<string> {
	const res = await exports.default.fetch(new Request("https://broker.test/admin/keys", {
		method: "POST", headers: { authorization: `Bearer ${KEYS.admin}`, "content-type": "application/json" },
		body: JSON.stringify({ name, apps: scope, admin }),
	}));
	const body = (await res.json()) as { key?: string };
	if (res.status !== 201 || !body.key) throw new Error(`POST /admin/keys: ${res.status} ${JSON.stringify(body)}`);
	return body.key;
}

/** A push the simulator made for a component (its InfoType, the query and body WeChat sends). */
export interface SimPush { info_type: string; query: string; body: string }

/** The account consents on WeChat's page: the pushes that made (not tickets), and the code. */
export async function authoriseAccount(component: TestComponent, authorizerAppid: string, push = true): Promise<{ auth_code: string; pushes: SimPush[] }> {
	await simOpen(`components/${component.component_appid}/take`);
	const { auth_code } = await simOpen(`components/${component.component_appid}/authorize`, { authorizer_appid: authorizerAppid, push });
	const { pushes } = await simOpen(`components/${component.component_appid}/take`) as { pushes: SimPush[] };
	return { auth_code, pushes: pushes.filter((p) => p.info_type !== "component_verify_ticket") };
}

/** Delivers a push to the event URL as WeChat does, then waits for the component's background work. */
export async function deliverPush(component: TestComponent, push: SimPush): Promise<{ status: number; text: string }> {
	const res = await exports.default.fetch(new Request(`https://broker.test/open/${component.component_appid}/events?${push.query}`, {
		method: "POST", headers: { "content-type": "text/xml" }, body: push.body,
	}));
	const answer = { status: res.status, text: await res.text() };
	await componentAuthority(env, component.component_appid).idle();
	return answer;
}
