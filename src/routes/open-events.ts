/**
 * POST /open/{component_appid}/events: WeChat's 授权事件接收URL for one component (DESIGN.md, "The open
 * platform"). Authenticated by the push's signature, not by an API key, and outside ALLOWED_IPS (the caller
 * is WeChat, from its own addresses). The path names the component, so two components pointed at one broker
 * never share a ticket: each push goes to that component's object, which checks the signature before it
 * decrypts anything and the receiver id after (authority/component.ts). WeChat counts only the exact plain
 * text `success`, answered within 5 s, as delivered (OPEN-PLATFORM.md §2); anything forged, replayed or
 * malformed is a 4xx and changes nothing.
 */
import type { Hono } from "hono";
import type { AppProfile } from "../config/config";
import { bodyLimit } from "hono/body-limit";
import type { BrokerEnv } from "../access/reads";
import { componentAuthority } from "../authority/stub";
import { APPID_PATTERN } from "../config/config";
import { BrokerError } from "../core/errors";
import { findComponent, noteApp } from "../registry/lookup";
import { forget } from "../access/reads";
import { CREDENTIAL_TYPES } from "../core/credentials";
import { readXml, textField } from "../wechat/callback-xml";

/** A ticket push is under 1 KiB; WeChat's largest authorisation events are a few. DESIGN.md's bound. */
export const MAX_EVENT_BODY_BYTES = 64 * 1024;
/** Seconds since the epoch, as WeChat sends them. */
const TIMESTAMP_PATTERN = /^[0-9]{1,12}$/;
/** WeChat's nonces are digits; any short printable token is accepted, and it is signed. */
const NONCE_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export const OPEN_EVENTS_PATH = "/open/:component_appid/events";

/** A revoked grant (`unauthorized`, `cancel_auth`): this isolate stops serving it at once; others within their memory bound (README). */
export function forgetRevoked(profile: AppProfile): void {
	noteApp(profile.appid, profile);
	for (const type of CREDENTIAL_TYPES) forget(profile.appid, type);
}

export function mountOpenEvents(app: Hono<BrokerEnv>): void {
	app.post(OPEN_EVENTS_PATH, bodyLimit({
		maxSize: MAX_EVENT_BODY_BYTES,
		onError: () => {
			throw new BrokerError("payload_too_large", `The push is larger than ${MAX_EVENT_BODY_BYTES} bytes; WeChat's pushes are a few KiB at most.`);
		},
	}), async (c) => {
		const id = c.req.param("component_appid");
		if (!APPID_PATTERN.test(id)) throw new BrokerError("bad_request", "The component_appid in the path must be 1-64 letters, digits, _ or -.");
		if (!(await findComponent(c.env, c.get("config"), id))) {
			throw new BrokerError("not_found", `Component ${id} is not configured on this broker; add it to WECHAT_COMPONENTS or PUT /admin/components/${id}.`);
		}
		const timestamp = c.req.query("timestamp");
		const nonce = c.req.query("nonce");
		const msgSignature = c.req.query("msg_signature");
		const encryptType = c.req.query("encrypt_type");
		if (!timestamp || !TIMESTAMP_PATTERN.test(timestamp) || !nonce || !NONCE_PATTERN.test(nonce) || !msgSignature || (encryptType !== undefined && encryptType !== "aes")) {
			throw new BrokerError("bad_request", "A push carries timestamp, nonce, msg_signature and encrypt_type=aes in its query; set the component's message encryption to 安全模式 (encrypted) in its console.");
		}
		const envelope = readXml(await c.req.text());
		const encrypted = envelope && textField(envelope, "Encrypt");
		if (!envelope || !encrypted) throw new BrokerError("bad_request", "The body must be WeChat's <xml><AppId>…</AppId><Encrypt>…</Encrypt></xml>.");
		// Unsigned, so only a hint; the receiver id inside the ciphertext is what decides.
		const named = textField(envelope, "AppId") ?? textField(envelope, "ToUserName");
		if (named !== undefined && named !== id) {
			throw new BrokerError("bad_request", `This push names ${named.slice(0, 64)}, not ${id}; point each component's event URL at /open/<its own component_appid>/events.`);
		}
		const outcome = await componentAuthority(c.env, id).componentEvent(id, { timestamp, nonce, msgSignature, encrypted });
		if (!outcome.ok) throw new BrokerError(outcome.code, outcome.message);
		if (outcome.revokedProfile) forgetRevoked(outcome.revokedProfile);
		return c.text("success");
	});
}
