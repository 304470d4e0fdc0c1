/**
 * The access_token in a request's query string, read and replaced without touching anything else.
 *
 * The query goes upstream as the SDK wrote it, byte for byte, except the token's value: re-serialising it
 * (URLSearchParams) would re-encode other parameters that WeChat signs or compares (e.g. a `+` in a
 * media id). A query with more than one access_token, or one spelled with escapes (`access%5Ftoken`), in
 * another case (`ACCESS_TOKEN`) or with a control character or space in its name (`access_token%00`), is
 * refused: the broker would check (and swap) one token while a server that folds case or stops at NUL
 * might use the other, the client's own, with the broker's egress.
 */
import { MAX_TOKEN_CHARS } from "../wechat/client";

export type TokenInQuery =
	| { readonly kind: "missing" }
	/** Two tokens, an escaped name, a malformed escape or a value no WeChat token has: never issued here. */
	| { readonly kind: "unusable" }
	| { readonly kind: "found"; readonly token: string; readonly index: number };

const NAME = "access_token";
const COMPONENT_NAME = "component_access_token";

export function findAccessToken(search: string, name: string = NAME): TokenInQuery {
	let found: TokenInQuery = { kind: "missing" };
	let seen = false;
	for (const [index, part] of splitQuery(search).entries()) {
		const eq = part.indexOf("=");
		const rawName = eq === -1 ? part : part.slice(0, eq);
		if (!namesToken(decode(rawName), name)) continue;
		if (seen || rawName !== name) return { kind: "unusable" };
		seen = true;
		const token = decode(eq === -1 ? "" : part.slice(eq + 1));
		if (token === null || token.length > MAX_TOKEN_CHARS) return { kind: "unusable" };
		// WeChat answers an empty access_token as a missing one (41001).
		if (token !== "") found = { kind: "found", token, index };
	}
	return found;
}

/**
 * A component API call's token (/cgi-bin/component/…): WeChat's docs name it `component_access_token`, newer
 * pages `access_token`, and some of those paths take an authorizer's access_token. A query that names both
 * is refused: the broker would check one while WeChat might use the other, the client's own.
 */
export function findComponentToken(search: string): TokenInQuery & { readonly name?: string } {
	const component = findAccessToken(search, COMPONENT_NAME);
	const plain = findAccessToken(search, NAME);
	if (component.kind === "unusable" || plain.kind === "unusable") return { kind: "unusable" };
	const named = (wanted: string) => splitQuery(search).some((part) => namesToken(decode(part.split("=", 1)[0]!), wanted));
	if (named(COMPONENT_NAME) && named(NAME)) return { kind: "unusable" };
	if (component.kind === "found") return { ...component, name: COMPONENT_NAME };
	return plain.kind === "found" ? { ...plain, name: NAME } : plain;
}

/** A name some server could read as `wanted`: the same letters in any case, around controls or spaces. */
function namesToken(name: string | null, wanted: string = NAME): boolean {
	return name !== null && name.replace(/[\u0000-\u0020\u007f]/g, "").toLowerCase() === wanted;
}

/** `search` (with its leading "?") with the access_token at `index` set to `token`. */
export function withAccessToken(search: string, index: number, token: string, name: string = NAME): string {
	const parts = splitQuery(search);
	parts[index] = `${name}=${encodeURIComponent(token)}`;
	return `?${parts.join("&")}`;
}

function splitQuery(search: string): string[] {
	const query = search.startsWith("?") ? search.slice(1) : search;
	return query === "" ? [] : query.split("&");
}

/** Form-style decoding (`+` is a space), or null for a malformed escape. */
function decode(raw: string): string | null {
	try {
		return decodeURIComponent(raw.replaceAll("+", " "));
	} catch {
		return null;
	}
}
