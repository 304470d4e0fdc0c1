/**
 * A WeCom suite (第三方应用 or 代开发 template) inside its own TokenAuthority (named "suite:<suite_id>",
 * core/storage-keys.ts): its secrets, sealed at rest when it comes from the admin API, and the callbacks WeCom
 * sends to its instruction URL (routes/wecom-suite-events.ts), checked here, where the message token and
 * EncodingAESKey are, so they never leave this object. The token authority's suite methods only call this.
 *
 * suite_ticket: WeCom pushes one every ~10 min (7–15 min observed), each valid 30 min, and there is no API
 * to pull one (OPEN-PLATFORM.md §10). The object keeps the newest by its TimeStamp: an older one (a late or
 * replayed push) never replaces it, and the same push again changes nothing. It is written before the
 * answer goes back, so a `success` WeCom sees is a ticket the broker has.
 *
 * Receiver ids (OPEN-PLATFORM.md §1): WeCom documents the suite_id for instruction callbacks and the
 * provider's corpid for the URL check, and one user saw the provider's corpid on an instruction callback.
 * Both are accepted on both, and neither choice opens anything: an instruction callback must also name this
 * suite in its own SuiteId, and the URL check answers only a plaintext shaped like an echostr (letters and
 * digits), so no callback (XML) can be decrypted through it. Without a provider corpid configured, the URL
 * check accepts any receiver id and logs which one WeCom used.
 */
import type { SuiteConfig, SuiteProfile } from "../config/config";
import type { ErrorCode } from "../core/errors";
import { BrokerError } from "../core/errors";
import { log, maskToken } from "../core/log";
import type { Failure } from "../core/outcome";
import { SUITE_KEY, SUITE_TICKET_KEY } from "../core/storage-keys";
import type { AppEnv } from "../env";
import { isSealed, open, seal, sealingKeys, type Sealed } from "../registry/seal";
import { decryptCallback, openCallback, signatureMatches, type CallbackKey, type CallbackRefusal, type SignedCallback } from "../wechat/callback-crypto";
import { readXml, textField, type XmlFields } from "../wechat/callback-xml";
import { callbackKey, type EventOutcome } from "./component";

/** What a suite's object is told once (PUT /admin/suites/{suite_id}) and seals. */
export interface SuiteSecrets {
	readonly secret: string;
	readonly token: string;
	readonly encodingAesKey: string;
	readonly providerSecret?: string;
}

export interface StoredSuite {
	readonly profile: SuiteProfile;
	/** The JSON of SuiteSecrets, sealed with REGISTRY_KEY for "suite:<suite_id>". */
	readonly sealed: Sealed;
}

export interface StoredSuiteTicket {
	readonly ticket: string;
	/** The push's TimeStamp, seconds since the epoch (WeCom's clock). */
	readonly timeStamp: number;
	/** ms; when this object stored it. */
	readonly receivedAt: number;
}

/** What GET /admin/suites shows of a suite's object: never a secret or the ticket. */
export interface SuiteState {
	/** When the newest ticket was pushed and stored; null before the first. */
	readonly ticket: { readonly timeStamp: number; readonly receivedAt: number } | null;
	/** Whether a provider secret is held (get_provider_token needs one). */
	readonly providerSecret: boolean;
}

export type UrlCheckOutcome = { readonly ok: true; readonly echo: string } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** WeCom's tickets are at most 512 bytes (document 90628); anything longer is not one. */
const MAX_TICKET_CHARS = 512;
/** TimeStamp is whole seconds. */
const TIME_STAMP_PATTERN = /^[0-9]{1,12}$/;
/** WeCom's echostr plaintexts are random digits; letters are allowed, anything else (a callback's XML) is not. */
const ECHO_PATTERN = /^[A-Za-z0-9]{1,128}$/;
/** Temporary auth codes are at least 64 characters (40058 below); a few hundred at most. */
const MAX_CODE_CHARS = 1024;
/** A corpid. */
const CORPID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Instructions that carry an install code: an install from the app market, a 代开发 app's new secret. */
const CODE_INSTRUCTIONS = new Set(["create_auth", "reset_permanent_code"]);
/** Instructions that name a company: it changed what it grants, or uninstalled. */
const CORP_INSTRUCTIONS = new Set(["change_auth", "cancel_auth"]);

type KeyEnv = Pick<AppEnv, "REGISTRY_KEY" | "REGISTRY_KEY_PREVIOUS">;

/** The sealing owner: a suite's secrets never open as an app's or a component's of the same id. */
function owner(suiteId: string): string {
	return `suite:${suiteId}`;
}

function isStoredSuite(value: unknown): value is StoredSuite {
	if (typeof value !== "object" || value === null) return false;
	const v = value as Record<string, unknown>;
	return typeof v.profile === "object" && v.profile !== null && isSealed(v.sealed);
}

const REFUSALS: Record<CallbackRefusal, { code: ErrorCode; message: (id: string) => string }> = {
	bad_signature: {
		code: "forbidden",
		message: (id) => `The callback's msg_signature does not match: it was not signed with suite ${id}'s Token. Check that the token configured here is the one in the suite's callback settings.`,
	},
	wrong_receiver: {
		code: "forbidden",
		message: (id) => `The callback was encrypted for another receiver than suite ${id} (or its provider's corpid). Point each suite's instruction URL at /wecom-suite/<its own suite_id>/events; data callbacks go elsewhere.`,
	},
	malformed: {
		code: "bad_request",
		message: (id) => `The callback's ciphertext does not decrypt with suite ${id}'s EncodingAESKey. Check that the key configured here is the one in the suite's callback settings.`,
	},
};

function refused(id: string, reason: string, code: ErrorCode, message: string): { ok: false; code: ErrorCode; message: string } {
	log("warn", "suite_event_refused", { suite_id: id, reason });
	return { ok: false, code, message };
}

/** A suite's configuration, callbacks and ticket, in the suite's own object. */
export class SuiteDesk {
	readonly #storage: DurableObjectStorage;
	readonly #env: KeyEnv;
	readonly #fromSecret: (suiteId: string) => SuiteConfig | undefined;
	/** The registry suite, opened once. */
	#opened: SuiteConfig | undefined;

	constructor(storage: DurableObjectStorage, env: KeyEnv, fromSecret: (suiteId: string) => SuiteConfig | undefined) {
		this.#storage = storage;
		this.#env = env;
		this.#fromSecret = fromSecret;
	}

	/** In the object's constructor: a registry suite is opened, so its alarm can name it synchronously. */
	async load(): Promise<void> {
		const stored = await this.#storage.get<unknown>(SUITE_KEY);
		if (isStoredSuite(stored)) await this.#suite(stored.profile.suiteId).catch(() => undefined);
	}

	/** The registry suite this object opened (for the engine, which names it suite:<suite_id>), if any. */
	opened(): SuiteConfig | undefined {
		return this.#opened;
	}

	/** The suite this object serves, or why not (not configured; REGISTRY_KEY cannot open it). */
	resolve(suiteId: string): Promise<SuiteConfig | { failure: Failure }> {
		return this.#suite(suiteId);
	}

	/** PUT /admin/suites/{suite_id}: the secrets sealed together before they are stored. */
	async configure(profile: SuiteProfile, secrets: SuiteSecrets): Promise<{ stored: true; kid: string } | { stored: false; failure: Failure }> {
		try {
			const stored: StoredSuite = { profile, sealed: await seal(await sealingKeys(this.#env), owner(profile.suiteId), JSON.stringify(secrets)) };
			await this.#storage.put(SUITE_KEY, stored);
			this.#opened = { ...profile, ...secrets };
			log("info", "suite_configured", { suite_id: profile.suiteId });
			return { stored: true, kid: stored.sealed.kid };
		} catch (error) {
			if (error instanceof BrokerError) return { stored: false, failure: { code: "config_error", message: error.message } };
			throw error;
		}
	}

	/** The ticket's age and whether a provider secret is held; never a secret or the ticket. */
	async state(suiteId: string): Promise<SuiteState> {
		const [suite, stored] = await Promise.all([this.#suite(suiteId), this.#storage.get<StoredSuiteTicket>(SUITE_TICKET_KEY)]);
		return {
			ticket: stored ? { timeStamp: stored.timeStamp, receivedAt: stored.receivedAt } : null,
			providerSecret: !("failure" in suite) && suite.providerSecret !== undefined,
		};
	}

	/** GET on the instruction URL (WeCom's URL check): the decrypted echostr, to be answered as bare text. */
	async urlCheck(suiteId: string, signed: SignedCallback): Promise<UrlCheckOutcome> {
		const suite = await this.#suite(suiteId);
		if ("failure" in suite) return { ok: false, ...suite.failure };
		const key = await this.#key(suite);
		if (!(await signatureMatches(signed.msgSignature, suite.token, signed.timestamp, signed.nonce, signed.encrypted))) {
			return refused(suiteId, "bad_signature", REFUSALS.bad_signature.code, REFUSALS.bad_signature.message(suiteId));
		}
		const plain = await decryptCallback(key, signed.encrypted);
		if (!plain) return refused(suiteId, "malformed", REFUSALS.malformed.code, REFUSALS.malformed.message(suiteId));
		const receivers = suite.providerCorpid === undefined ? null : [suite.providerCorpid, suiteId];
		if (receivers && !receivers.includes(plain.receiverId)) {
			return refused(suiteId, "wrong_receiver", REFUSALS.wrong_receiver.code, REFUSALS.wrong_receiver.message(suiteId));
		}
		if (!ECHO_PATTERN.test(plain.message)) {
			return refused(suiteId, "not_an_echostr", "bad_request", `The echostr of suite ${suiteId}'s URL check does not decrypt to an echo (letters and digits); only WeCom's URL check is answered here.`);
		}
		// Not secret: which receiver id WeCom used settles OPEN-PLATFORM.md's open question for this deployment.
		log("info", "suite_url_checked", { suite_id: suiteId, receiver_id: plain.receiverId.slice(0, 64) });
		return { ok: true, echo: plain.message };
	}

	/** A POST to the instruction URL: the signature first, then the receiver id, then what the message says. */
	async callback(suiteId: string, signed: SignedCallback, now: number): Promise<EventOutcome> {
		const suite = await this.#suite(suiteId);
		if ("failure" in suite) return { ok: false, ...suite.failure };
		const receiverId = suite.providerCorpid === undefined ? suiteId : [suiteId, suite.providerCorpid];
		const opened = await openCallback({ token: suite.token, key: await this.#key(suite), receiverId }, signed);
		if (!opened.ok) return refused(suiteId, opened.refusal, REFUSALS[opened.refusal].code, REFUSALS[opened.refusal].message(suiteId));
		const fields = readXml(opened.message);
		const infoType = fields && textField(fields, "InfoType");
		if (!fields || !infoType || textField(fields, "SuiteId") !== suiteId) {
			return refused(suiteId, "unreadable_message", "bad_request", `The decrypted callback is not an instruction for suite ${suiteId} (SuiteId and InfoType) that this broker reads.`);
		}
		if (infoType === "suite_ticket") return this.#storeTicket(suiteId, fields, now);
		if (CODE_INSTRUCTIONS.has(infoType)) {
			const code = textField(fields, "AuthCode");
			if (!code || code.length > MAX_CODE_CHARS) return refused(suiteId, "bad_install_push", "bad_request", `The ${infoType} callback for ${suiteId} lacks its AuthCode.`);
			log("info", "suite_install_pushed", { suite_id: suiteId, info_type: infoType, code: maskToken(code) });
			return { ok: true, infoType, changed: true, authorizationCode: code };
		}
		if (CORP_INSTRUCTIONS.has(infoType)) {
			const corpid = textField(fields, "AuthCorpId");
			if (!corpid || !CORPID_PATTERN.test(corpid)) return refused(suiteId, "bad_install_push", "bad_request", `The ${infoType} callback for ${suiteId} lacks the AuthCorpId of the company.`);
			return { ok: true, infoType, changed: true, ...(infoType === "cancel_auth" ? { revoked: corpid } : { regranted: corpid }) };
		}
		log("info", "suite_event_unknown", { suite_id: suiteId, info_type: infoType.slice(0, 64) });
		return { ok: true, infoType, changed: false };
	}

	async #storeTicket(suiteId: string, fields: XmlFields, now: number): Promise<EventOutcome> {
		const ticket = textField(fields, "SuiteTicket");
		const timeStampText = textField(fields, "TimeStamp");
		if (!ticket || ticket.length > MAX_TICKET_CHARS || !timeStampText || !TIME_STAMP_PATTERN.test(timeStampText)) {
			return refused(suiteId, "bad_ticket_push", "bad_request", `The suite_ticket callback for ${suiteId} lacks a SuiteTicket (at most ${MAX_TICKET_CHARS} characters) or a TimeStamp in seconds.`);
		}
		const timeStamp = Number(timeStampText);
		// No await but storage's between this read and the write: the input gate keeps a concurrent push out.
		const stored = await this.#storage.get<StoredSuiteTicket>(SUITE_TICKET_KEY);
		if (stored && stored.timeStamp === timeStamp && stored.ticket === ticket) {
			// The same push again (WeCom retries what it thinks was not answered): delivered, and nothing changes.
			return { ok: true, infoType: "suite_ticket", changed: false };
		}
		if (stored && timeStamp <= stored.timeStamp) {
			log("warn", "suite_event_refused", { suite_id: suiteId, reason: "older_ticket", time_stamp: timeStamp, kept_time_stamp: stored.timeStamp });
			return { ok: false, code: "conflict", message: `This suite_ticket (TimeStamp ${timeStamp}) is not newer than the one ${suiteId} holds (TimeStamp ${stored.timeStamp}); the newer one is kept.` };
		}
		await this.#storage.put(SUITE_TICKET_KEY, { ticket, timeStamp, receivedAt: now } satisfies StoredSuiteTicket);
		log("info", "suite_ticket_stored", { suite_id: suiteId, ticket: maskToken(ticket), time_stamp: timeStamp, replaced_time_stamp: stored?.timeStamp ?? null });
		return { ok: true, infoType: "suite_ticket", changed: true, ticket: { createTime: timeStamp, receivedAt: now } };
	}

	async #key(suite: SuiteConfig): Promise<CallbackKey> {
		try {
			return await callbackKey(suite.encodingAesKey);
		} catch (error) {
			// A key that validated at configuration cannot fail to import; if it does, the operator must see it.
			if (error instanceof TypeError) throw new BrokerError("config_error", `Suite ${suite.suiteId}'s EncodingAESKey cannot be used: ${error.message}.`);
			throw error;
		}
	}

	/** The suite this object serves: WECOM_SUITES first, then its sealed registry entry. */
	async #suite(suiteId: string): Promise<SuiteConfig | { failure: Failure }> {
		const fromSecret = this.#fromSecret(suiteId);
		if (fromSecret) return fromSecret;
		if (this.#opened?.suiteId === suiteId) return this.#opened;
		const stored = await this.#storage.get<unknown>(SUITE_KEY);
		if (!isStoredSuite(stored) || stored.profile.suiteId !== suiteId) {
			return { failure: { code: "not_found", message: `Suite ${suiteId} is not configured; add it to WECOM_SUITES or PUT /admin/suites/${suiteId}.` } };
		}
		try {
			const secrets = JSON.parse(await open(await sealingKeys(this.#env), owner(suiteId), stored.sealed)) as SuiteSecrets;
			this.#opened = { ...stored.profile, ...secrets };
			return this.#opened;
		} catch (error) {
			if (error instanceof BrokerError) return { failure: { code: "config_error", message: error.message } };
			throw error;
		}
	}
}
