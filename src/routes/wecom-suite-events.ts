/**
 * /wecom-suite/{suite_id}/events: a WeCom suite's instruction URL (指令回调URL; DESIGN.md, "WeCom service
 * providers"). Authenticated by the callback's signature, not by an API key, and outside ALLOWED_IPS (the
 * caller is WeCom, from its own addresses), like the open platform's event URL (routes/open-events.ts).
 *   GET  ?msg_signature&timestamp&nonce&echostr: the URL check WeCom makes when the URL is saved; the
 *        decrypted echostr is answered as bare text (no quotes, no newline), within WeCom's 1 s.
 *   POST ?msg_signature&timestamp&nonce, body <xml><ToUserName/><Encrypt/><AgentID/></xml>: the instruction
 *        callbacks (suite_ticket, and the install events), answered with the plain text `success`.
 * The path names the suite, so two suites pointed at one broker never share a ticket: each callback goes to
 * that suite's object, which checks the signature before it decrypts anything (authority/suite.ts). Anything
 * forged, replayed or malformed is a 4xx and changes nothing.
 */
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { BrokerEnv } from "../access/reads";
import { suiteAuthority } from "../authority/stub";
import { APPID_PATTERN } from "../config/config";
import { BrokerError } from "../core/errors";
import { findSuite } from "../registry/lookup";
import { readXml, textField } from "../wechat/callback-xml";
import { forgetRevoked, MAX_EVENT_BODY_BYTES } from "./open-events";

/** Seconds since the epoch, as WeCom sends them. */
const TIMESTAMP_PATTERN = /^[0-9]{1,12}$/;
/** WeCom's nonces are digits or letters; any short token is accepted, and it is signed. */
const NONCE_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** An echostr is the base64 of a short plaintext; a longer one is not WeCom's. */
const MAX_ECHOSTR_CHARS = 1024;

export const WECOM_SUITE_EVENTS_PATH = "/wecom-suite/:suite_id/events";

async function suiteOf(c: Context<BrokerEnv>): Promise<string> {
	const id = c.req.param("suite_id") ?? "";
	if (!APPID_PATTERN.test(id)) throw new BrokerError("bad_request", "The suite_id in the path must be 1-64 letters, digits, _ or -.");
	if (!(await findSuite(c.env, c.get("config"), id))) {
		throw new BrokerError("not_found", `Suite ${id} is not configured on this broker; add it to WECOM_SUITES or PUT /admin/suites/${id}.`);
	}
	return id;
}

function signedQuery(c: Context<BrokerEnv>): { timestamp: string; nonce: string; msgSignature: string } {
	const timestamp = c.req.query("timestamp");
	const nonce = c.req.query("nonce");
	const msgSignature = c.req.query("msg_signature");
	if (!timestamp || !TIMESTAMP_PATTERN.test(timestamp) || !nonce || !NONCE_PATTERN.test(nonce) || !msgSignature) {
		throw new BrokerError("bad_request", "A WeCom callback carries msg_signature, timestamp and nonce in its query; this URL is the suite's instruction URL (指令回调URL).");
	}
	return { timestamp, nonce, msgSignature };
}

export function mountWeComSuiteEvents(app: Hono<BrokerEnv>): void {
	app.get(WECOM_SUITE_EVENTS_PATH, async (c) => {
		const id = await suiteOf(c);
		const signed = signedQuery(c);
		// The query is URL-decoded once (OPEN-PLATFORM.md §10). A `+` WeCom left unencoded arrives as a space,
		// which base64 never holds, so it is turned back.
		const echostr = c.req.query("echostr")?.replaceAll(" ", "+");
		if (!echostr || echostr.length > MAX_ECHOSTR_CHARS) {
			throw new BrokerError("bad_request", `The URL check carries an echostr of at most ${MAX_ECHOSTR_CHARS} characters in its query.`);
		}
		const outcome = await suiteAuthority(c.env, id).suiteUrlCheck(id, { ...signed, encrypted: echostr });
		if (!outcome.ok) throw new BrokerError(outcome.code, outcome.message);
		return c.text(outcome.echo);
	});

	app.post(WECOM_SUITE_EVENTS_PATH, bodyLimit({
		maxSize: MAX_EVENT_BODY_BYTES,
		onError: () => {
			throw new BrokerError("payload_too_large", `The callback is larger than ${MAX_EVENT_BODY_BYTES} bytes; WeCom's instruction callbacks are a few KiB at most.`);
		},
	}), async (c) => {
		const id = await suiteOf(c);
		const signed = signedQuery(c);
		const envelope = readXml(await c.req.text());
		const encrypted = envelope && textField(envelope, "Encrypt");
		if (!envelope || !encrypted) throw new BrokerError("bad_request", "The body must be WeCom's <xml><ToUserName>…</ToUserName><Encrypt>…</Encrypt><AgentID>…</AgentID></xml>.");
		const outcome = await suiteAuthority(c.env, id).suiteEvent(id, { ...signed, encrypted });
		if (!outcome.ok) throw new BrokerError(outcome.code, outcome.message);
		if (outcome.revokedProfile) forgetRevoked(outcome.revokedProfile);
		return c.text("success");
	});
}
