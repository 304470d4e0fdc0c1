/**
 * What a report of a refused token is worth. Any key that may read a token can report it, so a report is
 * evidence, not proof: before anything that revokes tokens WeChat is asked (one getcallbackip made with the
 * reported token), and a report that changed nothing is answered from memory for a while.
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import type { Failure, Outcome } from "../core/outcome";
import { countCall, type Usage } from "../core/usage";
import { probeToken, type ProbeVerdict } from "../wechat/client";
import { probeComponentToken } from "../wechat/component-client";

/**
 * A report that changed nothing (WeChat accepts the token, the probe could not tell, or a limit refused the
 * refresh) is answered the same way for this long without another upstream call: a client looping on a valid
 * token costs at most one probe a minute (1,440 a day), and an out-of-band revocation reported inside the
 * window heals a minute later.
 */
export const REPORT_VERDICT_S = 60;

/** The last report that changed nothing, and its answer. Memory only: losing it costs one more probe. */
export class VerdictMemory {
	#verdict: { readonly value: string; readonly at: number; readonly outcome: Outcome } | null = null;

	/** The answer given to a report of `value` less than REPORT_VERDICT_S ago, if any. */
	recall(value: string, now: number): Outcome | null {
		const verdict = this.#verdict;
		if (verdict?.value !== value || now < verdict.at || now - verdict.at >= REPORT_VERDICT_S * 1_000) return null;
		return verdict.outcome;
	}

	remember(value: string, outcome: Outcome): Outcome {
		this.#verdict = { value, at: Date.now(), outcome };
		return outcome;
	}
}

/** The probe is an upstream call like any other: counted (and the count stored) before it is sent. */
export async function probe(
	app: AppConfig, config: BrokerConfig, token: string,
	usage: { get(): Usage; set(usage: Usage): void; save(): Promise<void> },
): Promise<ProbeVerdict> {
	const component = app.mode === "component";
	usage.set(countCall(usage.get(), component ? "api_get_authorizer_list" : "getcallbackip", Date.now()));
	await usage.save();
	return component ? probeComponentToken(app, token, config) : probeToken(app, token, config);
}

/**
 * When the probe cannot tell (WeChat unreachable, getcallbackip's own quota spent, an errcode that is not
 * about the token) the token stays: revoking one WeChat may still accept would break every client that
 * holds it. The client is told to retry once WeChat can be asked.
 */
export const INCONCLUSIVE_PROBE: Failure = {
	code: "wechat_unreachable",
	message: "WeChat could not confirm that it refuses this token (its check, getcallbackip or for a component token api_get_authorizer_list, did not answer), so the broker kept it; retry in a minute.",
	retryAfterS: REPORT_VERDICT_S,
};
