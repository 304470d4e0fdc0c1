/**
 * What the admin API's routes share: their bodies (JSON objects of known fields, ≤ ADMIN_BODY_BYTES), their
 * paging (`limit`, an opaque `cursor`), the rule that keys and the registry are managed only by an admin
 * key scoped to every app, and the owner a path names (a component, a suite) for its own admins.
 */
import type { Context } from "hono";
import { readJsonObject, type BrokerEnv } from "../access/reads";
import { requireAdmin, requireApp, type Principal } from "../access/auth";
import { APPID_PATTERN } from "../config/config";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";

/** An app entry or a key with a long scope fits easily; anything larger is not an admin request. */
export const ADMIN_BODY_BYTES = 16 * 1024;

/** A JSON object whose fields are all in `allowed`; the message names the unknown field and the allowed ones. */
export async function readAdminBody(c: Context<BrokerEnv>, allowed: readonly string[], example: string): Promise<Record<string, unknown>> {
	const body = await readJsonObject(c, `The body must be a JSON object like ${example}.`);
	const unknown = Object.keys(body).find((field) => !allowed.includes(field));
	if (unknown !== undefined) {
		throw new BrokerError("bad_request", `Unknown field ${JSON.stringify(unknown.slice(0, 64))}; the fields are ${allowed.join(", ")}.`);
	}
	return body;
}

/** `?limit=`: 1 to `max`, `fallback` when absent. */
export function pageLimit(raw: string | undefined, fallback: number, max: number): number {
	if (raw === undefined || raw === "") return fallback;
	const limit = Number(raw);
	if (!Number.isInteger(limit) || limit < 1 || limit > max) throw new BrokerError("bad_request", `limit must be a whole number from 1 to ${max}.`);
	return limit;
}

/** The cursor is the last id of the previous page, base64url-encoded: opaque to clients, stable under writes. */
export function encodeCursor(lastId: string): string {
	return btoa(lastId).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function decodeCursor(raw: string | undefined, idPattern: RegExp): string | null {
	if (raw === undefined || raw === "") return null;
	let decoded: string | null = null;
	try {
		decoded = atob(raw.replaceAll("-", "+").replaceAll("_", "/"));
	} catch {
		decoded = null;
	}
	if (decoded === null || !idPattern.test(decoded)) throw new BrokerError("bad_request", "cursor is not one this broker gave out; pass next_cursor from the previous page unchanged, or leave it out for the first page.");
	return decoded;
}

/** One page of ids in order, from a sorted list: the items after `after`, at most `limit`, and the next cursor. */
export function pageOf<T>(sorted: readonly T[], id: (item: T) => string, limit: number): { items: T[]; next_cursor: string | null } {
	const items = sorted.slice(0, limit);
	return { items, next_cursor: sorted.length > limit ? encodeCursor(id(items[items.length - 1]!)) : null };
}

/** Keys and the registry itself: only an admin key scoped to every app ("*") manages them. */
export function requireFullAdmin(principal: Principal): void {
	if (principal.admin && principal.apps === "*") return;
	log("warn", "auth_refused", { reason: principal.admin ? "admin_scoped" : "not_admin", key: principal.name });
	throw new BrokerError("forbidden", `The key "${principal.name}" may not manage keys or the registry: that needs an admin key whose apps are ["*"].`);
}

/**
 * The owner a path names for its own admin routes (an open-platform component, a WeCom suite): an admin key
 * allowed `<scope>:<id>` (or "*"), an id of the right shape, and one this broker serves; 403 before 404, so
 * a key learns nothing of owners outside its scope.
 */
export async function ownerParam(c: Context<BrokerEnv>, param: string, scope: "component" | "suite", served: (id: string) => Promise<unknown>, notServed: (id: string) => string): Promise<string> {
	const principal = c.get("principal");
	requireAdmin(principal);
	const id = c.req.param(param) ?? "";
	if (!APPID_PATTERN.test(id)) throw new BrokerError("bad_request", `The ${param} in the path must be 1-64 letters, digits, _ or -.`);
	requireApp(principal, `${scope}:${id}`);
	if (!(await served(id))) throw new BrokerError("not_found", notServed(id));
	return id;
}
