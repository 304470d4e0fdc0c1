/**
 * The apps and keys the worker tests run with. WECHAT_APPS is fixed for a test run, while every test wants
 * an app of its own (the simulator is shared by all test files), so the configuration holds a pool of apps
 * per test file and each test takes the next one from its file's pool.
 *
 * This module runs both in Node (vitest.config.ts, the global setup) and inside workerd (the tests).
 */
export type Mode = "stable" | "classic";

export interface TestApp {
	readonly appid: string;
	readonly secret: string;
	readonly mode: Mode;
	readonly daily_quota?: number;
	readonly ticket_daily_quota?: number;
}

/** One entry per test file; a file's apps are `wx<file><s|c><nn>`. */
export const TEST_FILES = [
	"cold", "edge", "cron", "inval", "auth", "http", "persist", "modes", "errors", "sec", "fault", "quota",
	"promise", "report", "gwtoken", "gateway", "gwbody", "keys", "repair", "guard", "limits", "backoff", "alertq",
	"memory", "health", "review", "reviewr", "adv2", "tickets", "gwticket", "review3", "review4", "review5",
	"guards-gateway", "guards-jssdk", "guards-engine", "guards-config", "guards-alerts", "guards-edge",
	"alarm", "watchdog", "status", "review17", "review-engine",
] as const;
export type TestFile = (typeof TEST_FILES)[number];
/** Apps per mode a test file may use: what its tests take, with a little room. */
const APPS_PER_MODE = 5;
/** A number for both modes, or each mode's own count (a file that needs few apps of one mode takes few). */
const APPS_PER_MODE_FOR: Partial<Record<TestFile, number | Readonly<Record<Mode, number>>>> = {
	gateway: 12, errors: 10, inval: 8, report: 8, tickets: 8, review: 8, gwtoken: 7, review4: 3, review5: 7, alarm: 8, watchdog: 27, status: 8,
	// What their tests take (keys: four stable apps in an it.each and one classic; sec one of each; memory
	// three of each), with one to spare.
	keys: { stable: 5, classic: 2 }, sec: 2, memory: 4,
	// The guards files (issue 20): exactly what their tests take.
	"guards-gateway": { stable: 5, classic: 3 }, "guards-jssdk": { stable: 4, classic: 0 }, "guards-engine": { stable: 3, classic: 2 },
	"guards-config": { stable: 1, classic: 0 }, "guards-alerts": { stable: 0, classic: 2 }, "guards-edge": { stable: 2, classic: 2 },
};

function poolSize(file: TestFile, mode: Mode): number {
	const size = APPS_PER_MODE_FOR[file] ?? APPS_PER_MODE;
	return typeof size === "number" ? size : size[mode];
}
/** The quota tests' apps claim a tiny daily quota, so the guard's share is reached in a few calls. */
export const QUOTA_FILE_DAILY_QUOTA = 8;
/** The files whose apps claim QUOTA_FILE_DAILY_QUOTA. */
const SMALL_QUOTA_FILES: readonly TestFile[] = ["quota", "guard"];
/** guards-engine's apps claim a tiny daily getticket quota, so the ticket quota guard is reached in a few calls. */
export const TICKET_QUOTA_FILE_DAILY_QUOTA = 8;
const SMALL_TICKET_QUOTA_FILES: readonly TestFile[] = ["guards-engine"];

function secretFor(appid: string): string {
	return `sec-${appid}-do-not-leak`;
}

export function allTestApps(): TestApp[] {
	return TEST_FILES.flatMap((file) =>
		(["stable", "classic"] as const).flatMap((mode) =>
			Array.from({ length: poolSize(file, mode) }, (_, n) => testApp(file, mode, n))));
}

function testApp(file: TestFile, mode: Mode, n: number): TestApp {
	const appid = `wx${file}${mode[0]}${String(n).padStart(2, "0")}`;
	return {
		appid, secret: secretFor(appid), mode,
		...(SMALL_QUOTA_FILES.includes(file) && { daily_quota: QUOTA_FILE_DAILY_QUOTA }),
		...(SMALL_TICKET_QUOTA_FILES.includes(file) && { ticket_daily_quota: TICKET_QUOTA_FILE_DAILY_QUOTA }),
	};
}

/** Hands out a file's apps one by one: `const next = appsFor("cold"); const app = next("classic");` */
export function appsFor(file: TestFile): (mode?: Mode) => TestApp {
	const used = { stable: 0, classic: 0 };
	return (mode = "stable") => {
		const n = used[mode]++;
		if (n >= poolSize(file, mode)) throw new Error(`test file "${file}" needs more than ${poolSize(file, mode)} ${mode} apps: raise its pool in APPS_PER_MODE_FOR`);
		return testApp(file, mode, n);
	};
}

/** Keys of every kind the auth tests need. Plain keys, and one stored as its SHA-256. */
export const KEYS = {
	admin: "admin-key-0123456789abcdef",
	all: "all-apps-key-0123456789abcdef",
	/** Scoped to the first stable and first classic app of the "auth" file. */
	scoped: "scoped-key-0123456789abcdef",
	/** Stored as sha256:<hex> in API_KEYS. */
	hashed: "hashed-key-0123456789abcdef",
	/** Admin, but only for SCOPED_APPS. */
	scopedAdmin: "scoped-admin-key-0123456789abcdef",
	/** Not admin; scoped to HEALTH_APPS. */
	health: "health-key-0123456789abcdef",
} as const;

export const SCOPED_APPS = ["wxauths00", "wxauthc00"];
/** The first two stable apps and the first classic app of the "health" file. */
export const HEALTH_APPS = ["wxhealths00", "wxhealths01", "wxhealthc00"];


export async function apiKeysJson(): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(KEYS.hashed)));
	const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
	return JSON.stringify([
		{ name: "ops", key: KEYS.admin, apps: ["*"], admin: true },
		{ name: "all-apps", key: KEYS.all, apps: ["*"] },
		{ name: "billing", key: KEYS.scoped, apps: SCOPED_APPS },
		{ name: "hashed", key: `sha256:${hex}`, apps: ["*"] },
		{ name: "billing-ops", key: KEYS.scopedAdmin, apps: SCOPED_APPS, admin: true },
		{ name: "monitor", key: KEYS.health, apps: HEALTH_APPS },
	]);
}

/**
 * WeCom entries of the broker's configuration (WECHAT_APPS, `"kind": "wecom"`), all served by the
 * simulator's WeCom under /qyapi: two corps, each agent with its own secret, and a corp-level secret (no
 * agentid) addressed by its `id`.
 */
export interface WeComTestApp {
	/** What clients send as ?appid=. */
	readonly appid: string;
	readonly corpid: string;
	readonly agentid?: string;
	readonly secret: string;
}

export const WECOM_CORP = "wwtestcorp00001";
export const WECOM_OTHER_CORP = "wwtestcorp00002";
/** The gateway's WeCom tests (gwwecom, gwticket): a corp with several entries, and one with a single agent. */
export const WECOM_GATEWAY_CORP = "wwtestcorp00003";
export const WECOM_SINGLE_CORP = "wwtestcorp00004";
/** The fourth adversarial review's WeCom corp (review4.test.ts): one agent, its gettoken calls counted alone. */
export const WECOM_REVIEW4_CORP = "wwtestcorp00005";

export function allWeComApps(): WeComTestApp[] {
	const agents = (corpid: string, ids: string[]) => ids.map((agentid) => ({ appid: `${corpid}-${agentid}`, corpid, agentid, secret: secretFor(`${corpid}-${agentid}`) }));
	return [
		...agents(WECOM_CORP, ["1000001", "1000002", "1000003", "1000004", "1000005", "1000006"]),
		{ appid: `${WECOM_CORP}-contacts`, corpid: WECOM_CORP, secret: secretFor(`${WECOM_CORP}-contacts`) },
		...agents(WECOM_OTHER_CORP, ["1000001"]),
		...agents(WECOM_GATEWAY_CORP, ["1000001", "1000002", "1000003", "1000004", "1000005"]),
		{ appid: `${WECOM_GATEWAY_CORP}-contacts`, corpid: WECOM_GATEWAY_CORP, secret: secretFor(`${WECOM_GATEWAY_CORP}-contacts`) },
		...agents(WECOM_SINGLE_CORP, ["1000001"]),
		...agents(WECOM_REVIEW4_CORP, ["1000001"]),
	];
}

/**
 * Open-platform components of WECHAT_COMPONENTS (`wxcomp<file><nn>`): the simulator pushes their tickets and
 * a test delivers them. The first two of a file share one message token and EncodingAESKey, as two
 * components of one vendor pointed at one broker may.
 */
export interface TestComponent {
	readonly component_appid: string;
	readonly secret: string;
	readonly token: string;
	readonly encoding_aes_key: string;
}

export const COMPONENT_FILES = ["openev", "comptok", "authz", "r18", "ends", "reveng"] as const;
const COMPONENTS_PER_FILE = 16;

export function testComponent(file: (typeof COMPONENT_FILES)[number], n: number): TestComponent {
	const id = `wxcomp${file}${String(n).padStart(2, "0")}`;
	const shared = n < 2 ? "0" : String(n);
	return {
		component_appid: id, secret: secretFor(id), token: `msgtoken${file}${shared}`,
		encoding_aes_key: `${file}${shared}`.padEnd(43, "K").slice(0, 43).replace(/[^A-Za-z0-9]/g, "K"),
	};
}

export function allTestComponents(): TestComponent[] {
	return COMPONENT_FILES.flatMap((file) => Array.from({ length: COMPONENTS_PER_FILE }, (_, n) => testComponent(file, n)));
}

/** Components the tests add through PUT /admin/components (not in WECHAT_COMPONENTS): `wxcompreg<nn>`. */
export function registryTestComponent(n: number): TestComponent {
	const id = `wxcompreg${String(n).padStart(2, "0")}`;
	return { component_appid: id, secret: secretFor(id), token: `regtoken${n}`, encoding_aes_key: `reg${n}`.padEnd(43, "Q") };
}
export const REGISTRY_TEST_COMPONENTS = 8;

export function wechatComponentsJson(): string {
	return JSON.stringify(allTestComponents());
}

/**
 * WeCom suites of WECOM_SUITES (`wwsuite<nn>`): the simulator pushes their tickets and a test delivers them.
 * The first two share one provider, message token and EncodingAESKey, as two suites of one provider pointed at
 * one broker may; the third has no provider corpid configured.
 */
export interface TestSuite {
	readonly suite_id: string;
	readonly secret: string;
	readonly token: string;
	readonly encoding_aes_key: string;
	readonly provider_corpid?: string;
	readonly provider_secret?: string;
}

export const TEST_PROVIDER_CORPID = "wwprovider0001";
const SUITES = 6;

export function testSuite(n: number): TestSuite {
	const id = `wwsuite${String(n).padStart(2, "0")}`;
	const shared = n < 2 ? "0" : String(n);
	return {
		suite_id: id, secret: secretFor(id), token: `suitetoken${shared}`, encoding_aes_key: `suitekey${shared}`.padEnd(43, "S"),
		...(n !== 2 && { provider_corpid: TEST_PROVIDER_CORPID, provider_secret: `${secretFor(TEST_PROVIDER_CORPID)}p` }),
	};
}

export function allTestSuites(): TestSuite[] {
	return Array.from({ length: SUITES }, (_, n) => testSuite(n));
}

/**
 * Suites of WECOM_SUITES for the suite- and provider-token tests (`wwsuitetok<nn>`), each with a provider of
 * its own (`wwprovtok<nn>`) but the first two, which share one, as two suites of one provider do.
 */
export function tokenTestSuite(n: number): TestSuite {
	const id = `wwsuitetok${String(n).padStart(2, "0")}`;
	const provider = `wwprovtok${n < 2 ? "shared" : String(n).padStart(2, "0")}`;
	return { suite_id: id, secret: secretFor(id), token: `toksuite${n}`, encoding_aes_key: `toksuite${n}`.padEnd(43, "T"), provider_corpid: provider, provider_secret: `${secretFor(provider)}p` };
}
export const TOKEN_TEST_SUITES = 32;

export function allTokenTestSuites(): TestSuite[] {
	return Array.from({ length: TOKEN_TEST_SUITES }, (_, n) => tokenTestSuite(n));
}

/** Suites the tests add through PUT /admin/suites (not in WECOM_SUITES): `wwsuitereg<nn>`. */
export function registryTestSuite(n: number): TestSuite {
	const id = `wwsuitereg${String(n).padStart(2, "0")}`;
	return { suite_id: id, secret: secretFor(id), token: `regsuite${n}`, encoding_aes_key: `regsuite${n}`.padEnd(43, "R"), provider_corpid: `wwregprov${n}`, provider_secret: `${secretFor(id)}p` };
}
export const REGISTRY_TEST_SUITES = 6;

/** Suites of WECOM_SUITES for the install tests (`wwsuiteins<nn>`), each with a provider of its own. */
export function installTestSuite(n: number): TestSuite {
	const id = `wwsuiteins${String(n).padStart(2, "0")}`;
	const provider = `wwprovins${String(n).padStart(2, "0")}`;
	return { suite_id: id, secret: secretFor(id), token: `inssuite${n}`, encoding_aes_key: `inssuite${n}`.padEnd(43, "I"), provider_corpid: provider, provider_secret: `${secretFor(provider)}p` };
}
export const INSTALL_TEST_SUITES = 22;

export function allInstallTestSuites(): TestSuite[] {
	return Array.from({ length: INSTALL_TEST_SUITES }, (_, n) => installTestSuite(n));
}

export function wecomSuitesJson(): string {
	return JSON.stringify([...allTestSuites(), ...allTokenTestSuites(), ...allInstallTestSuites()]);
}

/** Every secret the worker tests configure: none may ever reach a response or a log line. */
export function allSecrets(): string[] {
	const components = [...allTestComponents(), ...Array.from({ length: REGISTRY_TEST_COMPONENTS }, (_, n) => registryTestComponent(n))];
	const suites = [...allTestSuites(), ...allTokenTestSuites(), ...allInstallTestSuites(), ...Array.from({ length: REGISTRY_TEST_SUITES }, (_, n) => registryTestSuite(n))];
	return [
		...suites.flatMap((suite) => [suite.secret, suite.encoding_aes_key, ...(suite.provider_secret ? [suite.provider_secret] : [])]),
		...[...allTestApps(), ...allWeComApps(), ...Array.from({ length: REGISTRY_TEST_APPS }, (_, n) => registryTestApp(n))].map((a) => a.secret),
		...components.flatMap((c) => [c.secret, c.encoding_aes_key]),
	];
}

/** Apps the registry tests add through the admin API (not in WECHAT_APPS): `wxreg<nn>`. */
export const REGISTRY_TEST_APPS = 60;

export function registryTestApp(n: number, mode: Mode = "stable"): TestApp {
	const appid = `wxreg${String(n).padStart(3, "0")}`;
	return { appid, secret: secretFor(appid), mode };
}

/** WECHAT_APPS as the worker tests run with it: every official-account app, then the WeCom entries. */
export function wechatAppsJson(): string {
	const wecom = allWeComApps().map(({ appid, corpid, agentid, secret }) =>
		({ kind: "wecom", corpid, secret, ...(agentid ? { agentid } : { id: appid }) }));
	return JSON.stringify([...allTestApps(), ...wecom]);
}

/**
 * REGISTRY_KEY for the test run (base64 of the bytes 0–31): registry tests seal and open with it, and
 * REGISTRY_TEST_KEY_B is a second key for rotation. Test keys only: they seal nothing real.
 */
export const REGISTRY_TEST_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
export const REGISTRY_TEST_KEY_B = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
