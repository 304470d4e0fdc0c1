// @ts-check
/**
 * The two WeChat calls the baseline designs make, made the way their originals make them: the classic
 * `GET /cgi-bin/token` (every call mints a new token and revokes the previous one 5 minutes later) and the
 * `getcallbackip` validity probe.
 */

/** Token errcodes on business APIs: 40001 invalid or not latest, 40014 invalid, 42001 expired. */
export const TOKEN_REJECTED = new Set([40001, 40014, 42001]);

/**
 * @param {string} apiBase
 * @param {{ appid: string, secret: string }} app
 * @returns {Promise<{ accessToken: string, expiresInS: number }>}
 */
export async function fetchClassicToken(apiBase, { appid, secret }) {
	const query = new URLSearchParams({ grant_type: "client_credential", appid, secret });
	const res = await fetch(`${apiBase}/cgi-bin/token?${query}`);
	const body = /** @type {{ access_token?: string, expires_in?: number, errcode?: number }} */ (await res.json());
	if (typeof body.access_token !== "string" || typeof body.expires_in !== "number") {
		throw new Error(`WeChat refused the token request (errcode ${body.errcode ?? "none"}, HTTP ${res.status})`);
	}
	return { accessToken: body.access_token, expiresInS: body.expires_in };
}

/**
 * @param {string} apiBase
 * @param {string} token
 * @returns {Promise<number>} 0 when WeChat accepts the token, else its errcode (-1 for no answer)
 */
export async function probeToken(apiBase, token) {
	try {
		const res = await fetch(`${apiBase}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`);
		const body = /** @type {{ errcode?: number }} */ (await res.json());
		return body.errcode ?? 0;
	} catch {
		return -1;
	}
}
