/**
 * public/openapi.json, the broker's OpenAPI 3.1 document (served at GET /openapi.json as a static file):
 * - it is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator, the specification's own JSON Schema), its
 *   schemas are valid JSON Schema 2020-12 (Ajv, strict), and every example it gives matches its schema;
 * - it documents every route the broker answers (src/routes/route-table.ts, src/gateway/paths.ts) and no other;
 * - every documented example request, sent to the built broker against the WeChat simulator in an order that
 *   works (an app is created before it is read), gets the documented status and a body its schema admits.
 * `DUMP_ANSWERS=1` prints every answer, for refreshing the examples after a change.
 */
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANSWERED_PATHS, FORWARDED_PREFIXES, REFUSED_PREFIX } from "../../src/gateway/paths";
import { ROUTES, STATIC_FILES } from "../../src/routes/route-table";
import { operations, resolve, scenarios, schemaValidator, type Json, type Scenario } from "./openapi-scenarios";
import { startBroker, startSimulator, type Broker, type Simulator } from "./stack";

const doc = JSON.parse(readFileSync("public/openapi.json", "utf8"));
const schemaAt = schemaValidator(doc);

// The deployment the examples describe: every value below is the documented fake one.
const APPID = "wx1234567890abcdef";
const WECOM = { kind: "wecom", corpid: "ww1234567890abcdef", agentid: "1000002", secret: "wecom-agent-secret-of-the-example" } as const;
const APP_SECRET = "0123456789abcdef0123456789abcdef";
const ADMIN_KEY = "wxb_0123456789abcdef0123456789abcdef0123456789abcdef";
/** A key that is not admin and may use no app of the examples: what every documented 403 is sent with. */
const READER_KEY = "reader-key-scoped-elsewhere-0123456789";
const FAKE_TOKEN = /fake-access-token-of-([A-Za-z0-9_-]+)$/;

/** The order the scenarios run in (each operation's own scenarios in the document's order). */
const ORDER = [
	"getHealthz", "getOpenApi", "getDashboard",
	// /health before the card ticket WeChat refuses: that refusal opens an incident (see the report in getTicket's example).
	"getToken", "invalidateToken", "refreshToken", "signJssdkConfig", "getStatus", "getHealth", "getTicket", "refreshTicket",
	"gatewayClassicToken", "gatewayStableToken", "gatewayWeComToken", "gatewayTicket", "gatewayWeComCorpTicket", "gatewayWeComAgentTicket",
	"gatewayForwardGet", "gatewayForwardPost", "gatewaySnsRefused",
	"getRegistry", "putApp", "getApp", "listApps", "createKey", "listKeys", "updateKey", "revokeKey", "resealRegistry", "deleteApp",
	"putComponent", "getComponent", "componentEvents", "getComponentToken", "gatewayComponentToken", "createAuthUrl", "exchangeAuthorization", "listAuthorizers", "syncAuthorizers",
	"putSuite", "getSuite", "suiteUrlCheck", "suiteEvents", "getSuiteToken", "getProviderToken", "gatewaySuiteToken", "createInstallUrl", "exchangeInstall", "listInstalls", "syncInstalls",
];

let sim: Simulator;
let broker: Broker & { logs: string[] };

/** What a scenario needs the simulator to do first: WeChat refusing this account a card ticket. */
const SETUP: Record<string, () => Promise<void>> = {
	"getTicket/no_card_permission": () => simFault({ appid: APPID, endpoint: "getticket", kind: "errcode", errcode: 48001, times: 1 }),
};

async function simFault(fault: Record<string, unknown>): Promise<void> {
	const res = await fetch(`${sim.url}/__sim/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(fault) });
	expect(res.status).toBe(200);
	await res.arrayBuffer();
}

beforeAll(async () => {
	sim = await startSimulator({
		apps: [
			{ appid: APPID, secret: APP_SECRET },
			{ appid: "wxfedcba0987654321", secret: APP_SECRET },
			// The account of the "wrong_secret" example: WeChat knows another secret for it.
			{ appid: "wx1111111111111111", secret: "the-real-appsecret-nobody-typed" },
		],
		wecomApps: [{ corpid: WECOM.corpid, agentid: WECOM.agentid, secret: WECOM.secret }],
	});
	broker = await startBroker({
		apps: [{ appid: APPID, secret: APP_SECRET, mode: "stable" }, WECOM],
		keys: [{ name: "ops", key: ADMIN_KEY, apps: ["*"], admin: true }, { name: "reader", key: READER_KEY, apps: ["wx0000000000000000"] }],
		vars: { WECHAT_API_BASE: sim.url, WECOM_API_BASE: `${sim.url}/qyapi` },
	});
});

afterAll(async () => {
	await broker?.dispose();
	await sim?.close();
});

describe("the document", () => {
	it("is valid OpenAPI 3.1, and its operation ids are unique and its path parameters declared", async () => {
		const validator = new Validator();
		const result = await validator.validate(structuredClone(doc));
		expect(result.errors ?? []).toEqual([]);
		expect(result.valid).toBe(true);
		expect(validator.version).toBe("3.1");
		const ops = operations(doc);
		expect(new Set(ops.map((o) => o.id)).size).toBe(ops.length);
		for (const { id, path, op } of ops) {
			const declared = (op.parameters ?? []).filter((p: { in: string }) => p.in === "path").map((p: { name: string }) => p.name).sort();
			expect(declared, id).toEqual([...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort());
		}
	});

	it("documents every route the broker answers, with its methods, and no route it does not", () => {
		const documented = new Map(Object.entries<Record<string, unknown>>(doc.paths).map(([path, item]) => [path, Object.keys(item).filter((k) => k !== "parameters").map((m) => m.toUpperCase()).sort()]));
		const expected = new Map<string, string[]>();
		for (const [path, methods] of Object.entries(ROUTES)) expected.set(path.replace(/:([a-z_]+)/g, "{$1}"), [...methods].sort());
		for (const path of Object.keys(STATIC_FILES)) expected.set(path, ["GET"]);
		for (const path of ANSWERED_PATHS) expected.set(path, documented.get(path) ?? ["(missing)"]);
		expected.set("/cgi-bin/{api}", ["GET", "POST"]);
		expected.set(`${REFUSED_PREFIX}{api}`, ["GET"]);
		expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(expected));
		// The gateway's token and ticket endpoints each have their one method.
		for (const path of ANSWERED_PATHS) expect(documented.get(path), path).toHaveLength(1);
		// One generic operation stands for every forwarded family: its description names each.
		const api = resolve(doc, "#/paths/~1cgi-bin~1{api}/get").parameters.find((p: { name: string }) => p.name === "api");
		for (const prefix of FORWARDED_PREFIXES.filter((p) => p !== "/cgi-bin/")) expect(api.description, prefix).toContain(`\`${prefix}\``);
	});

	it("has only examples its own schemas admit, and a documented answer for every request example", () => {
		let count = 0;
		for (const operation of operations(doc)) {
			for (const scenario of scenarios(doc, operation)) {
				count++;
				if (scenario.mediaType !== "application/json") continue;
				const validate = schemaAt(scenario.schemaPointer);
				expect(validate(scenario.example), `${operation.id}/${scenario.name}: ${JSON.stringify(validate.errors)}`).toBe(true);
				// A request that is meant to succeed is one the request schema admits.
				if (scenario.body && scenario.status < 300) {
					const request = schemaAt(scenario.body.schemaPointer);
					expect(request(scenario.body.value), `${operation.id}/${scenario.name} request: ${JSON.stringify(request.errors)}`).toBe(true);
				}
			}
		}
		expect(count).toBeGreaterThanOrEqual(80);
	});

	it("is served at /openapi.json without a key, as JSON, cacheable, never sniffed, exactly as committed", async () => {
		const res = await fetch(`${broker.url}/openapi.json`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/^application\/json/);
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
		expect(res.headers.get("cache-control")).toBe("public, max-age=300, must-revalidate");
		expect(res.headers.get("access-control-allow-origin")).toBe("*");
		expect(await res.json()).toEqual(doc);
	});
});

/** A live token for an app (what `…fake-access-token-of-<appid>` stands for). */
async function liveToken(appid: string): Promise<string> {
	const res = await fetch(`${broker.url}/token?appid=${appid}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
	const body = (await res.json()) as { access_token: string };
	expect(res.status, `a live token for ${appid}`).toBe(200);
	return body.access_token;
}

async function send(scenario: Scenario): Promise<Response> {
	const query = new URLSearchParams();
	for (const [name, value] of scenario.query) {
		const fake = FAKE_TOKEN.exec(value);
		query.append(name, fake ? await liveToken(fake[1]!) : value);
	}
	// Each request on a connection of its own: an answer given before the body was read (a 401 or 403 to a
	// POST) makes local workerd drop the connection, and the client's next request on it would fail.
	const headers: Record<string, string> = { connection: "close" };
	// Every documented 401 is sent without a key, every 403 with a key that lacks the right.
	if (scenario.operation.secured && scenario.status !== 401) headers.authorization = `Bearer ${scenario.status === 403 ? READER_KEY : ADMIN_KEY}`;
	if (scenario.body) headers["content-type"] = scenario.body.mediaType;
	const search = query.size > 0 ? `?${query}` : "";
	return fetch(`${broker.url}${scenario.path}${search}`, {
		method: scenario.operation.method,
		headers,
		...(scenario.body && { body: scenario.body.mediaType === "application/json" ? JSON.stringify(scenario.body.value) : String(scenario.body.value) }),
	});
}

describe("every documented example request", () => {
	it("runs in an order that covers every operation", () => {
		expect([...ORDER].sort()).toEqual(operations(doc).map((o) => o.id).sort());
	});

	it("gets the documented status, and an answer its documented schema admits and its example resembles", async () => {
		const byId = new Map(operations(doc).map((o) => [o.id, o]));
		const failures: string[] = [];
		let sent = 0;
		for (const id of ORDER) {
			for (const scenario of scenarios(doc, byId.get(id)!)) {
				const label = `${id}/${scenario.name} (${scenario.operation.method} ${scenario.path})`;
				await SETUP[`${id}/${scenario.name}`]?.();
				const res = await send(scenario).catch((error: Error) => {
					throw new Error(`${label}: ${error.message} (${String((error.cause as Error | undefined)?.message)})\n${broker.logs.slice(-15).join("\n")}`);
				});
				sent++;
				const text = await res.text();
				if (process.env.DUMP_ANSWERS) console.log(`${label} → ${res.status} ${text.slice(0, 600)}`);
				if (res.status !== scenario.status) {
					failures.push(`${label}: HTTP ${res.status}, documented ${scenario.status}: ${text.slice(0, 300)}`);
					continue;
				}
				const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
				if (type !== scenario.mediaType) failures.push(`${label}: content-type ${type}, documented ${scenario.mediaType}`);
				for (const header of scenario.headers) if (!res.headers.has(header)) failures.push(`${label}: no ${header} header`);
				if (scenario.mediaType !== "application/json") continue;
				const body = JSON.parse(text) as Json;
				const validate = schemaAt(scenario.schemaPointer);
				if (!validate(body)) failures.push(`${label}: ${JSON.stringify(validate.errors)} in ${text.slice(0, 300)}`);
				failures.push(...resemblance(label, scenario.example, body));
			}
		}
		expect(failures).toEqual([]);
		expect(sent).toBe(operations(doc).reduce((n, o) => n + scenarios(doc, o).length, 0));
		expect(sent).toBeGreaterThanOrEqual(80);
	});
});

/** The documented example is the answer's kind: the same fields at the top, the same error code or errcode. */
function resemblance(label: string, example: Json, body: Json): string[] {
	if (typeof example !== "object" || example === null || Array.isArray(example)) return [];
	if (typeof body !== "object" || body === null || Array.isArray(body)) return [`${label}: the answer is not an object`];
	const problems = Object.keys(example).filter((key) => !(key in body)).map((key) => `${label}: the answer has no "${key}", which the example shows`);
	if ("error" in example && body.error !== example.error) problems.push(`${label}: error ${JSON.stringify(body.error)}, documented ${JSON.stringify(example.error)}`);
	if ("errcode" in example && body.errcode !== example.errcode) problems.push(`${label}: errcode ${JSON.stringify(body.errcode)}, documented ${JSON.stringify(example.errcode)}`);
	return problems;
}
