/**
 * Alerts to a person: one message when an app becomes unhealthy and one when it recovers, posted to an
 * incoming webhook. The payload is plain text in the shape the receiver expects (chosen by its host), and
 * carries no secret and no full token. Sending is best effort and never on a reader's path (see
 * TokenAuthority: alerts are queued in storage and sent in the background).
 */
import { log } from "../core/log";

export interface Alert {
	readonly appid: string;
	readonly kind: "unhealthy" | "recovered";
	readonly text: string;
	/** ms */
	readonly at: number;
	/** How often sending it has failed so far. */
	readonly failures: number;
}

/** A webhook that does not answer in this time is treated as failed; the alert is retried on the next cron run. */
export const ALERT_TIMEOUT_MS = 3_000;
/** After this many failed sends an alert is dropped (and logged), so a dead webhook cannot pile up a queue. */
export const MAX_ALERT_SENDS = 5;
/**
 * At most this many alerts wait for the webhook; a new one past it drops the oldest (logged). An incident
 * that flaps while the webhook is dead queues two alerts a flap and the queue drains one per five failed
 * sends: without a bound it grows with every flap, in storage written on every change. The newest alerts
 * say how the app is now; five flaps' worth is all a person reading them later needs.
 */
export const MAX_QUEUED_ALERTS = 10;

/** What WeCom group robots, Feishu/Lark bots and Slack (or any JSON receiver) accept as a text message. */
export function alertPayload(webhookUrl: string, alert: Alert): unknown {
	const host = new URL(webhookUrl).hostname;
	if (host === "qyapi.weixin.qq.com" || new URL(webhookUrl).pathname.endsWith("/cgi-bin/webhook/send")) {
		return { msgtype: "text", text: { content: alert.text } };
	}
	if (host.endsWith("feishu.cn") || host.endsWith("larksuite.com")) {
		return { msg_type: "text", content: { text: alert.text } };
	}
	return { text: alert.text, event: `app_${alert.kind}`, appid: alert.appid, at: new Date(alert.at).toISOString() };
}

/** True when the receiver took it (HTTP 2xx and, for WeCom/Feishu, errcode/code 0). */
export async function sendAlert(webhookUrl: string, alert: Alert): Promise<boolean> {
	try {
		const response = await fetch(webhookUrl, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(alertPayload(webhookUrl, alert)),
			signal: AbortSignal.timeout(ALERT_TIMEOUT_MS),
		});
		const text = await response.text();
		let accepted = response.ok;
		if (accepted) {
			try {
				const body = JSON.parse(text) as { errcode?: number; code?: number };
				accepted = (body.errcode ?? 0) === 0 && (body.code ?? 0) === 0;
			} catch {
				// Slack answers "ok" as text: a 2xx is enough.
			}
		}
		log(accepted ? "info" : "warn", accepted ? "alert_sent" : "alert_refused", { appid: alert.appid, kind: alert.kind, status: response.status });
		return accepted;
	} catch (error) {
		log("warn", "alert_failed", { appid: alert.appid, kind: alert.kind, reason: error instanceof Error ? error.name : "unknown" });
		return false;
	}
}
