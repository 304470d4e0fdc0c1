/**
 * The refresh engine for one credential of one app, whatever its kind (kinds.ts): when a refresh runs and
 * who waits for it — single flight, reads of a due or dead value, compare-and-refresh, admin forces, the
 * cron — and the limits on each. How one refresh runs and what it stores, the KV edge copy included, is
 * fetch-and-store.ts. The Durable Object (token-authority.ts) holds one Refresher per credential and the
 * state they share; this class holds only what is memory-only by design.
 *
 * Why one refresh at a time holds: an object runs one call at a time up to its first await, and every path
 * that calls WeChat goes through `#fly`, which installs `#flight` synchronously before its first await.
 * Any call that arrives while WeChat is being asked joins that flight instead of starting another, so N
 * concurrent readers of a cold or due credential cause exactly one upstream call. `#flight` and `#verdicts`
 * are memory only: losing them with the object is fine, as nothing awaits the one and the other is a shortcut.
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import { KV_KEY_WRITE_INTERVAL_MS } from "../edge/edge-cache";
import { awaitingRenewal, isDue, isUsable, mintsOnRefresh, UNUSABLE_RECHECK_MS, type CredentialRecord } from "../core/lifetime";
import { log, maskToken } from "../core/log";
import { fail, ok, type Failure, type Outcome } from "../core/outcome";
import { forcedRefreshLimit, stableForceLimit } from "./refresh-limits";
import type { Usage } from "../core/usage";
import { upstreamFailure } from "./backoff";
import { fetchAndStore, quotaGuardFor, writeEdge, type CredentialHost } from "./fetch-and-store";
import type { CredentialType } from "../core/credentials";
import { kindFor, type CredentialKind } from "./kinds";
import type { AuthorizerLink } from "./attempt";
import { refusedOutright } from "./health";
import { INCONCLUSIVE_PROBE, probe, VerdictMemory } from "./reports";
import { afterUnansweredCall, sameRecord, type RefreshTrigger, type SlotState } from "./state";

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
	/** Ticketed kinds (a component's or a suite's token): the newest pushed ticket, or null before the first. */
	pushedTicket(): Promise<string | null>;
	/** An authorizer's object: what its token fetch needs (attempt.ts); null for every other app. */
	authorizer(): AuthorizerLink | null;
}

/** What a reader is told while WeCom still hands out the token that expires now. */
function renewalPending(refreshAt: number, now: number): Failure {
	return {
		code: "wechat_unreachable",
		message: "WeCom handed back the token that is expiring now; it issues a new one only once that one has expired, which the broker asks for in a moment: retry in a second.",
		retryAfterS: Math.max(1, Math.ceil((refreshAt - now) / 1_000)),
	};
}

export interface CronAction {
	readonly action: "fresh" | "refreshed" | "failed" | "backing_off";
}

export class Refresher {
	readonly #host: RefresherHost;
	readonly #type: CredentialType;
	/**
	 * The refresh under way. `revoking`: it is known to kill the current value at once (WeChat refused it, or
	 * it is a stable force_refresh), so readers wait for its result instead of getting that value; from the
	 * moment the flight starts, before its in-flight marker exists (the edge copy is retracted first).
	 */
	#flight: { readonly promise: Promise<Outcome>; readonly reported: string | null; revoking: boolean } | null = null;
	readonly #verdicts = new VerdictMemory();
	/** The rewrite of a copy KV refused (#repairEdge), shared by the readers that arrive meanwhile. */
	#repairing: Promise<unknown> | null = null;
	/** This credential's view of the host, for a refresh and the edge copy (fetch-and-store.ts). */
	readonly #credential: CredentialHost;

	constructor(host: RefresherHost, type: CredentialType) {
		this.#host = host;
		this.#type = type;
		this.#credential = {
			app: () => host.app(), kind: () => kindFor(host.app(), type), config: () => host.config(),
			slot: () => host.slot(type), update: (change) => this.#update(change),
			usage: () => host.usage(), setUsage: (usage) => host.setUsage(usage), save: () => host.save(),
			kv: () => host.kv(), assessHealth: () => host.assessHealth(),
			token: () => host.token(), healToken: (used) => host.healToken(used),
			pushedTicket: () => host.pushedTicket(),
			authorizer: () => host.authorizer(),
		};
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
		await this.#repairEdge();
		// Taken after any wait: a value that expired meanwhile must not be answered.
		const now = Date.now();
		const { current, retryAt, lastError, inFlight } = this.#slot();
		// A call under way may already have acted: a classic mint leaves the current token sure only until
		// 300 s after that call was sent; a stable force, not at all (then this reader waits below).
		const promised = inFlight ? afterUnansweredCall(current, inFlight) : current;
		if (isUsable(promised, now)) {
			if (isDue(promised, now) && now >= retryAt) this.#host.waitUntil(this.#fly("read", null, () => this.#fetchAndStore("read", false)));
			return ok(promised);
		}
		if (now < retryAt && lastError) return fail(upstreamFailure(lastError.failure, retryAt, now));
		// WeCom handed back the token that expires now (lifetime.ts): asking again before the recheck would
		// only get it again, once per reader. Only a kind renewed at its expiry: any other value with no whole
		// second left before its plan (a no_overlap one, promised only until then) is simply refreshed now.
		if (this.#kind.sameUntilExpiry && awaitingRenewal(promised, now)) return fail(renewalPending(promised!.refreshAt, now));
		// A value that mints on refresh, promised only until its plan (no_overlap), in the last second before it:
		// a reader a moment ago was promised up to the plan, and a mint sent sooner may revoke that token at
		// once. This reader waits for the plan (under a second), then joins the refresh.
		const lastSecond = promised as CredentialRecord | null;
		if (lastSecond && mintsOnRefresh(this.#kind.policy) && now < lastSecond.refreshAt && now < lastSecond.expiresAt) {
			await new Promise((resolve) => setTimeout(resolve, Math.min(lastSecond.refreshAt - now, UNUSABLE_RECHECK_MS)));
		}
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
	 * `confirmedByWeChat`: WeChat refused it in its answer to a request the broker built (a ticket call), so
	 * no probe is needed; a client's report and the gateway's forwarded answers are not that.
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
		const recalled = confirmedByWeChat ? null : this.#verdicts.recall(reported, now);
		if (recalled) {
			log("warn", "invalidation_refuted", { appid, key: reporter, reported: maskToken(reported), probe: "recent" });
			return recalled.ok ? ok(current) : recalled;
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
		// Only a stable token's force spends one of WeChat's 20 daily force_refresh calls; a ticket's does not.
		const limited = forcedRefreshLimit(this.#slot().lastForcedAt, now)
			?? (this.#kind.policy === "stable" ? stableForceLimit(this.#app, this.#host.usage(), now) : null) ?? this.#quotaGuard(now);
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
		const { current, edgeRecord, inFlight } = this.#slot();
		// Not while a refresh is out (a force whose KV copy was retracted, say): it writes KV itself, and the
		// current record's copy written meanwhile would promise the value that call may be revoking.
		if (this.#flight || inFlight) return report;
		if (!sameRecord(current, edgeRecord) && isUsable(current, Date.now())) await writeEdge(this.#credential, current);
		return report;
	}

	async #refreshIfDue(): Promise<CronAction> {
		const now = Date.now();
		const { current, retryAt, lastRefresh, lastError } = this.#slot();
		if (this.#kind.derived && !current && !lastRefresh && !lastError) return { action: "fresh" };
		// A ticket WeChat refuses the app outright (a fatal errcode such as 48001: a mini program has no JS-SDK
		// ticket) is asked for again only when someone requests it, and then after its backoff (DESIGN.md).
		if (refusedOutright(this.#kind, this.#slot())) return { action: "backing_off" };
		// After a failure the kind is tried again once its backoff is over, due or not, so an incident a blip
		// opened (two reports' normal calls, say) closes as soon as WeChat answers again rather than at the
		// planned refresh. Only where the call revokes nothing: a classic call mints a token, which revokes the
		// current one 300 s later (a component token's, perhaps at once), so those wait for their plan.
		const retrying = this.#slot().consecutiveFailures > 0 && !mintsOnRefresh(this.#kind.policy);
		if (isUsable(current, now) && !isDue(current, now) && !retrying) return { action: "fresh" };
		if (now < retryAt) return { action: "backing_off" };
		const outcome = await this.#fly("scheduled", null, () => this.#fetchAndStore("scheduled", false));
		return { action: outcome.ok ? "refreshed" : "failed" };
	}

	/**
	 * A normal (never forced) refresh now, whatever the current value's age: a new secret is checked at
	 * once. Joins a refresh under way instead of starting a second one.
	 */
	refreshNow(trigger: RefreshTrigger): Promise<Outcome> {
		return this.#fly(trigger, null, () => this.#fetchAndStore(trigger, false));
	}

	/**
	 * KV refused the current value's copy or issued record (a failed write; KV's one write a second per key,
	 * right after a force's retraction): while it is missing every isolate's read reaches this object, and
	 * the gateway may not know the token. So the first request a second after the refusal writes it again,
	 * before it is answered: the reader is handed a token the gateway knows, and reads go back to KV without
	 * waiting for the cron. Not while a refresh is under way: that one writes KV itself.
	 */
	async #repairEdge(): Promise<void> {
		const { current, edgeRecord, edgeFailedAt = 0, inFlight } = this.#slot();
		const now = Date.now();
		if (this.#flight || inFlight || edgeFailedAt === 0 || now < edgeFailedAt + KV_KEY_WRITE_INTERVAL_MS) return;
		if (sameRecord(current, edgeRecord) || !isUsable(current, now)) return;
		this.#repairing ??= writeEdge(this.#credential, current).finally(() => {
			this.#repairing = null;
		});
		await this.#repairing;
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
		return quotaGuardFor(this.#credential, now);
	}

	/** One refresh (fetch-and-store.ts); the callers here decide when it runs and who waits for it. */
	#fetchAndStore(trigger: RefreshTrigger, force: boolean, options?: { unlessValue?: string }): Promise<Outcome> {
		return fetchAndStore(this.#credential, trigger, force, options);
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
	 * Replaces a token reported dead. A stable token (and a WeCom one) gets a normal call first: if
	 * something else already rotated it, that returns the new one without spending one of the 20 daily
	 * forces. Before a call that revokes tokens (classic; stable force) WeChat is asked whether it really
	 * refuses the reported token (reports.ts): one it accepts is answered as it is, and when it cannot tell,
	 * the token is kept and the client told to retry;
	 * that answer is remembered like any other, so a client looping on it costs one normal call and one
	 * probe a minute, not one of each per report. So are a normal call that failed, and a WeCom one that
	 * returned the reported token (WeCom's gettoken hands out the live token, so it is not dead).
	 */
	async #replace(reported: string, reporter: string, confirmedByWeChat: boolean): Promise<Outcome> {
		const appid = this.#app.appid;
		// A call that mints (classic, a component token) has no normal mode that revokes nothing: probe first.
		if (!mintsOnRefresh(this.#kind.policy)) {
			const normal = await this.#fetchAndStore("invalidate", false, { unlessValue: reported });
			if (!normal.ok) return this.#verdicts.remember(reported, normal);
			if (normal.record.value !== reported) return normal;
			if (this.#kind.policy !== "stable") return this.#verdicts.remember(reported, normal);
		}
		const verdict = confirmedByWeChat ? "refused" : await probe(this.#app, this.#host.config(), reported, {
			get: () => this.#host.usage(), set: (usage) => this.#host.setUsage(usage), save: () => this.#host.save(),
		});
		const { current } = this.#slot();
		if (verdict === "accepted" && isUsable(current, Date.now())) {
			log("warn", "invalidation_refuted", { appid, key: reporter, reported: maskToken(reported), probe: "getcallbackip" });
			return this.#verdicts.remember(reported, ok(current));
		}
		if (verdict === "unknown") {
			log("warn", "probe_inconclusive", { appid, key: reporter, reported: maskToken(reported) });
			return this.#verdicts.remember(reported, fail(INCONCLUSIVE_PROBE));
		}
		this.#markRevoking();
		const limited = stableForceLimit(this.#app, this.#host.usage(), Date.now());
		if (limited) return this.#verdicts.remember(reported, fail(limited));
		return this.#fetchAndStore("invalidate", true);
	}

	#markRevoking(): void {
		if (this.#flight) this.#flight.revoking = true;
	}
}
