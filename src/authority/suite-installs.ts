/**
 * The companies that installed a WeCom suite, in the suite's own object (DESIGN.md, "WeCom service
 * providers"): each install code WeCom issues (pushed as `create_auth` or, for 代开发 apps,
 * `reset_permanent_code`, or brought back to the vendor's redirect page and POSTed to
 * /wecom-suite/{s}/installs) is exchanged with get_permanent_code once, by whichever path it arrives (the
 * ledger is code-ledger.ts, shared with the open platform's authorisation codes). The permanent code goes to
 * the company's own object (adoptGrant), which seals it and fetches the company's token with it
 * (sealed-grant.ts): the company is then an app everywhere, named `<corpid>-<agentid>`.
 *
 * Recovery. WeCom has no API that lists installs with their permanent codes (get_auth_info needs the code),
 * and a permanent code is issued once: a company object that lost its storage could only be recovered by
 * the company installing again. So this object keeps, per company, a copy of the permanent code sealed
 * with REGISTRY_KEY (it saw the code anyway: it made the exchange), and POST /wecom-suite/{s}/installs/sync
 * re-adopts every installed company whose object no longer holds its grant. What is not recoverable: a
 * company this object never recorded (its storage lost too) — it must install again; the sync counts it
 * only if WeCom pushes or redirects a new code. `cancel_auth` deletes the copy ("delete the corp's data").
 */
import { DEFAULT_DAILY_QUOTA, DEFAULT_TICKET_DAILY_QUOTA } from "../config/apps";
import type { AppProfile, BrokerConfig } from "../config/config";
import { expiresInS } from "../core/lifetime";
import { log } from "../core/log";
import type { Failure, Outcome } from "../core/outcome";
import { INSTALL_CODE_LEDGER, INSTALL_PREFIX, installKey } from "../core/storage-keys";
import type { CountedCall } from "../core/usage";
import type { AppEnv } from "../env";
import { open, seal, sealingKeys, type Sealed } from "../registry/seal";
import { DEAD_AUTH_CODE_ERRCODES, getAuthInfo, getPermanentCode, getPreAuthCode } from "../wechat/install-client";
import { SUITE_TOKEN_INVALID } from "../wechat/suite-client";
import type { UpstreamResult } from "../wechat/upstream";
import { CodeLedger, refusal, type Exchanged, type LedgerOutcome } from "./code-ledger";

/** A company's install, in its suite's object. */
export interface InstallRecord {
	readonly corpid: string;
	readonly appid: string;
	readonly agentid: string | null;
	readonly corpName: string;
	readonly installedAt: number;
	readonly updatedAt: number;
	/** `cancel_auth`: when the company uninstalled; its sealed copy is gone. */
	readonly uninstalledAt?: number;
	/** The permanent code, sealed for "suite:<suite_id>:corp:<corpid>"; absent once uninstalled. */
	readonly sealed?: Sealed;
}

/** What an exchanged code made. */
interface MadeInstall {
	readonly corpid: string;
	readonly appid: string;
}

export type InstallOutcome = LedgerOutcome<{ readonly ok: true; readonly corpid: string; readonly appid: string; readonly expiresIn: number; readonly exchanged: boolean }>;

export type InstallSyncOutcome =
	| { readonly ok: true; readonly installs: number; readonly recovered: number; readonly already_serving: number; readonly uninstalled: number; readonly profiles: readonly AppProfile[] }
	| { readonly ok: false; readonly failure: Failure };

/** What this module asks of a company's object, handed in by the object that holds it. */
export interface CorpObjects {
	adopt(profile: AppProfile, permanentCode: string): Promise<Outcome>;
	revoke(appid: string, suiteId: string): Promise<AppProfile | null>;
	token(appid: string): Promise<Outcome>;
	/** Whether its object holds its grant (false: its storage was lost, or it was never adopted). */
	holdsGrant(appid: string): Promise<boolean>;
}

export interface SuiteInstallsHost {
	readonly storage: DurableObjectStorage;
	readonly env: AppEnv;
	config(): BrokerConfig;
	/** The suite's own suite_access_token (this object's `token` slot). */
	suiteToken(suiteId: string): Promise<Outcome>;
	/** Compare-and-refresh of the suite token `used`, which WeCom refused in an answer to the broker's own call. */
	healSuiteToken(suiteId: string, used: string): Promise<Outcome>;
	waitUntil(promise: Promise<unknown>): void;
	replan(): Promise<void>;
	countCall(call: CountedCall): Promise<void>;
	readonly corps: CorpObjects;
}

/** The profile of a company's app installed from `suiteId`: what every isolate knows of it. */
export function suiteCorpProfile(suiteId: string, corpid: string, agentid: string | null): AppProfile {
	return {
		appid: agentid ? `${corpid}-${agentid}` : corpid, source: "registry", platform: "wecom", mode: "suite_corp",
		dailyQuota: DEFAULT_DAILY_QUOTA.suite_corp, ticketDailyQuota: DEFAULT_TICKET_DAILY_QUOTA, corpid, ...(agentid && { agentid }), suiteId,
	};
}

/** The sealing owner of a company's permanent code copy: it never opens as anything else. */
function owner(suiteId: string, corpid: string): string {
	return `suite:${suiteId}:corp:${corpid}`;
}

export class SuiteInstalls {
	readonly #host: SuiteInstallsHost;
	readonly #ledger: CodeLedger<MadeInstall, InstallOutcome & { ok: true }>;

	constructor(host: SuiteInstallsHost) {
		this.#host = host;
		this.#ledger = new CodeLedger({
			storage: host.storage, keys: INSTALL_CODE_LEDGER, label: "install_code",
			waitUntil: (promise) => host.waitUntil(promise),
			replan: () => host.replan(),
			exchange: (suiteId, code) => this.#exchange(suiteId, code),
			result: async ({ corpid, appid }, exchanged) => {
				const token = await host.corps.token(appid);
				return { ok: true, corpid, appid, expiresIn: token.ok ? expiresInS(token.record, Date.now()) : 0, exchanged };
			},
		});
	}

	load(): Promise<void> {
		return this.#ledger.load();
	}

	/** create_auth / reset_permanent_code: the code stored before `success`, exchanged in the background. */
	received(suiteId: string, code: string): Promise<void> {
		return this.#ledger.received(suiteId, code);
	}

	wake(now: number): number | null {
		return this.#ledger.wake(now);
	}

	resume(suiteId: string): Promise<void> {
		return this.#ledger.resume(suiteId);
	}

	/** POST /wecom-suite/{s}/installs: the redirect's code, exchanged once (or the earlier exchange's answer). */
	exchange(suiteId: string, code: string): Promise<InstallOutcome> {
		return this.#ledger.exchange(suiteId, code);
	}

	settled(): Promise<void> {
		return this.#ledger.settled();
	}

	/** A fresh pre_auth_code for the install link (and its session: 1 a test install, 0 a normal one). */
	async preAuthCode(suiteId: string, authType: 0 | 1 | undefined): Promise<{ ok: true; code: string; expiresIn: number } | { ok: false; failure: Failure }> {
		const answer = await this.#withSuiteToken(suiteId, "get_pre_auth_code", (token) => getPreAuthCode(token, authType, this.#host.config()));
		if ("noToken" in answer) return { ok: false, failure: answer.noToken };
		return answer.ok ? { ok: true, code: answer.value.code, expiresIn: answer.value.expiresInS } : { ok: false, failure: refusal(answer.failure) };
	}

	/**
	 * `cancel_auth`: the company's object wipes its tokens (storage, KV, alarm; sealed-grant.ts) and this
	 * object deletes its copy of the permanent code. The revoked profile, for the isolate to forget it at once.
	 */
	async cancel(suiteId: string, corpid: string): Promise<AppProfile | null> {
		const record = await this.#host.storage.get<InstallRecord>(installKey(corpid));
		if (!record) {
			log("warn", "suite_uninstall_unknown", { suite_id: suiteId, corpid });
			return null;
		}
		const revoked = await this.#host.corps.revoke(record.appid, suiteId);
		const { sealed: _deleted, ...kept } = record;
		await this.#host.storage.put(installKey(corpid), { ...kept, uninstalledAt: Date.now(), updatedAt: Date.now() } satisfies InstallRecord);
		log("info", "suite_uninstalled", { suite_id: suiteId, corpid, appid: record.appid });
		return revoked;
	}

	/** `change_auth` carries no code: what the company grants is read again (get_auth_info), in the background. */
	changed(suiteId: string, corpid: string): void {
		this.#host.waitUntil(this.#reread(suiteId, corpid));
	}

	/** GET /wecom-suite/{s}/installs: the companies in corpid order, after `after`. */
	async list(after: string | null, limit: number): Promise<InstallRecord[]> {
		const rows = await this.#host.storage.list<InstallRecord>({ prefix: INSTALL_PREFIX, ...(after !== null && { startAfter: installKey(after) }), limit });
		return [...rows.values()];
	}

	/** POST /wecom-suite/{s}/installs/sync: every installed company whose object lost its grant gets it back. */
	async sync(suiteId: string): Promise<InstallSyncOutcome> {
		const counts = { installs: 0, recovered: 0, already_serving: 0, uninstalled: 0 };
		const profiles: AppProfile[] = [];
		const keys = await sealingKeys(this.#host.env);
		for (const record of (await this.#host.storage.list<InstallRecord>({ prefix: INSTALL_PREFIX })).values()) {
			counts.installs++;
			if (record.uninstalledAt !== undefined || !record.sealed) counts.uninstalled++;
			else if (await this.#host.corps.holdsGrant(record.appid)) counts.already_serving++;
			else {
				const permanentCode = await open(keys, owner(suiteId, record.corpid), record.sealed);
				const profile = suiteCorpProfile(suiteId, record.corpid, record.agentid);
				await this.#host.corps.adopt(profile, permanentCode);
				profiles.push(profile);
				counts.recovered++;
			}
		}
		log("info", "suite_installs_synced", { suite_id: suiteId, ...counts });
		return { ok: true, ...counts, profiles };
	}

	/**
	 * One of the suite's own calls, made with its suite token and counted. WeCom refusing the token itself
	 * (40082; 42009, expired in flight, which its renew-only-at-expiry rule makes likely in the deadline's
	 * last second) heals the token in this object (compare-and-refresh) and the call is made once more with
	 * the new one; the same token back means the refusal stands. `noToken`: no token could be had.
	 */
	async #withSuiteToken<T>(suiteId: string, call: CountedCall, send: (token: string) => Promise<UpstreamResult<T>>): Promise<UpstreamResult<T> | { readonly noToken: Failure }> {
		const token = await this.#host.suiteToken(suiteId);
		if (!token.ok) return { noToken: token.failure };
		await this.#host.countCall(call);
		const answer = await send(token.record.value);
		const refused = answer.ok ? undefined : answer.failure.errcode;
		if (refused === undefined || !SUITE_TOKEN_INVALID.has(refused)) return answer;
		const healed = await this.#host.healSuiteToken(suiteId, token.record.value);
		if (!healed.ok || healed.record.value === token.record.value) return answer;
		await this.#host.countCall(call);
		return send(healed.record.value);
	}

	async #exchange(suiteId: string, code: string): Promise<Exchanged<MadeInstall>> {
		const answer = await this.#withSuiteToken(suiteId, "get_permanent_code", (token) => getPermanentCode(token, code, this.#host.config()));
		if ("noToken" in answer) return { ok: false, dead: false, failure: { ...answer.noToken, message: `The install code cannot be exchanged yet: ${answer.noToken.message}` } };
		if (!answer.ok) {
			const { failure } = answer;
			log("warn", "install_code_refused", { suite_id: suiteId, errcode: failure.errcode ?? null, message: failure.message });
			const dead = failure.errcode !== undefined && DEAD_AUTH_CODE_ERRCODES.has(failure.errcode);
			return { ok: false, dead, failure: dead ? { code: "bad_request", message: failure.message, wechatErrcode: failure.errcode! } : refusal(failure) };
		}
		const { corpid, corpName, agentid, permanentCode } = answer.value;
		const profile = suiteCorpProfile(suiteId, corpid, agentid);
		// The copy first: a company whose object took the code but whose copy was never written could not be recovered.
		const existing = await this.#host.storage.get<InstallRecord>(installKey(corpid));
		const now = Date.now();
		await this.#host.storage.put(installKey(corpid), {
			corpid, appid: profile.appid, agentid, corpName, installedAt: existing?.uninstalledAt === undefined ? existing?.installedAt ?? now : now, updatedAt: now,
			sealed: await seal(await sealingKeys(this.#host.env), owner(suiteId, corpid), permanentCode),
		} satisfies InstallRecord);
		await this.#host.corps.adopt(profile, permanentCode);
		log("info", "install_code_exchanged", { suite_id: suiteId, corpid, appid: profile.appid });
		return { ok: true, made: { corpid, appid: profile.appid } };
	}

	async #reread(suiteId: string, corpid: string): Promise<void> {
		const record = await this.#host.storage.get<InstallRecord>(installKey(corpid));
		if (!record?.sealed) return log("warn", "suite_change_unknown", { suite_id: suiteId, corpid });
		const permanentCode = await open(await sealingKeys(this.#host.env), owner(suiteId, corpid), record.sealed);
		const answer = await this.#withSuiteToken(suiteId, "get_auth_info", (token) => getAuthInfo(token, corpid, permanentCode, this.#host.config()));
		if ("noToken" in answer) return log("warn", "suite_change_not_read", { suite_id: suiteId, corpid, reason: answer.noToken.message });
		if (!answer.ok) return log("warn", "suite_change_not_read", { suite_id: suiteId, corpid, errcode: answer.failure.errcode ?? null, reason: answer.failure.message });
		// The agent is the app's name: a grant that names another agent is logged, not renamed under its clients.
		if (answer.value.agentid !== record.agentid) log("warn", "suite_change_agent_moved", { suite_id: suiteId, corpid, agentid: record.agentid, now_agentid: answer.value.agentid });
		await this.#host.storage.put(installKey(corpid), { ...record, corpName: answer.value.corpName, updatedAt: Date.now() } satisfies InstallRecord);
		log("info", "suite_change_read", { suite_id: suiteId, corpid });
	}
}
