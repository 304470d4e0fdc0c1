/** Talking to the broker (through its real fetch handler) and to the WeChat simulator (over HTTP). */
import { createExecutionContext, createScheduledController, runDurableObjectAlarm, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect, inject, vi } from "vitest";
import { authority } from "../../src/authority/stub";
import type { Outcome } from "../../src/core/outcome";
import worker from "../../src/index";
import { allSecrets, KEYS, type TestApp } from "./fixtures";
import { findLeaks } from "./leaks";

export const simUrl = inject("simUrl");
/** The key in ALERT_WEBHOOK_URL (vitest.config.ts). */
export const ALERT_WEBHOOK_KEY = "broker-tests";
const secrets = allSecrets();

export interface BrokerResponse {
	status: number;
	headers: Headers;
	body: Record<string, unknown>;
}

export interface CallOptions {
	method?: string;
	key?: string | null;
	body?: unknown;
	rawBody?: string;
	headers?: Record<string, string>;
}

/**
 * One request to the broker. Every response is checked on the way: JSON, `Cache-Control: no-store`, no
 * secret anywhere, and no token except as `access_token` of a success.
 */
export async function call(path: string, { method = "GET", key = KEYS.all, body, rawBody, headers = {} }: CallOptions = {}): Promise<BrokerResponse> {
	const init: RequestInit = { method, headers: { ...headers } };
	if (key !== null) (init.headers as Record<string, string>).authorization = `Bearer ${key}`;
	if (body !== undefined || rawBody !== undefined) {
		init.body = rawBody ?? JSON.stringify(body);
		(init.headers as Record<string, string>)["content-type"] = "application/json";
	}
	const response = await exports.default.fetch(new Request(`https://broker.test${path}`, init));
	const text = await response.text();
	expect(response.headers.get("content-type"), `${method} ${path}`).toMatch(/^application\/json/);
	expect(response.headers.get("cache-control")).toBe("no-store");
	const parsed = JSON.parse(text) as Record<string, unknown>;
	// A success may carry what was asked for: a token, a ticket, a JS-SDK signature (SHA-1 hex), or a key
	// the admin API just generated (shown once, in its 201).
	// POST /open/{c}/auth-url: the link carries the pre_auth_code it was asked for.
	const preAuthCode = typeof parsed.url === "string" ? new URL(parsed.url).searchParams.get("pre_auth_code") : null;
	const carried = [parsed.access_token, parsed.component_access_token, parsed.suite_access_token, parsed.provider_access_token, parsed.ticket, parsed.signature, (parsed.agentConfig as Record<string, unknown> | undefined)?.signature, preAuthCode];
	const allowed = response.status === 200 ? carried.filter((v): v is string => typeof v === "string")
		: response.status === 201 && typeof parsed.key === "string" ? [parsed.key] : [];
	const headerText = [...response.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
	expect(findLeaks(text + "\n" + headerText, secrets, allowed), `${method} ${path} leaks`).toEqual([]);
	return { status: response.status, headers: response.headers, body: parsed };
}

export async function getToken(app: TestApp, key: string = KEYS.all): Promise<BrokerResponse> {
	return call(`/token?appid=${app.appid}`, { key });
}

export function invalidate(app: TestApp, token: string, key: string = KEYS.all): Promise<BrokerResponse> {
	return call("/token/invalidate", { method: "POST", key, body: { appid: app.appid, access_token: token } });
}

/**
 * What the platform does by now for `apps`, as Cloudflare would: each app whose alarm is armed for a moment
 * the broker's clock has reached has it delivered (deliverDueAlarms), then the cron trigger runs once. The
 * cron is a watchdog that sees only `apps` in WECHAT_APPS, so it starts the chain of those that have none yet
 * and leaves the other test files' apps alone; the objects keep the full configuration.
 */
export async function runCron(apps: readonly TestApp[]): Promise<void> {
	await deliverDueAlarms(apps.map(entryAppid));
	await runWatchdog(apps);
}

/** How a WECHAT_APPS entry is addressed: its appid, a WeCom entry's id, or `<corpid>-<agentid>`. */
function entryAppid(entry: { appid?: string; id?: string; corpid?: string; agentid?: string }): { appid: string } {
	return { appid: entry.appid ?? entry.id ?? `${entry.corpid}-${entry.agentid}` };
}

/** The cron handler once, with WECHAT_APPS = `apps`, waited for. */
export async function runWatchdog(apps: readonly object[]): Promise<void> {
	const ctx = createExecutionContext();
	const keys = [{ name: "cron-test", key: KEYS.admin, apps: ["*"], admin: true }];
	const scoped = { ...env, WECHAT_APPS: JSON.stringify(apps), API_KEYS: JSON.stringify(keys) };
	worker.scheduled(createScheduledController({ cron: "* * * * *", scheduledTime: Date.now() }), scoped, ctx);
	await waitOnExecutionContext(ctx);
}

/** When the app's alarm is armed for (ms), or null. */
export function armedAt(app: { appid: string }): Promise<number | null> {
	return runInDurableObject(authority(env, app.appid), (_object, state) => state.storage.getAlarm());
}

/**
 * Moves the clock to the app's armed alarm (when it lies ahead) and delivers it, as workerd would at that
 * moment. Returns how many seconds the clock moved; throws when no alarm is armed.
 */
export async function nextAlarm(app: { appid: string }): Promise<number> {
	const at = await armedAt(app);
	if (at === null) throw new Error(`${app.appid} has no alarm armed`);
	const ahead = Math.max(0, Math.ceil((at - Date.now()) / 1_000));
	if (ahead > 0) await travel(ahead);
	await runDurableObjectAlarm(authority(env, app.appid));
	return ahead;
}

/**
 * Delivers each app's alarm if its moment has come on the broker's clock, as workerd would (tests never wait
 * for workerd's own delivery: the clock is faked and far ahead of the real one, setup.ts). True per app
 * when its alarm ran.
 */
export async function deliverDueAlarms(apps: readonly { appid: string }[]): Promise<boolean[]> {
	const ran: boolean[] = [];
	for (const app of apps) {
		const at = await armedAt(app);
		ran.push(at !== null && at <= Date.now() && await runDurableObjectAlarm(authority(env, app.appid)));
	}
	return ran;
}

async function control(path: string, body?: unknown, method = body === undefined ? "GET" : "POST"): Promise<unknown> {
	const response = await fetch(`${simUrl}/__sim${path}`, {
		method,
		...(body !== undefined && { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
	});
	const json = await response.json();
	if (!response.ok) throw new Error(`simulator ${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
	return json;
}

export interface Calls {
	token: number;
	stable_token: number;
	stable_token_force: number;
	getcallbackip: number;
	getticket?: number;
	getticket_jsapi?: number;
	getticket_wx_card?: number;
}

/** Whether a fault may still be set on the simulator; resetUpstream() clears them only then. */
let faultsSet = false;

export const sim = {
	async calls(app: TestApp): Promise<Calls> {
		const stats = (await control(`/stats?appid=${app.appid}`)) as { apps: Record<string, Calls> };
		return stats.apps[app.appid] ?? { token: 0, stable_token: 0, stable_token_force: 0, getcallbackip: 0 };
	},
	/** Upstream token calls of the app's own mode. */
	async tokenCalls(app: TestApp): Promise<number> {
		const calls = await sim.calls(app);
		return app.mode === "classic" ? calls.token : calls.stable_token;
	},
	/** Changes the app on WeChat's side (a reset AppSecret, a shorter lifetime, a smaller quota). */
	configure(app: TestApp, settings: { lifetime_s?: number; daily_quota?: number; secret?: string; ticket_refetch?: "same" | "new"; ticket_daily_quota?: number }): Promise<unknown> {
		return control("/apps", { appid: app.appid, secret: app.secret, ...settings });
	},
	fault(fault: { appid?: string; endpoint?: string; kind: string; errcode?: number; status?: number; times?: number }): Promise<unknown> {
		faultsSet = true;
		return control("/faults", fault);
	},
	clearFaults(): Promise<unknown> {
		faultsSet = false;
		return control("/faults", undefined, "DELETE");
	},
	/** Every token of the app's mode stops working now (40001), as if revoked behind the broker's back. */
	revoke(app: TestApp): Promise<unknown> {
		return control(`/apps/${app.appid}/revoke`, { kind: app.mode });
	},
	/** Out of band, as another server holding the AppSecret would. */
	rotate(app: TestApp): Promise<unknown> {
		return control(`/apps/${app.appid}/rotate`, { kind: app.mode });
	},
	/** What wx.config (or wx.agentConfig) would say of a signed config: `{ok: true}` or `{ok: false, reason}`. */
	verify(body: Record<string, unknown>): Promise<{ ok: boolean; reason?: string }> {
		return control("/jssdk/verify", body) as Promise<{ ok: boolean; reason?: string }>;
	},
	/** A WeCom corp's call counts (gettoken, get_jsapi_ticket, ticket_get, getcallbackip). */
	async wecomCalls(corpid: string): Promise<Record<string, number>> {
		const stats = (await control(`/stats?appid=${corpid}`)) as { wecom: Record<string, Record<string, number>> };
		return stats.wecom[corpid] ?? {};
	},
	/** 0 when WeCom's business API accepts the token, else its errcode (40014, 42001 …). */
	async checkWeCom(token: string): Promise<number> {
		const response = await fetch(`${simUrl}/qyapi/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`);
		const body = (await response.json()) as { errcode?: number };
		return body.errcode ?? 0;
	},
	/** Re-registers a WeCom secret on WeCom's side (a new secret: the broker's one is now wrong). */
	wecomApp(app: { corpid: string; agentid?: string; secret: string }, settings: Record<string, unknown> = {}): Promise<unknown> {
		return control("/wecom/apps", { corpid: app.corpid, secret: app.secret, ...(app.agentid && { agentid: app.agentid }), ...settings });
	},
	/** Revokes every token of a WeCom secret early, as WeCom may. */
	wecomRevoke(corpid: string, agentid?: string): Promise<unknown> {
		return control("/wecom/revoke", { corpid, ...(agentid && { agentid }) });
	},
	/** 0 when WeChat's business API accepts the token, else its errcode (40001, 40014, 42001 …). */
	async check(token: string): Promise<number> {
		const response = await fetch(`${simUrl}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`);
		const body = (await response.json()) as { errcode?: number };
		return body.errcode ?? 0;
	},
};

export interface AlertMessage {
	msgtype: string;
	content: string;
}

/** The alerts the broker posted to the simulator's WeCom group-robot webhook about `app`, oldest first. */
export async function alertsFor(app: TestApp): Promise<AlertMessage[]> {
	// Queued alerts go out in the background; flushing waits for them, so nothing here depends on timing.
	await authority(env, app.appid).flushAlerts();
	const { messages } = (await control(`/webhook?key=${ALERT_WEBHOOK_KEY}`)) as { messages: AlertMessage[] };
	return messages.filter((m) => m.content.includes(app.appid));
}

/** Moves the broker's clock (Date is faked in setup.ts) and the simulator's clock forward together. */
export async function travel(seconds: number): Promise<void> {
	vi.setSystemTime(Date.now() + seconds * 1_000);
	await control("/clock", { advance_s: seconds });
}

/** The restore functions of interceptions still in place, oldest first. */
const interceptions = new Set<() => void>();

/**
 * Intercepts the broker's calls to WeChat (the Durable Object runs in this isolate, so its fetch is this
 * one): `handle` sees each upstream request and either answers it itself or returns undefined to let it
 * through to the simulator. The returned function restores the real fetch mid-test; whatever a test leaves
 * in place is lifted after it (setup.ts), a failed assertion's too.
 */
export function interceptUpstream(handle: (url: URL, init: RequestInit | undefined, real: typeof fetch) => Promise<Response> | undefined): () => void {
	const real = globalThis.fetch.bind(globalThis);
	const spy = vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
		const url = new URL(input instanceof Request ? input.url : String(input));
		return handle(url, init, real) ?? real(input, init);
	});
	const restore = () => {
		interceptions.delete(restore);
		spy.mockRestore();
	};
	interceptions.add(restore);
	return restore;
}

/**
 * Undoes what a test did to WeChat, whether it passed or not (setup.ts, after each test): lifts the
 * interceptions it left in place, newest first, and clears the simulator's faults if it set any (which also
 * releases calls a fault holds). Tests that set none cost no simulator call here.
 */
export async function resetUpstream(): Promise<void> {
	for (const restore of [...interceptions].reverse()) restore();
	if (faultsSet) await sim.clearFaults();
}

/** True for a stable_token request with force_refresh=true. */
export function isForce(url: URL, init: RequestInit | undefined): boolean {
	return url.pathname === "/cgi-bin/stable_token" && typeof init?.body === "string" && JSON.parse(init.body).force_refresh === true;
}

/** What an upstream call whose answer never arrived looks like to the broker. */
export function lostAnswer(): Promise<Response> {
	return Promise.reject(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
}

export function wechatAnswer(body: unknown): Promise<Response> {
	return Promise.resolve(new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } }));
}

/** A promise with its resolve function outside, to hold an upstream answer or signal that a call went out. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
	let resolve!: (value: T) => void;
	const promise = new Promise<T>((r) => {
		resolve = r;
	});
	return { promise, resolve };
}

/** Waits for the refresh a read may have started in the background. */
export function settle(app: TestApp): Promise<void> {
	return authority(env, app.appid).idle();
}

/** Makes WeChat refuse `app`'s tokens on the next probe (getcallbackip), as it would a revoked one. */
export function refuseNextProbe(app: TestApp, errcode = 40001): Promise<unknown> {
	return sim.fault({ appid: app.appid, endpoint: "getcallbackip", kind: "errcode", errcode, times: 1 });
}

/** The app's entry of GET /status, asked of its object alone (the route wakes every test app's object). */
export async function statusOf(app: TestApp): Promise<Record<string, any>> {
	return (await authority(env, app.appid).status(app.appid)) as unknown as Record<string, any>;
}

/** The app's entry of GET /status as the route pages it (limit 100, following next_cursor), for `key`. */
export async function statusEntry(appid: string, key: string = KEYS.admin): Promise<Record<string, any> | undefined> {
	let cursor: string | null = null;
	do {
		const res = await call(`/status?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { key });
		expect(res.status).toBe(200);
		const found = (res.body.apps as Array<Record<string, any>>).find((a) => a.appid === appid);
		if (found) return found;
		cursor = res.body.next_cursor as string | null;
	} while (cursor);
	return undefined;
}

/** Admin: POST /token/refresh for `appid`. */
export function forceRefresh(appid: string): Promise<BrokerResponse> {
	return call(`/token/refresh?appid=${appid}`, { method: "POST", key: KEYS.admin });
}

/** Lets an intercepted request reach WeChat (which acts on it), then holds the answer until `release`. */
export function heldAnswer(real: typeof fetch, url: URL, init: RequestInit | undefined, sent: () => void, release: Promise<void>): Promise<Response> {
	return real(url, init).then(async (r) => {
		const text = await r.text();
		sent();
		await release;
		return new Response(text, { headers: { "content-type": "application/json" } });
	});
}

/** An upstream answer that never comes (the object is aborted under it). */
export function never(): Promise<Response> {
	return new Promise<Response>(() => {});
}

/**
 * A read that reaches the app's object now, then `then()`, then the read's answer. The read is followed by a
 * call on the same stub that no refresh holds up (status): calls on one stub reach the object in order, and a
 * read decides at once whether to answer or to wait, so once status is back the read has been taken in. No
 * race: the test knows the read reached the object before it lets the force go on.
 */
export async function readInObject(app: TestApp, then: () => void): Promise<Outcome> {
	const stub = authority(env, app.appid);
	const reading = stub.getToken(app.appid);
	await stub.status(app.appid);
	then();
	return reading;
}
