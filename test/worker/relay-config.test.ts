/** WECHAT_RELAY_HEADERS: what is accepted, and a message that says how to fix everything that is not. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config";

/** A value only a leak could put in a message. */
const SECRET_VALUE = "relay-secret-value-do-not-echo";

function relayHeaders(raw: string | undefined): Readonly<Record<string, string>> {
	return loadConfig({ ...env, WECHAT_RELAY_HEADERS: raw }).relayHeaders;
}

function refusal(raw: string): string {
	try {
		relayHeaders(raw);
	} catch (error) {
		expect(error).toBeInstanceOf(ConfigError);
		const { message } = error as ConfigError;
		expect(message).not.toContain(SECRET_VALUE);
		return message;
	}
	throw new Error(`${raw} was accepted`);
}

describe("WECHAT_RELAY_HEADERS", () => {
	it("is optional: unset or blank means no extra headers", () => {
		expect(relayHeaders(undefined)).toEqual({});
		expect(relayHeaders("  ")).toEqual({});
	});

	it("takes a JSON object of string headers as it is", () => {
		expect(relayHeaders(JSON.stringify({ "X-Relay-Key": SECRET_VALUE, "X-Relay-Tenant": "prod" })))
			.toEqual({ "X-Relay-Key": SECRET_VALUE, "X-Relay-Tenant": "prod" });
	});

	it("refuses what is not a JSON object, with an example", () => {
		for (const raw of [`{"X-Relay-Key": "${SECRET_VALUE}"`, `["X-Relay-Key", "${SECRET_VALUE}"]`, `"${SECRET_VALUE}"`, "null"]) {
			expect(refusal(raw)).toMatch(/^WECHAT_RELAY_HEADERS .*JSON object .*like \{"X-Relay-Key"/);
		}
	});

	it("refuses a value that is not a string, naming the header", () => {
		expect(refusal(JSON.stringify({ "X-Relay-Key": 42 }))).toMatch(/value of X-Relay-Key must be a string/);
		expect(refusal(JSON.stringify({ "X-Relay-Key": [SECRET_VALUE] }))).toMatch(/value of X-Relay-Key must be a string/);
	});

	it("refuses a header name that is not an HTTP token", () => {
		for (const name of ["X Relay Key", "X-Relay-Key:", "", "Relais-Schlüssel"]) {
			expect(refusal(JSON.stringify({ [name]: SECRET_VALUE }))).toMatch(/is not a valid header name; use letters, digits and -/);
		}
	});

	it("refuses hop-by-hop headers and the ones the broker sets itself", () => {
		for (const name of ["Connection", "keep-alive", "Transfer-Encoding", "TE", "Upgrade", "Proxy-Authorization", "Host", "Content-Length", "content-type"]) {
			expect(refusal(JSON.stringify({ [name]: SECRET_VALUE }))).toMatch(new RegExp(`${name} is set by the broker or the HTTP connection itself`));
		}
	});

	it("refuses a value that would split the request, without quoting it", () => {
		expect(refusal(JSON.stringify({ "X-Relay-Key": `${SECRET_VALUE}\r\nX-Evil: 1` }))).toMatch(/value of X-Relay-Key contains a line break/);
	});
});
