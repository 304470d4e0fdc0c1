/**
 * The app's incidents and the alerts about them: one "unhealthy" alert when a problem appears, one
 * "recovered" when it is gone, however many failures happen in between. Alerts are queued in the object's
 * storage and sent in the background, never on a reader's path; one that cannot be sent waits for the next
 * cron run, and is dropped (and logged) after MAX_ALERT_SENDS tries; the queue holds at most MAX_QUEUED_ALERTS,
 * the oldest going first, so a dead webhook cannot pile up a queue however often the incident flaps.
 */
import { MAX_ALERT_SENDS, MAX_QUEUED_ALERTS, sendAlert, type Alert } from "./alerts";
import type { AppConfig } from "../config/config";
import { log } from "../core/log";
import type { AuthorityState } from "./state";

export interface IncidentHost {
	state(): AuthorityState;
	setState(state: AuthorityState): void;
	save(): Promise<void>;
	webhookUrl(): string | null;
	waitUntil(promise: Promise<unknown>): void;
}

function duration(ms: number): string {
	const s = Math.round(ms / 1_000);
	return s < 120 ? `${s} s` : s < 7_200 ? `${Math.round(s / 60)} min` : `${(s / 3_600).toFixed(1)} h`;
}

export class Incidents {
	readonly #host: IncidentHost;
	/** The background send of queued alerts, if one is running (memory only: the queue itself is stored). */
	#sending: Promise<void> | null = null;

	constructor(host: IncidentHost) {
		this.#host = host;
	}

	/** Opens or closes the incident for `problem` (null: healthy), queueing the alert that says so. */
	async assess(app: AppConfig, problem: string | null, now: number): Promise<void> {
		const state = this.#host.state();
		const { incident } = state;
		if ((problem === null) === (incident === null)) return;
		const alert: Alert = problem
			? { appid: app.appid, kind: "unhealthy", at: now, failures: 0, text: `[wx-token-broker] ${app.appid} (${app.mode}) is unhealthy: ${problem}` }
			: {
				appid: app.appid, kind: "recovered", at: now, failures: 0,
				text: `[wx-token-broker] ${app.appid} (${app.mode}) recovered after ${duration(now - incident!.since)} (was: ${incident!.reason})`,
			};
		const queue = [...state.alerts, alert];
		const dropped = queue.splice(0, Math.max(0, queue.length - MAX_QUEUED_ALERTS));
		for (const old of dropped) log("error", "alert_dropped", { appid: old.appid, kind: old.kind, reason: "queue_full", attempts: old.failures });
		this.#host.setState({ ...state, incident: problem ? { since: now, reason: problem } : null, alerts: queue });
		await this.#host.save();
		log(problem ? "error" : "info", `app_${alert.kind}`, { appid: app.appid, reason: problem ?? incident!.reason });
		// In the background: a slow or broken webhook must never hold up a token.
		this.#host.waitUntil(this.#startSending());
	}

	/** Sends every queued alert now and waits for it. */
	async flush(): Promise<void> {
		while (this.#sending) await this.#sending;
		if (this.#host.state().alerts.length > 0) await this.#startSending();
	}

	#startSending(): Promise<void> {
		this.#sending ??= this.#sendQueued().finally(() => {
			this.#sending = null;
		});
		return this.#sending;
	}

	async #sendQueued(): Promise<void> {
		const url = this.#host.webhookUrl();
		if (!url) {
			this.#host.setState({ ...this.#host.state(), alerts: [] });
			return;
		}
		while (this.#host.state().alerts.length > 0) {
			const alert = this.#host.state().alerts[0]!;
			const sent = await sendAlert(url, alert);
			// Found again by identity: a new alert may have pushed this one out of a full queue meanwhile.
			const queue = [...this.#host.state().alerts];
			const at = queue.indexOf(alert);
			if (!sent && alert.failures + 1 < MAX_ALERT_SENDS) {
				// Keep it for the next cron run; the newer ones wait behind it, in order.
				if (at !== -1) queue[at] = { ...alert, failures: alert.failures + 1 };
				this.#host.setState({ ...this.#host.state(), alerts: queue });
				await this.#host.save();
				return;
			}
			if (!sent) log("error", "alert_dropped", { appid: alert.appid, kind: alert.kind, reason: "send_failed", attempts: MAX_ALERT_SENDS });
			if (at !== -1) queue.splice(at, 1);
			this.#host.setState({ ...this.#host.state(), alerts: queue });
			await this.#host.save();
		}
	}
}
