/**
 * The refresh engine for one credential of one app, whatever its kind (kinds.ts): single flight, due time
 * and the promised expires_in, retries and backoff, the in-flight marker, the limits, compare-and-refresh,
 * and the KV edge copy. The Durable Object (token-authority.ts) holds one per credential and the state
 * they share; this class holds only what is memory-only by design.
 *
 * Why one refresh at a time holds: an object runs one call at a time up to its first await, and every path
 * that calls WeChat goes through `#fly`, which installs `#flight` synchronously before its first await.
 * Any call that arrives while WeChat is being asked joins that flight instead of starting another, so N
 * concurrent readers of a cold or due credential cause exactly one upstream call. `#flight` and `#accepted`
 * are memory only: losing them with the object is fine, as nothing awaits the one and the other is a shortcut.
 */
import type { AppConfig, BrokerConfig } from "../config";
import { writeEdgeCopy } from "../edge-cache";
import { expiresInS, isDue, isUsable, notRenewableBeforeExpiry, planRecord, type CredentialRecord } from "../lifetime";
import { log, maskToken } from "../log";
import { fail, ok, type Failure, type Outcome } from "../outcome";
import { forcedRefreshLimit, hourlyLimit, quotaGuard, stableForceLimit } from "../refresh-limits";
import { countCall, nextQuotaReset, type Usage } from "../usage";
import { probeToken, type Fetched, type UpstreamFailure } from "../wechat/client";
import type { FailureClass } from "../wechat/errcodes";
import { withRetry, type RetriedResult } from "../wechat/retry";
import { kindFor, type CredentialKind, type CredentialType } from "./kinds";
import { afterUnansweredCall, previousAcceptedUntil, sameRecord, type InFlightCall, type RefreshTrigger, type SlotState } from "./state";

/** What the engine needs from the object that holds it: the shared state, storage, and the other kinds. */
export interface RefresherHost {
	/** The app as configured now (an operator may change its secret under a running object). */
	app(): AppConfig;
	config(): BrokerConfig;
	slot(type: CredentialType): SlotState;
	setSlot(type: CredentialType, slot: SlotState): void;
	usage(): Usage;
	setUsage(usage: Usage): void;
	save(): Promise<void>;
	kv(): KVNamespace;
	/** Opens or closes the app's incident after a change. */
	assessHealth(): Promise<void>;
	waitUntil(promise: Promise<unknown>): void;
	/** Derived kinds: the app's current access_token, and compare-and-refresh of one WeChat refused. */
	token(): Promise<Outcome>;
	healToken(used: string): Promise<Outcome>;
}

export interface CronAction {
	readonly action: "fresh" | "refreshed" | "failed" | "backing_off";
}

/** Backoff after failed refreshes: 2 s, 4 s, 8 s … capped per failure class. */
const BACKOFF_BASE_S = 2;
const BACKOFF_CAP_S: Record<FailureClass, number> = { retryable: 60, quota: 300, fatal: 300 };
/** Past the quota guard's share: at most one attempt every 5 minutes, ~300 calls a day at worst. */
const CONSERVING_BACKOFF_S = 300;
/**
 * A report that changed nothing (WeChat accepts the token, the probe could not tell, or a limit refused the
 * refresh) is answered the same way for this long without another upstream call: a client looping on a valid token costs at most one
 * probe a minute (1,440 a day), and an out-of-band revocation reported inside the window heals a minute later.
 */
const REPORT_VERDICT_S = 60;

function upstreamFailure(failure: UpstreamFailure, retryAt: number, now: number): Failure {
	return {
		code: failure.kind === "wechat" ? "wechat_error" : "wechat_unreachable",
		message: failure.message,
		...(failure.errcode !== undefined && { wechatErrcode: failure.errcode }),
		retryAfterS: Math.max(1, Math.ceil((retryAt - now) / 1_000)),
	};
}

function iso(ms: number): string {
	return new Date(ms).toISOString();
}

/** One upstream fetch (with its retries) and when its first attempt went out. */
interface Attempted {
	readonly result: RetriedResult<Fetched>;
	readonly call: InFlightCall;
}

export class Refresher {
	readonly #host: RefresherHost;
	readonly #type: CredentialType;
	/**
	 * The refresh under way. `revoking`: it is known to kill the current value at once (WeChat refused it, or
	 * a stable force_refresh is being sent), so readers wait for its result instead of getting that value.
	 */
	#flight: { readonly promise: Promise<Outcome>; readonly reported: string | null; revoking: boolean } | null = null;
	/** The last report that changed nothing, and its answer (see REPORT_VERDICT_S). */
	#verdict: { readonly value: string; readonly at: number; readonly outcome: Outcome } | null = null;

	constructor(host: RefresherHost, type: CredentialType) {
		this.#host = host;
		this.#type = type;
	}

	get #app(): AppConfig {
		return this.#host.app();
	}

	get #kind(): CredentialKind {
		return kindFor(this.#host.app(), this.#type);
	}

	#slot(): SlotState {
		return this.#host.slot(this.#type);
	}

	#update(change: Partial<SlotState>): void {
		this.#host.setSlot(this.#type, { ...this.#slot(), ...change });
	}

	/**
	 * The current value. One that is due but still accepted is answered at once and replaced in the
	 * background; only a reader with no usable value waits for WeChat (and all such readers share one flight).
	 */
	async get(): Promise<Outcome> {
		// A refresh that kills the current value at once is under way: wait for the value that replaces it.
		if (this.#flight?.revoking) {
			const outcome = await this.#flight.promise;
			if (outcome.ok) return outcome;
		}
		// Taken after any wait: a value that expired meanwhile must not be answered.
		const now = Date.now();
		const { current, retryAt, lastError, inFlight } = this.#slot();
		if (isUsable(current, now)) {
			if (isDue(current, now) && now >= retryAt) this.#host.waitUntil(this.#fly("read", null, () => this.#fetchAndStore("read", false)));
			// A classic call under way may already have minted a token: from then on the current one is sure
			// only until 300 s after that call was sent.
			const promised = inFlight ? afterUnansweredCall(current, inFlight) : current;
			return isUsable(promised, now) ? ok(promised) : ok(current);
		}
		if (now < retryAt && lastError) return fail(upstreamFailure(lastError.failure, retryAt, now));
		const outcome = await this.#fly("read", null, () => this.#fetchAndStore("read", false));
		if (outcome.ok) return outcome;
		const still = this.#slot().current;
		return isUsable(still, Date.now()) ? ok(still) : outcome;
	}

	/**
	 * Compare-and-refresh: a client (or the gateway, or a ticket call) reports the value WeChat refused.
	 * Only a report of the current value can cause a refresh; a report of any other value is stale and
	 * answered with the current one at no upstream cost. Concurrent reports of the same value share one
	 * refresh. A client's report is evidence, not proof (any reader can send one): see `#replace`.
	 * `confirmedByWeChat`: the broker itself saw WeChat refuse it, so no probe is needed.
	 */
	async invalidate(reported: string, reporter: string, confirmedByWeChat: boolean): Promise<Outcome> {
		// Let a refresh already under way land first; the report may be of the value it replaces.
		while (this.#flight) {
			const flight = this.#flight;
			const outcome = await flight.promise;
			if (flight.reported === reported) return outcome;
		}
		const now = Date.now();
		const { current, previous, lastForcedAt } = this.#slot();
		const appid = this.#app.appid;
		if (!isUsable(current, now)) return this.get();
		if (reported !== current.value) {
			log("info", "invalidation_stale", { appid, key: reporter, reported: maskToken(reported), was: previous?.value === reported ? "previous" : "unknown" });
			return ok(current);
		}
		// A recent verdict on this very value is older news than WeChat refusing it to the broker just now.
		const verdict = this.#verdict;
		if (!confirmedByWeChat && verdict?.value === reported && now >= verdict.at && now - verdict.at < REPORT_VERDICT_S * 1_000) {
			log("warn", "invalidation_refuted", { appid, key: reporter, reported: maskToken(reported), probe: "recent" });
			return verdict.outcome.ok ? ok(current) : verdict.outcome;
		}
		const limited = forcedRefreshLimit(lastForcedAt, now) ?? this.#quotaGuard(now);
		if (limited) return fail(limited);
		log("info", "invalidation_accepted", { appid, key: reporter, reported: maskToken(reported), confirmed_by_wechat: confirmedByWeChat });
		const flight = this.#fly("invalidate", reported, () => this.#replace(reported, reporter, confirmedByWeChat));
		if (confirmedByWeChat) this.#markRevoking();
		return flight;
	}

	/** Admin: a new value now, whatever the current one's age (stable token: force_refresh). */
	async force(): Promise<Outcome> {
		while (this.#flight) await this.#flight.promise;
		const now = Date.now();
		const limited = forcedRefreshLimit(this.#slot().lastForcedAt, now)
			?? stableForceLimit(this.#app, this.#host.usage(), now) ?? this.#quotaGuard(now);
		if (limited) return fail(limited);
		const flight = this.#fly("admin", null, () => this.#fetchAndStore("admin", true));
		// A stable force_refresh revokes the current token the moment WeChat takes it; a classic mint leaves it 300 s.
		if (this.#kind.policy === "stable") this.#markRevoking();
		return flight;
	}

	/**
	 * Cron: refresh when due, and only then (a refresh on every run would burn quota and revoke values in
	 * use); and repair a failed edge write. A kind never asked for (`current` null, no error) is left alone:
	 * tickets are fetched on their first request.
	 */
	async refreshIfDue(): Promise<CronAction> {
		const report = await this.#refreshIfDue();
		const { current, edgeRecord } = this.#slot();
		if (!sameRecord(current, edgeRecord) && isUsable(current, Date.now())) await this.#writeEdge(current);
		return report;
	}

	async #refreshIfDue(): Promise<CronAction> {
		const now = Date.now();
		const { current, retryAt, lastRefresh, lastError } = this.#slot();
		if (this.#kind.derived && !current && !lastRefresh && !lastError) return { action: "fresh" };
		if (isUsable(current, now) && !isDue(current, now)) return { action: "fresh" };
		if (now < retryAt) return { action: "backing_off" };
		const outcome = await this.#fly("cron", null, () => this.#fetchAndStore("cron", false));
		return { action: outcome.ok ? "refreshed" : "failed" };
	}

	/** Resolves when no refresh is under way (a read's background refresh included). */
	async idle(): Promise<void> {
		while (this.#flight) await this.#flight.promise;
	}

	/** Drops the failure backoff: the operator changed the configuration, so the next attempt may succeed. */
	forgetBackoff(): void {
		if (this.#slot().retryAt > 0) this.#update({ retryAt: 0 });
	}

	#quotaGuard(now: number): Failure | null {
		return quotaGuard(this.#kind, this.#host.usage(), this.#host.config().quotaGuardShare, now);
	}

	/** Single flight: join the refresh under way, or start `run` as the one every later caller joins. */
	#fly(trigger: RefreshTrigger, reported: string | null, run: () => Promise<Outcome>): Promise<Outcome> {
		if (this.#flight) return this.#flight.promise;
		const promise = run().finally(() => {
			this.#flight = null;
		});
		this.#flight = { promise, reported, revoking: false };
		log("info", "refresh_started", { appid: this.#app.appid, credential: this.#kind.label, trigger, mode: this.#app.mode });
		return promise;
	}

	/**
	 * Replaces a token reported dead. A stable token gets a normal call first: if something else already
	 * rotated it, that returns the new one without spending one of the 20 daily forces. Before a call that
	 * revokes tokens (classic; stable force) one getcallbackip made with the reported token asks WeChat
	 * whether it really refuses it: a token WeChat accepts is answered as it is. When the probe cannot tell
	 * (WeChat unreachable, an errcode that is not about the token), the token is kept and the client told to
	 * retry in a minute; that answer is remembered like any other, so a client looping on it costs one normal
	 * call and one probe a minute, not one of each per report.
	 */
	async #replace(reported: string, reporter: string, confirmedByWeChat: boolean): Promise<Outcome> {
		const appid = this.#app.appid;
		if (this.#kind.policy !== "classic") {
			const normal = await this.#fetchAndStore("invalidate", false, { unlessValue: reported });
			if (!normal.ok || normal.record.value !== reported || this.#kind.policy !== "stable") return normal;
		}
		const verdict = confirmedByWeChat ? "refused" : await this.#probe(reported);
		const { current } = this.#slot();
		if (verdict === "accepted" && isUsable(current, Date.now())) {
			log("warn", "invalidation_refuted", { appid, key: reporter, reported: maskToken(reported), probe: "getcallbackip" });
			return this.#remember(reported, ok(current));
		}
		if (verdict === "unknown") {
			// Not proof either way: the token stays (revoking a token WeChat may still accept would break every
			// client that holds it), and the client is told to retry once WeChat can be asked.
			log("warn", "probe_inconclusive", { appid, key: reporter, reported: maskToken(reported) });
			return this.#remember(reported, fail({
				code: "wechat_unreachable",
				message: "WeChat could not confirm that it refuses this token (its getcallbackip check did not answer), so the broker kept it; retry in a minute.",
				retryAfterS: REPORT_VERDICT_S,
			}));
		}
		this.#markRevoking();
		const limited = stableForceLimit(this.#app, this.#host.usage(), Date.now());
		if (limited) return this.#remember(reported, fail(limited));
		return this.#fetchAndStore("invalidate", true);
	}

	#markRevoking(): void {
		if (this.#flight) this.#flight.revoking = true;
	}

	#remember(value: string, outcome: Outcome): Outcome {
		this.#verdict = { value, at: Date.now(), outcome };
		return outcome;
	}

	async #probe(token: string): Promise<"accepted" | "refused" | "unknown"> {
		this.#host.setUsage(countCall(this.#host.usage(), "getcallbackip", Date.now()));
		await this.#host.save();
		return probeToken(this.#app, token, this.#host.config());
	}

	/**
	 * One fetch with its retries. Before each attempt the call is counted, a forced one is stamped (the 30 s
	 * spacing counts from when a force reaches WeChat), and the `inFlight` marker is persisted.
	 */
	async #attempt(force: boolean, maxAttempts: number | undefined, token: string | null, { afterLostForce = false } = {}): Promise<Attempted> {
		const config = this.#host.config();
		const forcing = force && this.#kind.policy === "stable";
		// The marker says "a force may have revoked the current value" until WeChat's live one is known.
		const call: InFlightCall = { call: this.#kind.call, force: forcing || afterLostForce, startedAt: Date.now() };
		// A force is sent once: WeChat ignores another within 30 s, and a lost answer is settled by the normal
		// call that follows it, not by forcing again.
		if (forcing) maxAttempts = 1;
		const result = await withRetry(() => this.#kind.fetch(config, forcing, token), async () => {
			const now = Date.now();
			let usage = countCall(this.#host.usage(), call.call, now);
			if (forcing) usage = countCall(usage, "stable_token_force", now);
			this.#host.setUsage(usage);
			this.#update({ inFlight: call, ...(force && { lastForcedAt: now }) });
			await this.#host.save();
		}, maxAttempts);
		this.#update({ inFlight: null });
		return { result, call };
	}

	/**
	 * A derived kind (a ticket) is fetched with the app's current token. WeChat refusing that token
	 * (40001/40014/42001) means the token is bad, not the ticket: compare-and-refresh the token with the one
	 * used (WeChat's own answer, so no probe), then try the ticket once more.
	 */
	async #fetch(force: boolean, maxAttempts: number | undefined): Promise<Attempted | Outcome> {
		if (!this.#kind.derived) return this.#attempt(force, maxAttempts, null);
		const token = await this.#host.token();
		if (!token.ok) return token;
		const first = await this.#attempt(force, maxAttempts, token.record.value);
		if (first.result.ok || !first.result.failure.tokenRefused) return first;
		log("warn", "ticket_token_refused", { appid: this.#app.appid, credential: this.#kind.label, token: maskToken(token.record.value) });
		const healed = await this.#host.healToken(token.record.value);
		if (!healed.ok || healed.record.value === token.record.value) return first;
		return this.#attempt(force, 1, healed.record.value);
	}

	/** One refresh; on success the new value replaces the current one in storage and KV, on failure nothing valid is lost. */
	async #fetchAndStore(trigger: RefreshTrigger, force: boolean, { unlessValue }: { unlessValue?: string } = {}): Promise<Outcome> {
		const now0 = Date.now();
		const hourly = hourlyLimit(this.#kind, this.#host.usage(), now0);
		if (hourly) return fail(hourly);
		// Past the guard's share of the daily quota, a long outage must not spend the rest: one attempt a
		// refresh, and long pauses between refreshes.
		const conserving = this.#quotaGuard(now0) !== null;
		const maxAttempts = conserving ? 1 : undefined;
		const first = await this.#fetch(force, maxAttempts);
		if (!("result" in first)) return first;
		let { result } = first;
		const { call } = first;
		let forcedAway = call.force;
		if (!result.ok && result.unanswered && call.force) {
			// WeChat may have carried out the force and revoked the current token: a normal call (which
			// revokes nothing) returns whatever token WeChat now considers live.
			log("warn", "force_unanswered", { appid: this.#app.appid, trigger });
			const followUp = await this.#attempt(false, maxAttempts, null, { afterLostForce: true });
			if (followUp.result.ok) ({ result } = followUp);
			else forcedAway = true;
		}
		if (!result.ok) return this.#failed(trigger, result, call, conserving);

		const now = Date.now();
		const old = this.#slot().current;
		let record = planRecord(result.value.value, this.#kind.policy, call.startedAt, result.value.expiresInS);
		if (record.value === unlessValue) {
			// The caller may replace this value at once: storing it (and writing KV twice within a second,
			// more than KV allows per key) would only race the replacement.
			await this.#host.save();
			return ok(record);
		}
		if (this.#kind.policy === "independent" && old?.value === record.value) record = notRenewableBeforeExpiry(record);
		const rotated = old !== null && old.value !== record.value;
		this.#update({
			current: record,
			previous: rotated ? { value: old.value, acceptedUntil: previousAcceptedUntil(old, forcedAway, call.startedAt, now) } : this.#slot().previous,
			lastRefresh: { at: now, trigger },
			consecutiveFailures: 0,
			retryAt: 0,
		});
		await this.#host.save();
		await this.#writeEdge(record);
		log("info", "refreshed", {
			appid: this.#app.appid, credential: this.#kind.label, trigger, value: maskToken(record.value),
			wechat_expires_in: result.value.expiresInS, expires_in: expiresInS(record, now), same_value: old?.value === record.value,
		});
		await this.#host.assessHealth();
		return ok(record);
	}

	async #failed(trigger: RefreshTrigger, result: RetriedResult<Fetched> & { ok: false }, call: InFlightCall, conserving: boolean): Promise<Outcome> {
		const now = Date.now();
		const failure = result.failure.class === "quota" && this.#app.platform === "wechat"
			? { ...result.failure, message: `${result.failure.message} (next reset ${iso(nextQuotaReset(now))})` }
			: result.failure;
		const failures = this.#slot().consecutiveFailures + 1;
		const backoffS = conserving ? CONSERVING_BACKOFF_S : Math.min(BACKOFF_BASE_S * 2 ** (failures - 1), BACKOFF_CAP_S[failure.class]);
		const retryAt = now + backoffS * 1_000;
		const before = this.#slot().current;
		const current = result.unanswered ? afterUnansweredCall(before, call) : before;
		this.#update({ current, consecutiveFailures: failures, retryAt, lastError: { at: now, failure } });
		await this.#host.save();
		// The edge copy must not go on promising the longer lifetime.
		if (current && !sameRecord(current, before)) await this.#writeEdge(current);
		log("error", "refresh_failed", {
			appid: this.#app.appid, credential: this.#kind.label, trigger, errcode: failure.errcode ?? null, message: failure.message,
			consecutive_failures: failures, retry_in_s: backoffS, unanswered: result.unanswered,
		});
		await this.#host.assessHealth();
		return fail(upstreamFailure(failure, retryAt, now));
	}

	/**
	 * Writes the edge copy and remembers which record KV holds. Another change may land while KV is being
	 * written, and KV keeps whichever write finishes last, so only a write of the record that is still
	 * current counts; a write of an older one that succeeded may have overwritten the newer copy.
	 */
	async #writeEdge(record: CredentialRecord): Promise<void> {
		const written = await writeEdgeCopy(this.#host.kv(), this.#app.appid, this.#kind.type, record, Date.now());
		const { current, edgeRecord: known } = this.#slot();
		const isCurrent = sameRecord(current, record);
		const edgeRecord = isCurrent ? (written ? record : null) : written ? null : known;
		if (sameRecord(edgeRecord, known)) return;
		this.#update({ edgeRecord });
		await this.#host.save();
	}
}
