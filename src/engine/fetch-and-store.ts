/**
 * One refresh of one credential, and what it leaves in storage and KV: the edge copy retracted before a call
 * that can revoke the current value, the upstream call with its retries (attempt.ts), a lost force settled
 * by a normal call, then either the new value (with the one it replaced, and its edge copy) or the failure
 * (with its backoff, and the cap a lost answer puts on the current value).
 *
 * Its own module because it is the engine's mechanism, not its policy: the Refresher (refresher.ts) decides
 * when a refresh runs and who waits for it (single flight, reads, reports, admin forces, the cron); this
 * module runs the one it is given and keeps storage and the KV edge copy in step with what WeChat said.
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import { writeEdgeCopy } from "../edge/edge-cache";
import { KV_MIN_TTL_S, writeIssued } from "../edge/issued-index";
import { expiresInS, isDue, isUsable, mintsOnRefresh, notRenewableBeforeExpiry, planRecord, sameValueAgain, type CredentialRecord } from "../core/lifetime";
import { log, maskToken } from "../core/log";
import { fail, ok, type Failure, type Outcome } from "../core/outcome";
import { hourlyLimit, quotaGuard } from "./refresh-limits";
import { nextQuotaReset, type Usage } from "../core/usage";
import type { Fetched } from "../wechat/client";
import type { RetriedResult } from "../wechat/retry";
import type { UpstreamFailure } from "../wechat/upstream";
import { attempt, fetchCredential, type AttemptHost, type AuthorizerLink } from "./attempt";
import { backoffAfter, upstreamFailure } from "./backoff";
import type { CredentialKind } from "./kinds";
import { afterUnansweredCall, previousAcceptedUntil, previousIssuedUntil, sameRecord, type InFlightCall, type RefreshTrigger, type SlotState } from "./state";

/** One credential's view of the object that holds it; every accessor reads the state as it is now. */
export interface CredentialHost {
	app(): AppConfig;
	kind(): CredentialKind;
	config(): BrokerConfig;
	slot(): SlotState;
	update(change: Partial<SlotState>): void;
	usage(): Usage;
	setUsage(usage: Usage): void;
	save(): Promise<void>;
	kv(): KVNamespace;
	/** Opens or closes the app's incident after a change. */
	assessHealth(): Promise<void>;
	/** Derived kinds: the app's current access_token, and compare-and-refresh of one WeChat refused. */
	token(): Promise<Outcome>;
	healToken(used: string): Promise<Outcome>;
	/** Ticketed kinds (a component or suite token): the newest pushed ticket, or null when none was pushed. */
	pushedTicket(): Promise<string | null>;
	/** An authorizer's object: what its token fetch needs (attempt.ts); null for every other app. */
	authorizer(): AuthorizerLink | null;
}

function iso(ms: number): string {
	return new Date(ms).toISOString();
}

/** The quota guard for this credential's call, at `now`: a failure once the guard's share of the day is spent. */
export function quotaGuardFor(host: CredentialHost, now: number): Failure | null {
	return quotaGuard(host.kind(), host.usage(), host.config().quotaGuardShare, now);
}

/** What the upstream call needs (attempt.ts), with the app, kind and configuration as they are when it starts. */
function attemptHost(host: CredentialHost): AttemptHost {
	return {
		app: host.app(), kind: host.kind(), config: host.config(),
		usage: () => host.usage(), setUsage: (usage) => host.setUsage(usage),
		update: (change) => host.update(change), save: () => host.save(),
		token: () => host.token(), healToken: (used) => host.healToken(used),
		pushedTicket: () => host.pushedTicket(),
		authorizer: () => host.authorizer(),
	};
}

/**
 * One refresh; on success the new value replaces the current one in storage and KV, on failure nothing valid
 * is lost. `unlessValue`: a value the caller will replace at once if WeChat returns it, so it is not stored.
 */
export async function fetchAndStore(host: CredentialHost, trigger: RefreshTrigger, force: boolean, { unlessValue }: { unlessValue?: string } = {}): Promise<Outcome> {
	const now0 = Date.now();
	const hourly = hourlyLimit(host.kind(), host.usage(), now0);
	if (hourly) return fail(hourly);
	// Past the guard's share of the daily quota, a long outage must not spend the rest: one attempt a
	// refresh, and long pauses between refreshes.
	const conserving = quotaGuardFor(host, now0) !== null;
	const maxAttempts = conserving ? 1 : undefined;
	// A call that mints, made before the plan (an operator's new secret checked at once, an authorizer's new
	// authorisation), revokes too: the current token dies 300 s later (classic) or perhaps at once
	// (no_overlap), so its copy must stop promising more first, as for a force.
	const revoking = force ? host.kind().policy !== "independent" : trigger === "configure" && mintsOnRefresh(host.kind().policy);
	if (revoking && !(await retractEdgeCopy(host, now0))) {
		host.update({ inFlight: null });
		return fail(RETRACTION_REFUSED);
	}
	const first = await fetchCredential(attemptHost(host), force, maxAttempts);
	if (!("result" in first)) return awaitingTheOther(host, first);
	let { result } = first;
	const { call } = first;
	let forcedAway = call.force;
	if (!result.ok && result.unanswered && call.force) {
		// WeChat may have carried out the force and revoked the current token: a normal call (which
		// revokes nothing) returns whatever token WeChat now considers live.
		log("warn", "force_unanswered", { appid: host.app().appid, trigger });
		const followUp = await attempt(attemptHost(host), false, maxAttempts, null, { afterLostForce: true });
		if (followUp.result.ok) ({ result } = followUp);
		else forcedAway = true;
	}
	if (!result.ok) return failed(host, trigger, result, call, conserving);

	const now = Date.now();
	const kind = host.kind();
	const old = host.slot().current;
	let record = planRecord(result.value.value, kind.policy, call.startedAt, result.value.expiresInS);
	if (record.value === unlessValue) {
		// The caller may replace this value at once: storing it (and writing KV twice within a second,
		// more than KV allows per key) would only race the replacement. WeChat answered, though: the
		// failures before it are over, and so is any incident they opened.
		host.update({ consecutiveFailures: 0, retryAt: 0, inFlight: null });
		await host.save();
		await host.assessHealth();
		return ok(record);
	}
	if (kind.policy === "independent" && old?.value === record.value) record = sameValueAgain(old, record, now);
	else if (kind.sameUntilExpiry) record = notRenewableBeforeExpiry(record, now);
	const rotated = old !== null && old.value !== record.value;
	// The gateway must know the token the moment any reader can be handed it: its issued record goes to KV
	// before it becomes current (a read meanwhile gets the value it replaces, or waits for this flight).
	// If KV refuses, the token is stored all the same (WeChat has it; the old one may be dying), and the
	// record is written again with the edge copy, and then by the first request a second later (Refresher).
	const indexed = kind.type === "token" && await indexIssued(host, record, now);
	const acceptedUntil = rotated ? previousAcceptedUntil(old, forcedAway, call.startedAt, now) : 0;
	host.update({
		current: record,
		previous: rotated ? { value: old.value, acceptedUntil, issuedUntil: previousIssuedUntil(acceptedUntil, trigger, now) } : host.slot().previous,
		lastRefresh: { at: now, trigger },
		consecutiveFailures: 0,
		retryAt: 0,
		inFlight: null,
	});
	await host.save();
	await writeEdge(host, record, { indexed, replaced: rotated });
	log("info", "refreshed", {
		appid: host.app().appid, credential: kind.label, trigger, value: maskToken(record.value),
		wechat_expires_in: result.value.expiresInS, expires_in: expiresInS(record, now), same_value: old?.value === record.value,
	});
	await host.assessHealth();
	return ok(record);
}

/**
 * The token this credential is fetched with (the app's own, for a ticket; the parent's, for an authorizer or
 * an installed company) is not to be had now, so nothing was sent. That is the other credential's failure,
 * not this one's: nothing is counted against this one, and a force's marker (set with its retraction) goes,
 * since no call is out. While the value is still one the platform accepts, its refresh is tried again when
 * the other says it will be back (`retryAfterS`: a suite token, which WeCom renews only at its expiry, a
 * second later), not by the alarm chain's stall backoff (5 s, doubling); at most OTHER_WAIT_MAX_S later, as a
 * pushed ticket can end the other's backoff early, and never past the value's own expiry: a reader that
 * finds no value then asks at once, not told an old failure of this one's for the rest of the wait
 * (refresher.ts get). A no_overlap value (an authorizer's) is promised until the retry, as after a refusal
 * (planRetry): nothing is sent before it.
 */
async function awaitingTheOther(host: CredentialHost, outcome: Outcome): Promise<Outcome> {
	const { current, inFlight } = host.slot();
	const retryAfterS = outcome.ok ? undefined : outcome.failure.retryAfterS;
	const now = Date.now();
	const waits = retryAfterS !== undefined && current !== null && now < current.expiresAt;
	if (!waits && !inFlight) return outcome;
	host.update({ inFlight: null });
	if (waits) {
		const retryAt = Math.min(now + Math.min(retryAfterS, OTHER_WAIT_MAX_S) * 1_000, current.expiresAt);
		host.update({ current: planRetry(current, retryAt), retryAt });
	}
	await host.save();
	return outcome;
}

async function failed(host: CredentialHost, trigger: RefreshTrigger, result: RetriedResult<Fetched> & { ok: false }, call: InFlightCall, conserving: boolean): Promise<Outcome> {
	const now = Date.now();
	const app = host.app();
	const failure = result.failure.class === "quota" && app.platform === "wechat"
		? { ...result.failure, message: `${result.failure.message} (next reset ${iso(nextQuotaReset(now))})` }
		: result.failure;
	const failures = host.slot().consecutiveFailures + 1;
	const backoffS = backoffAfter(failures, failure.class, conserving);
	const retryAt = now + backoffS * 1_000;
	const before = host.slot().current;
	const ended = !result.unanswered && endsHeldValue(host.kind(), failure);
	const current = result.unanswered ? afterUnansweredCall(before, call) : ended ? endedAt(before, call.startedAt) : planRetry(before, retryAt);
	host.update({ current, consecutiveFailures: failures, retryAt, lastError: { at: now, failure }, inFlight: null });
	await host.save();
	// The ended value's KV copy must stop being served too: a client's report of an `independent` value
	// retracted nothing before its call. (A copy already due, or retracted, is served by no isolate.)
	if (ended && current && before && !isDue(before, now) && !sameRecord(host.slot().edgeRecord, current)) await writeEdge(host, current, { retraction: true });
	log("error", "refresh_failed", {
		appid: app.appid, credential: host.kind().label, trigger, errcode: failure.errcode ?? null, message: failure.message,
		consecutive_failures: failures, retry_in_s: backoffS, unanswered: result.unanswered,
	});
	await host.assessHealth();
	return fail(upstreamFailure(failure, retryAt, now));
}

/**
 * A no_overlap value (a component token) is promised only until its planned refresh. WeChat answered this
 * failure, so it minted nothing and the value stands; nothing is sent again before `retryAt`: the plan, and
 * the promise with it, move there (never past the value's own expiry), so a refusal does not cost a value
 * WeChat still accepts. Other policies promise past their plan already.
 */
function planRetry(current: CredentialRecord | null, retryAt: number): CredentialRecord | null {
	if (!current || current.policy !== "no_overlap") return current;
	return { ...current, refreshAt: Math.min(current.expiresAt, Math.max(current.refreshAt, retryAt)) };
}

/**
 * A dead grant's errcode (the kind's `endsHeld`) says the value held is no longer the platform's to accept.
 * An authorizer's 61003: the account no longer authorises the component (its revocation stopped the
 * account's tokens: OPEN-PLATFORM.md §3, §8; the `unauthorized` push that would have wiped it was missed);
 * 61023: its refresh token was superseded by an authorisation exchanged elsewhere, which minted a token that
 * may have revoked this one (no overlap is assumed, §7). An installed company's 40084: it uninstalled (the
 * `cancel_auth` push was missed), and WeCom stops its tokens with the install (§10). So it is not handed
 * out a second longer: ended at the call, whatever the policy (an `independent` corp token included), and
 * reads answer the refusal, which names what to do. A scheduled refresh meets it once the value is due, when
 * no KV or memory copy is served any more; a force or a new grant retracted the copy first. (A client's
 * report of an `independent` value retracts nothing: its KV copy may still be served up to its plan.)
 */
function endsHeldValue(kind: CredentialKind, failure: UpstreamFailure): boolean {
	return failure.errcode !== undefined && kind.endsHeld !== undefined && kind.endsHeld.has(failure.errcode);
}

/** The value as it stands once the platform said it ended at `at` (the call that learned it). */
function endedAt(current: CredentialRecord | null, at: number): CredentialRecord | null {
	return current && { ...current, expiresAt: Math.min(current.expiresAt, at), refreshAt: Math.min(current.refreshAt, at) };
}

/** A refresh waiting for the token it is fetched with tries again at least this often (awaitingTheOther). */
const OTHER_WAIT_MAX_S = 60;

/** A forced call that KV's copy could not be made safe for is not sent (retractEdgeCopy). */
const RETRACTION_REFUSED: Failure = {
	code: "wechat_unreachable",
	message: "The broker could not update its KV copy before the forced refresh, so it did not send it (KV takes about one write a second per key); retry in a few seconds.",
	retryAfterS: 2,
};

/**
 * A forced call may revoke the current value before its answer arrives (a stable force at once, a
 * classic mint 300 s later), while the edge copy would go on promising it until its planned refresh.
 * So from now on the object promises what a lost answer would leave (afterUnansweredCall), as it does
 * while a call is out: the in-flight marker is set before the KV write, in memory (nothing is sent yet,
 * so a restart has nothing to recover), and writeEdge keeps KV at that capped copy while the marker
 * stands. The copy is due, or not usable at all, which no reader serves from KV or memory; reads reach the
 * object, which answers with the same cap. False when KV did not take it: then the force must not be sent,
 * or every isolate would go on reading the uncapped copy of a revoked value. Another location's KV may
 * still see the old copy for ~60 s (edge-cache.ts).
 */
async function retractEdgeCopy(host: CredentialHost, now: number): Promise<boolean> {
	const { current } = host.slot();
	if (!current) return true;
	const kind = host.kind();
	const marker: InFlightCall = { call: kind.call, force: kind.policy === "stable", startedAt: now };
	host.update({ inFlight: marker });
	const capped = afterUnansweredCall(current, marker);
	return capped ? writeEdge(host, capped, { retraction: true }) : true;
}

/**
 * Writes the edge copy and remembers which record KV holds. Another change may land while KV is being
 * written, and KV keeps whichever write finishes last, so only a write of the record that is still
 * current counts; a write of an older one that succeeded may have overwritten the newer copy, which is
 * then written again at once (a retraction is the one older record meant to stay). The cron calls it too,
 * to repair a copy that differs from the current record.
 */
export async function writeEdge(host: CredentialHost, record: CredentialRecord, { retraction = false, indexed = false, replaced = true } = {}): Promise<boolean> {
	const previous = replaced && !retraction ? replacedRecord(host.slot().previous) : null;
	const written = await writeEdgeCopy(host.kv(), host.app().appid, host.kind().type, record, Date.now(), { retraction, indexed, replaced: previous });
	const { current, edgeRecord: known, inFlight, edgeFailedAt: failedBefore = 0 } = host.slot();
	const isCurrent = sameRecord(current, record);
	// This older record may just have overwritten the current one's copy: put the current one back now,
	// rather than let every isolate read the replaced value until the next cron run.
	if (!isCurrent && written && !retraction && isUsable(current, Date.now())) return writeEdge(host, current);
	// A call is out (a force, retracted before it was sent): the current record's copy, written by a repair
	// that landed meanwhile, promises more than the call may leave; the retraction goes back.
	const capped = isCurrent && written && !retraction && inFlight ? afterUnansweredCall(current, inFlight) : null;
	if (capped && !sameRecord(capped, current)) return writeEdge(host, capped, { retraction: true });
	const edgeRecord = isCurrent ? (written ? record : null) : written ? null : known;
	// A refused write of the current record is tried again by the first request a second later (Refresher.get).
	const edgeFailedAt = !isCurrent ? failedBefore : written ? 0 : Date.now();
	if (sameRecord(edgeRecord, known) && edgeFailedAt === failedBefore) return written;
	host.update({ edgeRecord, edgeFailedAt });
	await host.save();
	return written;
}

/** The new token's issued record, before the token becomes current; false when KV refused it. */
async function indexIssued(host: CredentialHost, record: CredentialRecord, now: number): Promise<boolean> {
	try {
		await writeIssued(host.kv(), host.app().appid, record, Math.max(KV_MIN_TTL_S, Math.ceil((record.expiresAt - now) / 1_000)));
		return true;
	} catch (error) {
		log("warn", "edge_write_failed", { appid: host.app().appid, record: "issued", reason: error instanceof Error ? error.name : "unknown" });
		return false;
	}
}

/** The replaced token's issued record as it must now read (state.ts, previousIssuedUntil). */
function replacedRecord(previous: SlotState["previous"]): { value: string; until: number } | null {
	return previous && { value: previous.value, until: previous.issuedUntil ?? previous.acceptedUntil };
}
