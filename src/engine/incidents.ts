/**
 * The app's incidents and the alerts about them: one "unhealthy" alert when a problem appears, one
 * "recovered" when it is gone, however many failures happen in between. Alerts are queued in the object's
 * storage and sent in the background, never on a reader's path; one that cannot be sent waits for the next
 * cron run, and is dropped (and logged) after MAX_ALERT_SENDS tries so a dead webhook cannot pile up a queue.
 */
import { MAX_ALERT_SENDS, sendAlert, type Alert } from "./alerts";
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
		this.#host.setState({ ...state, incident: problem ? { since: now, reason: problem } : null, alerts: [...state.alerts, alert] });
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
			if (!sent && alert.failures + 1 < MAX_ALERT_SENDS) {
				// Keep it for the next cron run; the newer ones wait behind it, in order.
				this.#host.setState({ ...this.#host.state(), alerts: [{ ...alert, failures: alert.failures + 1 }, ...this.#host.state().alerts.slice(1)] });
				await this.#host.save();
				return;
			}
			if (!sent) log("error", "alert_dropped", { appid: alert.appid, kind: alert.kind, attempts: MAX_ALERT_SENDS });
			this.#host.setState({ ...this.#host.state(), alerts: this.#host.state().alerts.slice(1) });
			await this.#host.save();
		}
	}
}
