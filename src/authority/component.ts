/**
 * An open-platform component inside its own TokenAuthority (named "component:<component_appid>",
 * core/storage-keys.ts): its secrets, sealed at rest when it comes from the admin API, and the events WeChat
 * pushes to its event URL (routes/open-events.ts), checked here, where the message token and EncodingAESKey
 * are, so they never leave this object.
 *
 * component_verify_ticket: WeChat pushes one every ~10 min, each valid 12 h, and there is no API to pull
 * one (OPEN-PLATFORM.md §2). The object keeps the newest by CreateTime: an older one (a late or replayed
 * push) never replaces it, and the same push again (WeChat duplicates pushes) changes nothing. The ticket is
 * written before the answer goes back, so a `success` WeChat sees is a ticket the broker has.
 */
import type { ComponentConfig, ComponentProfile } from "../config/config";
import type { ErrorCode } from "../core/errors";
import { BrokerError } from "../core/errors";
import { log, maskToken } from "../core/log";
import { COMPONENT_TICKET_KEY } from "../core/storage-keys";
import { importCallbackKey, openCallback, type CallbackKey, type CallbackRefusal, type SignedCallback } from "../wechat/callback-crypto";
import { readXml, textField } from "../wechat/callback-xml";
import { isSealed, needsReseal, open, seal, sealingKeys, type Sealed } from "../registry/seal";
import type { AppEnv } from "../env";

/** What a component's object is told once (PUT /admin/components/{id}) and seals. */
export interface ComponentSecrets {
	readonly secret: string;
	readonly token: string;
	readonly encodingAesKey: string;
}

export interface StoredComponent {
	readonly profile: ComponentProfile;
	/** The JSON of ComponentSecrets, sealed with REGISTRY_KEY for the component appid. */
	readonly sealed: Sealed;
}

export interface StoredTicket {
	readonly ticket: string;
	/** CreateTime of the push, seconds since the epoch (WeChat's clock). */
	readonly createTime: number;
	/** ms; when this object stored it. */
	readonly receivedAt: number;
}

export type EventOutcome =
	/** `ticket`: a newer component_verify_ticket was stored, when it was pushed (CreateTime, s) and stored (ms). */
	| {
		readonly ok: true; readonly infoType: string; readonly changed: boolean; readonly ticket?: { readonly createTime: number; readonly receivedAt: number };
		/** An authorisation push's code (a suite's install code), to exchange once (authority/code-ledger.ts). */
		readonly authorizationCode?: string;
		/** `unauthorized`: the account that revoked its authorisation; `cancel_auth`: the company that uninstalled. */
		readonly revoked?: string;
		/** `change_auth`: the company whose grant changed. */
		readonly regranted?: string;
	}
	| { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** Tickets look like `ticket@@@` and ~90 characters; WeChat's tokens run to 512. Anything longer is not one. */
const MAX_TICKET_CHARS = 1024;
/** CreateTime is whole seconds. */
const CREATE_TIME_PATTERN = /^[0-9]{1,12}$/;

type KeyEnv = Pick<AppEnv, "REGISTRY_KEY" | "REGISTRY_KEY_PREVIOUS">;

export function isStoredComponent(value: unknown): value is StoredComponent {
	if (typeof value !== "object" || value === null) return false;
	const v = value as Record<string, unknown>;
	return typeof v.profile === "object" && v.profile !== null && isSealed(v.sealed);
}

export async function sealComponent(env: KeyEnv, profile: ComponentProfile, secrets: ComponentSecrets): Promise<StoredComponent> {
	return { profile, sealed: await seal(await sealingKeys(env), profile.componentAppid, JSON.stringify(secrets)) };
}

/** The component with its secrets; a BrokerError (config_error) when REGISTRY_KEY cannot open them. */
export async function openComponent(env: KeyEnv, stored: StoredComponent): Promise<ComponentConfig> {
	const secrets = JSON.parse(await open(await sealingKeys(env), stored.profile.componentAppid, stored.sealed)) as ComponentSecrets;
	return { ...stored.profile, ...secrets };
}

/** The entry sealed again under the current key, or null when it already is. */
export async function resealComponent(env: KeyEnv, stored: StoredComponent): Promise<StoredComponent | null> {
	const keys = await sealingKeys(env);
	if (!needsReseal(keys, stored.sealed)) return null;
	const plain = await open(keys, stored.profile.componentAppid, stored.sealed);
	return { profile: stored.profile, sealed: await seal(keys, stored.profile.componentAppid, plain) };
}

const REFUSALS: Record<CallbackRefusal, { code: ErrorCode; message: (id: string) => string }> = {
	bad_signature: {
		code: "forbidden",
		message: (id) => `The push's msg_signature does not match: it was not signed with component ${id}'s message token. Check that the token configured here is the one in the component's console.`,
	},
	wrong_receiver: {
		code: "forbidden",
		message: (id) => `The push was encrypted for another component than ${id}. Point each component's event URL at /open/<its own component_appid>/events.`,
	},
	malformed: {
		code: "bad_request",
		message: (id) => `The push's Encrypt does not decrypt to a message with component ${id}'s EncodingAESKey. Check that the key configured here is the one in the component's console.`,
	},
};

/** Imports an EncodingAESKey once per value (an event every ~10 min does not need more). */
const keys = new Map<string, Promise<CallbackKey>>();
export function callbackKey(encodingAesKey: string): Promise<CallbackKey> {
	let key = keys.get(encodingAesKey);
	if (!key) {
		if (keys.size > 100) keys.clear();
		keys.set(encodingAesKey, (key = importCallbackKey(encodingAesKey)));
	}
	return key;
}

/**
 * One push to the component's event URL: the signature first (before any decryption), then the receiver
 * id, then what the message says. Anything forged, replayed out of order or malformed changes nothing.
 */
export async function receiveEvent(component: ComponentConfig, signed: SignedCallback, storage: DurableObjectStorage, now: number): Promise<EventOutcome> {
	const id = component.componentAppid;
	let opened;
	try {
		opened = await openCallback({ token: component.token, key: await callbackKey(component.encodingAesKey), receiverId: id }, signed);
	} catch (error) {
		// A key that validated at configuration cannot fail to import; if it does, the operator must see it.
		if (error instanceof TypeError) throw new BrokerError("config_error", `Component ${id}'s EncodingAESKey cannot be used: ${error.message}.`);
		throw error;
	}
	if (!opened.ok) {
		log("warn", "component_event_refused", { component_appid: id, reason: opened.refusal });
		const refusal = REFUSALS[opened.refusal];
		return { ok: false, code: refusal.code, message: refusal.message(id) };
	}
	const fields = readXml(opened.message);
	const infoType = fields && textField(fields, "InfoType");
	if (!fields || !infoType || textField(fields, "AppId") !== id) {
		log("warn", "component_event_refused", { component_appid: id, reason: "unreadable_message" });
		return { ok: false, code: "bad_request", message: `The decrypted push is not a message for component ${id} with an InfoType that this broker reads.` };
	}
	if (infoType === "component_verify_ticket") return storeTicket(id, fields.get("ComponentVerifyTicket"), textField(fields, "CreateTime"), storage, now);
	if (infoType === "authorized" || infoType === "updateauthorized") return authorisation(id, infoType, textField(fields, "AuthorizationCode"), textField(fields, "AuthorizerAppid"));
	if (infoType === "notify_third_fasteregister") {
		// Only status 0 (registered) carries a code that makes an authorizer; the others are progress reports.
		if (textField(fields, "status") === "0") return authorisation(id, infoType, textField(fields, "auth_code"), textField(fields, "appid"));
		log("info", "component_event_not_handled", { component_appid: id, info_type: infoType, status: (textField(fields, "status") ?? "").slice(0, 16) });
		return { ok: true, infoType, changed: false };
	}
	if (infoType === "unauthorized") {
		const appid = textField(fields, "AuthorizerAppid");
		if (!appid || !APPID_TEXT.test(appid)) return unreadable(id, infoType);
		return { ok: true, infoType, changed: true, revoked: appid };
	}
	log("info", "component_event_not_handled", { component_appid: id, info_type: infoType.slice(0, 64) });
	return { ok: true, infoType, changed: false };
}

/** Authorization codes and refresh tokens run to a few hundred characters. */
const MAX_CODE_CHARS = 1024;
const APPID_TEXT = /^[A-Za-z0-9_-]{1,64}$/;

function unreadable(id: string, infoType: string): EventOutcome {
	log("warn", "component_event_refused", { component_appid: id, reason: "bad_authorisation_push", info_type: infoType });
	return { ok: false, code: "bad_request", message: `The ${infoType} push for ${id} lacks its authorization code or authorizer appid.` };
}

function authorisation(id: string, infoType: string, code: string | undefined, authorizerAppid: string | undefined): EventOutcome {
	if (!code || code.length > MAX_CODE_CHARS || !authorizerAppid || !APPID_TEXT.test(authorizerAppid)) return unreadable(id, infoType);
	log("info", "component_authorisation_pushed", { component_appid: id, info_type: infoType, authorizer_appid: authorizerAppid, code: maskToken(code) });
	return { ok: true, infoType, changed: true, authorizationCode: code };
}

async function storeTicket(id: string, ticket: unknown, createTimeText: string | undefined, storage: DurableObjectStorage, now: number): Promise<EventOutcome> {
	if (typeof ticket !== "string" || ticket === "" || ticket.length > MAX_TICKET_CHARS || !createTimeText || !CREATE_TIME_PATTERN.test(createTimeText)) {
		log("warn", "component_event_refused", { component_appid: id, reason: "bad_ticket_push" });
		return { ok: false, code: "bad_request", message: `The component_verify_ticket push for ${id} lacks a ComponentVerifyTicket or a CreateTime in seconds.` };
	}
	const createTime = Number(createTimeText);
	const stored = await storage.get<StoredTicket>(COMPONENT_TICKET_KEY);
	if (stored && stored.createTime === createTime && stored.ticket === ticket) {
		// WeChat sends some pushes twice: the same push again is delivered, and changes nothing.
		return { ok: true, infoType: "component_verify_ticket", changed: false };
	}
	if (stored && createTime === stored.createTime) {
		// Another ticket in the same second: which is newer cannot be told, both stay valid 12 h, and an answer
		// other than `success` makes WeChat push again. Kept as it is, and answered.
		log("info", "component_ticket_same_second", { component_appid: id, create_time: createTime });
		return { ok: true, infoType: "component_verify_ticket", changed: false };
	}
	if (stored && createTime < stored.createTime) {
		log("warn", "component_event_refused", { component_appid: id, reason: "older_ticket", create_time: createTime, kept_create_time: stored.createTime });
		return { ok: false, code: "conflict", message: `This component_verify_ticket (CreateTime ${createTime}) is not newer than the one ${id} holds (CreateTime ${stored.createTime}); the newer one is kept.` };
	}
	await storage.put(COMPONENT_TICKET_KEY, { ticket, createTime, receivedAt: now } satisfies StoredTicket);
	log("info", "component_ticket_stored", { component_appid: id, ticket: maskToken(ticket), create_time: createTime, replaced_create_time: stored?.createTime ?? null });
	return { ok: true, infoType: "component_verify_ticket", changed: true, ticket: { createTime, receivedAt: now } };
}
