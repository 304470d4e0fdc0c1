/**
 * One upstream fetch of a credential, with its retries: before each attempt the call is counted, a forced
 * one is stamped (the 30 s spacing counts from when a force reaches WeChat), and the `inFlight` marker is
 * persisted, so a restart in the middle leaves a trace (engine/state.ts). A ticket is fetched with the app's
 * current token, which is healed first when WeChat refuses it.
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import { log, maskToken } from "../core/log";
import type { Outcome } from "../core/outcome";
import { countCall, type Usage } from "../core/usage";
import type { Fetched } from "../wechat/client";
import type { UpstreamFailure } from "../wechat/upstream";
import { withRetry, type RetriedResult } from "../wechat/retry";
import type { CredentialKind, TicketedFetch } from "./kinds";
import type { InFlightCall, SlotState } from "./state";

export interface AttemptHost {
	readonly app: AppConfig;
	readonly kind: CredentialKind;
	readonly config: BrokerConfig;
	usage(): Usage;
	setUsage(usage: Usage): void;
	update(change: Partial<SlotState>): void;
	save(): Promise<void>;
	token(): Promise<Outcome>;
	healToken(used: string): Promise<Outcome>;
	/** The newest pushed ticket (a component's or a suite's, authority/pushed-ticket.ts), or null before the first. */
	pushedTicket(): Promise<string | null>;
	/** An authorizer's or an installed company's object (authority/sealed-grant.ts); null for every other app. */
	authorizer(): AuthorizerLink | null;
}

/** What a token fetched with a sealed grant needs of its object (authority/sealed-grant.ts). */
export interface AuthorizerLink {
	/** The parent's current token (the component's, the suite's), from the parent's own object. */
	parentToken(): Promise<Outcome>;
	/** Compare-and-refresh of the parent's token `used`, which the platform refused in its answer. */
	healParent(used: string): Promise<Outcome>;
	/** Why no call may be sent now (the grant must be given again), or null. */
	blocked(): UpstreamFailure | null;
	/** An answer carried a refresh token: sealed and stored before the answer is used. */
	keepRefreshToken(token: string): Promise<void>;
	/** The grant is dead (61023 / 61003, 40084 / 40082): it must be given again (one incident, no more calls). */
	needsReauthorisation(failure: UpstreamFailure): Promise<void>;
}

/** One upstream fetch (with its retries) and when its first attempt went out. */
export interface Attempted {
	readonly result: RetriedResult<Fetched>;
	readonly call: InFlightCall;
}

/**
 * `afterLostForce`: the normal call that follows a force whose answer was lost; its marker still says a
 * force may have revoked the current value, until WeChat's live one is known.
 */
export async function attempt(host: AttemptHost, force: boolean, maxAttempts: number | undefined, token: string | null, { afterLostForce = false } = {}): Promise<Attempted> {
	const forcing = force && host.kind.policy === "stable";
	const call: InFlightCall = { call: host.kind.call, force: forcing || afterLostForce, startedAt: Date.now() };
	// A force is sent once: WeChat ignores another within 30 s, and a lost answer is settled by the normal
	// call that follows it, not by forcing again.
	if (forcing) maxAttempts = 1;
	const result = await withRetry(() => host.kind.fetch(host.config, forcing, token), async () => {
		const now = Date.now();
		let usage = countCall(host.usage(), call.call, now);
		if (forcing) usage = countCall(usage, "stable_token_force", now);
		host.setUsage(usage);
		host.update({ inFlight: call, ...(force && { lastForcedAt: now }) });
		await host.save();
	}, maxAttempts);
	// The marker stays until the caller records the outcome (fetch-and-store.ts): until the new value is
	// current, a reader must still get the current one as capped for a call that may have acted.
	return { result, call };
}

/**
 * A derived kind (a ticket) is fetched with the app's current token. WeChat refusing that token
 * (40001/40014/42001) means the token is bad, not the ticket: compare-and-refresh the token with the one
 * used (WeChat's own answer, so no probe), then try the ticket once more.
 */
export async function fetchCredential(host: AttemptHost, force: boolean, maxAttempts: number | undefined): Promise<Attempted | Outcome> {
	if (host.kind.ticketed) return withTicket(host, host.kind.ticketed, force, maxAttempts);
	if (host.kind.regrant) return withParentToken(host, host.kind.regrant, host.authorizer()!, force, maxAttempts);
	if (!host.kind.derived) return attempt(host, force, maxAttempts, null);
	const token = await host.token();
	if (!token.ok) return token;
	const first = await attempt(host, force, maxAttempts, token.record.value);
	if (first.result.ok || !first.result.failure.tokenRefused) return first;
	log("warn", "ticket_token_refused", { appid: host.app.appid, credential: host.kind.label, token: maskToken(token.record.value) });
	const healed = await host.healToken(token.record.value);
	if (!healed.ok || healed.record.value === token.record.value) return first;
	return attempt(host, force, 1, healed.record.value);
}

/**
 * A component token (a suite token) is fetched with the newest ticket the platform pushed. Without one
 * nothing is sent (and nothing counted): the refresh fails as the platform would refuse it, with a message
 * that names what to check, so it has its backoff, its incident and its alert like any refusal.
 */
async function withTicket(host: AttemptHost, ticketed: TicketedFetch, force: boolean, maxAttempts: number | undefined): Promise<Attempted> {
	const ticket = await host.pushedTicket();
	if (ticket !== null) return attempt(host, force, maxAttempts, ticket);
	const call: InFlightCall = { call: host.kind.call, force: false, startedAt: Date.now() };
	return { call, result: { ok: false, failure: ticketed.missing, unanswered: false } };
}

/**
 * An authorizer's token is fetched with the component's token, an installed company's with the suite's. A
 * refresh token in the answer is stored (sealed) before the answer is used; a dead grant's errcodes (61023 /
 * 61003, 40084 / 40082) stop the calls until the grant is given again.
 */
async function withParentToken(host: AttemptHost, regrant: ReadonlySet<number>, link: AuthorizerLink, force: boolean, maxAttempts: number | undefined): Promise<Attempted | Outcome> {
	const blocked = link.blocked();
	if (blocked) return { call: { call: host.kind.call, force: false, startedAt: Date.now() }, result: { ok: false, failure: blocked, unanswered: false } };
	const token = await link.parentToken();
	if (!token.ok) return token;
	let attempted = await attempt(host, force, maxAttempts, token.record.value);
	// The answer may refuse the parent's token, not the grant (a corp's 40082 is either): the parent's object
	// compares and refreshes it; only a new parent token is worth one more try, and with the same one the
	// answer stands as the grant's.
	const refused = attempted.result.ok ? undefined : attempted.result.failure.errcode;
	if (refused !== undefined && host.kind.parentRefused?.has(refused)) {
		const healed = await link.healParent(token.record.value);
		if (healed.ok && healed.record.value !== token.record.value) attempted = await attempt(host, force, 1, healed.record.value);
	}
	const { result } = attempted;
	if (result.ok && result.value.refreshToken && result.value.refreshToken !== host.app.secret) await link.keepRefreshToken(result.value.refreshToken);
	if (!result.ok && result.failure.errcode !== undefined && regrant.has(result.failure.errcode)) await link.needsReauthorisation(result.failure);
	return attempted;
}
