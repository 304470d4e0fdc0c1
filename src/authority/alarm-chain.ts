/**
 * One alarm per object: each TokenAuthority keeps its Durable Object alarm armed for its next due moment
 * (engine/next-wake.ts) and, when it fires, does what is due (TokenAuthority.refreshIfDue) and arms the next.
 * The alarm is the refresh engine's clock; the cron is only a watchdog for chains that broke (ops/scheduled.ts).
 *
 * When the plan is made: after every save of the state (a refresh, a failure and its backoff, an incident, an
 * edge write), except while an upstream call is out (its in-flight marker is set): that call ends with a save
 * that plans again, and the alarm armed before it stays as the safety net should the instance die meanwhile.
 * `setAlarm` is a billed row write, so it is called only when the moment changes; the app's index row is sent
 * the same way (schedule/client.ts). A refresh thus costs one alarm invocation, one `setAlarm` and one index
 * upsert.
 *
 * Delivery is at least once, and an alarm may come late, twice, or be joined by a watchdog poke: the handler
 * only runs `refreshIfDue`, which refreshes what is due and nothing else (single flight joins a refresh
 * already under way), so a repeated or early alarm costs no upstream call. A late one refreshes late, which
 * the reads cover meanwhile (a due token is still served and replaced in the background).
 *
 * When the handler throws: it does not. Every failure of the work is caught, logged, and the alarm re-armed
 * no later than RING_FAILURE_RETRY (doubling, capped): a refresh that failed upstream has already stored its
 * own backoff, so this is only for bugs and storage errors. What can still throw is storage itself
 * (`setAlarm`); then the platform retries the handler (2 s, 4 s … six times), and once those retries are
 * spent the chain is broken: the app's index row still shows the missed moment, and the watchdog pokes the
 * app when it is WATCHDOG_MARGIN_MS overdue, which arms the alarm again.
 *
 * Work with no moment of its own (an edge copy KV refused, an alert the webhook refused) is retried
 * HOUSEKEEPING_RETRY_MS after it was found pending, doubling while it stays so. A plan that is still due
 * right after the alarm did its work (something refused to act, e.g. a ticket whose token cannot be had) is
 * pushed back the same way rather than fire again at once: an alarm chain never spins.
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import { log } from "../core/log";
import { callInFlight, housekeeping, nextWake } from "../engine/next-wake";
import type { AuthorityState } from "../engine/state";
import { RowSender } from "../schedule/client";
import { rowFor, type AppSource } from "../schedule/row";
import type { ScheduleIndex } from "../schedule/schedule-index";

/** An edge copy KV refused, or an alert the webhook refused, is tried again this long after (KV: 1 write/s per key). */
const HOUSEKEEPING_RETRY_MS = 10_000;
/** After the alarm's own work threw (a bug, or storage), it runs again this soon, doubling while it keeps failing. */
const RING_FAILURE_RETRY_MS = 5_000;
/** Neither retry backs off beyond this: 5 minutes, the longest failure backoff of a refresh (engine/backoff.ts). */
const MAX_RETRY_MS = 300_000;

export interface AlarmHost {
	readonly storage: DurableObjectStorage;
	index(): Pick<DurableObjectStub<ScheduleIndex>, "put" | "remove">;
	waitUntil(promise: Promise<unknown>): void;
	/** The appid the object serves, from its stored state; undefined for an object never used. */
	appid(): string | undefined;
	/** The app as the object last saw it (set by any call with an appid). */
	app(): AppConfig | undefined;
	/** Looks the app up now; undefined when it is no longer configured. */
	lookUp(appid: string): AppConfig | undefined;
	state(): AuthorityState;
	config(): BrokerConfig;
	/** What the alarm does (TokenAuthority.refreshIfDue). */
	work(appid: string): Promise<unknown>;
	/** Resolves when no refresh is under way. */
	idle(): Promise<void>;
	/** A moment the state does not show (a component's ticket going stale: component-token.ts), or null. */
	extraWake?(now: number): number | null;
}

/** What a ring did: the work ran, the app is not configured (disarmed), or the object has no app yet. */
export type RingResult = "ran" | "gone" | "unknown";

function earliest(a: number | null, b: number | null): number | null {
	return a === null ? b : b === null ? a : Math.min(a, b);
}

function backoff(base: number, failures: number): number {
	return Math.min(base * 2 ** Math.max(0, failures - 1), MAX_RETRY_MS);
}

export class AlarmChain {
	readonly #host: AlarmHost;
	readonly #rows: RowSender;
	/** What the platform holds (ms, or null for none); undefined until read, in a new instance. */
	#armed: number | null | undefined = undefined;
	/** When pending housekeeping is tried next (0: none pending), and how often it has been tried in vain. */
	#housekeepingAt = 0;
	#housekeepingTries = 0;
	/** Rings in a row whose work threw, or whose plan was still due after it. */
	#stuck = 0;
	/** A plan made once the refresh under way is over (see planChanged). */
	#deferred: Promise<void> | null = null;

	constructor(host: AlarmHost) {
		this.#host = host;
		this.#rows = new RowSender(() => host.index());
	}

	/**
	 * After a save: the alarm and the index row follow the state, unless an upstream call is out. A refresh
	 * saves its new value before it writes the edge copy, so a copy that differs at that save is most likely
	 * being written: it counts only once the refresh is over (a deferred plan), or a refresh would arm the
	 * housekeeping retry and then move it back, two alarm writes instead of one.
	 */
	async planChanged(): Promise<void> {
		const state = this.#host.state();
		if (callInFlight(state)) return;
		await this.#plan(Date.now(), { afterRing: false, edge: false });
		const app = this.#host.app();
		if (app && !this.#deferred && housekeeping(app, state, this.#host.config().alertWebhookUrl !== null, Date.now()).edge) {
			this.#deferred = this.#host.idle().then(() => this.#plan(Date.now(), { afterRing: false, edge: true })).finally(() => {
				this.#deferred = null;
			});
			this.#host.waitUntil(this.#deferred);
		}
	}

	/**
	 * The alarm fired (`platform`), or the watchdog poked the object (`appid` given, the alarm left as it
	 * is). Does what is due, then arms the next moment.
	 */
	async ring(appid: string | undefined, { platform }: { platform: boolean }): Promise<RingResult> {
		// While the handler runs the platform holds no alarm (getAlarm() is null) until it is armed again.
		if (platform) this.#armed = null;
		const id = appid ?? this.#host.appid();
		if (id === undefined) {
			log("warn", "alarm_without_app", {});
			return "unknown";
		}
		let found: AppConfig | undefined;
		try {
			found = this.#host.lookUp(id);
		} catch (error) {
			// The configuration does not parse (a bad deploy of WECHAT_APPS, say): the app is not gone, and the
			// platform's few retries would end the chain long before an operator fixes it. Try again later.
			this.#stuck++;
			log("error", "alarm_config_failed", { appid: id, message: error instanceof Error ? error.message : "" });
			const retry = Date.now() + backoff(RING_FAILURE_RETRY_MS, this.#stuck);
			await this.#setAlarm(retry);
			await this.#retryRow(id, retry);
			return "unknown";
		}
		if (!found) {
			log("info", "alarm_app_gone", { appid: id });
			await this.disarm(id);
			return "gone";
		}
		if (platform) this.#logDelay(id);
		let threw = false;
		try {
			await this.#host.work(id);
		} catch (error) {
			threw = true;
			log("error", "alarm_work_failed", { appid: id, name: error instanceof Error ? error.name : "unknown", message: error instanceof Error ? error.message : "" });
		}
		const now = Date.now();
		const app = this.#host.app();
		const pending = app && housekeeping(app, this.#host.state(), this.#host.config().alertWebhookUrl !== null, now);
		if (pending && (pending.edge || pending.alerts)) {
			// The work just tried it, in vain.
			this.#housekeepingTries++;
			this.#housekeepingAt = now + backoff(HOUSEKEEPING_RETRY_MS, this.#housekeepingTries);
		}
		await this.#plan(now, { afterRing: true, edge: true, threw });
		await this.settled();
		return "ran";
	}

	/** How late the platform delivered the alarm: against the plan the state makes (what was armed). */
	#logDelay(appid: string): void {
		const app = this.#host.app();
		if (!app) return;
		const now = Date.now();
		const planned = earliest(nextWake(app, this.#host.state(), { alertsConfigured: this.#host.config().alertWebhookUrl !== null, housekeepingAt: this.#housekeepingAt, edge: true }, now), this.#host.extraWake?.(now) ?? null);
		log("info", "alarm_rang", { appid, delay_ms: planned === null ? null : Math.max(0, now - planned) });
	}

	/** Re-arm at once: a restarted instance recovered an interrupted call and has work due now. */
	async wakeSoon(): Promise<void> {
		const now = Date.now();
		const armed = await this.#armedNow();
		if (armed === null || armed > now) await this.#setAlarm(now);
	}

	/** The app is gone (deleted, or no longer configured): no alarm, no index row. */
	async disarm(appid: string): Promise<void> {
		if ((await this.#armedNow()) !== null) await this.#host.storage.deleteAlarm();
		this.#armed = null;
		this.#housekeepingAt = 0;
		this.#housekeepingTries = 0;
		await this.#rows.drop(appid);
	}

	/** Resolves when the plans under way are made and the index has every row sent so far. */
	async settled(): Promise<void> {
		while (this.#deferred) await this.#deferred;
		await this.#rows.settled();
	}

	async #plan(now: number, { afterRing, edge, threw = false }: { afterRing: boolean; edge: boolean; threw?: boolean }): Promise<void> {
		const app = this.#host.app();
		if (!app) return;
		const state = this.#host.state();
		const config = this.#host.config();
		const alertsConfigured = config.alertWebhookUrl !== null;
		const pending = housekeeping(app, state, alertsConfigured, now);
		if (!pending.alerts && !pending.edge) {
			this.#housekeepingAt = 0;
			this.#housekeepingTries = 0;
		} else if (this.#housekeepingAt === 0 && (pending.alerts || edge)) {
			this.#housekeepingAt = now + HOUSEKEEPING_RETRY_MS;
		}
		let wake = earliest(nextWake(app, state, { alertsConfigured, housekeepingAt: this.#housekeepingAt, edge }, now), this.#host.extraWake?.(now) ?? null);
		if (afterRing) {
			if (threw || (wake !== null && wake <= now)) {
				this.#stuck++;
				const retry = now + backoff(RING_FAILURE_RETRY_MS, this.#stuck);
				if (!threw) log("warn", "alarm_no_progress", { appid: app.appid, retry_in_s: (retry - now) / 1_000 });
				wake = wake === null || wake <= now ? retry : Math.min(wake, retry);
			} else {
				this.#stuck = 0;
			}
		}
		if (wake !== (await this.#armedNow())) {
			if (wake === null) await this.#host.storage.deleteAlarm();
			else await this.#setAlarm(wake);
			this.#armed = wake;
		}
		const source: AppSource = app.mode === "component" || app.mode === "suite" || app.mode === "provider" ? app.source : config.apps.has(app.appid) ? "secret" : "registry";
		const sending = this.#rows.offer(rowFor(app, source, state, wake));
		// The alarm waits for its row (ring); a reader's refresh does not.
		if (!afterRing) this.#host.waitUntil(sending);
	}

	/**
	 * The row of an app that cannot be looked up now says when it is tried again, or the watchdog would take it
	 * for overdue on every run and spend one of its wakes on it. Not when the configuration itself is unreadable.
	 */
	async #retryRow(appid: string, at: number): Promise<void> {
		let source: AppSource;
		try {
			source = this.#host.config().apps.has(appid) ? "secret" : "registry";
		} catch {
			return;
		}
		// Its component or suite as last seen: a row that lost it would drop out of that scope's keys' /status.
		const seen = this.#host.app()?.appid === appid ? this.#host.app() : undefined;
		await this.#rows.offer(rowFor({ appid, componentAppid: seen?.componentAppid, suiteId: seen?.suiteId }, source, this.#host.state(), at));
	}

	async #armedNow(): Promise<number | null> {
		this.#armed ??= await this.#host.storage.getAlarm();
		return this.#armed;
	}

	async #setAlarm(at: number): Promise<void> {
		await this.#host.storage.setAlarm(at);
		this.#armed = at;
	}
}
