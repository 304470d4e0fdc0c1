/**
 * ScheduleIndex: the one place that knows every app's next wake-up and health, so that the watchdog cron,
 * `GET /status` and `GET /health` read one table instead of asking every app's object. A Durable Object with
 * SQLite storage (`ctx.storage.sql`, wrangler.toml migration "v3"); one instance, named INDEX_NAME.
 *
 * Layout: one table, one row per app (row.ts), keyed by appid:
 *   apps(appid PK, source 'secret'|'registry', due_at ms|null, serving_until ms, fetched 0|1,
 *        last_refresh_at ms|null, incident_since ms|null, incident_reason text|null, updated_at ms,
 *        member_of text|null)
 *   apps_due       on due_at (partial: due_at not null)    → the watchdog's "who is overdue", in due order
 *   apps_incident  on incident_since (partial: not null)   → /health's "who has an open incident"
 *   apps_member_of on member_of (partial: not null)        → a `component:<id>` / `suite:<id>` key's apps
 * `due_at` is the moment the app's alarm is armed for (authority/alarm-chain.ts); an app is late when it is
 * more than WATCHDOG_MARGIN_MS in the past. `serving_until` is a time, not a flag, so that a token running
 * out needs no write: serving = serving_until > now.
 *
 * What is written, and how often: each app's object sends its row when the row changes (row.ts), that is
 * once per refresh of any of its credentials (the planned refresh moves `due_at`), once per incident
 * opened or closed, and once per failed attempt (its backoff moves `due_at`). A row equal to the stored one
 * is not rewritten (the upsert's WHERE). Per app with 7200 s tokens and no failures: 12 upserts a day
 * (24 with both JS-SDK tickets in use), each one index request and two rows written (the row and its
 * apps_due entry, as SQLite counts them and Cloudflare bills them).
 * Reads: the watchdog reads only overdue rows (O(late) via apps_due), /status one page of rows plus the
 * summary's counts (a scan of the apps in scope), /health the incident and not-serving rows.
 *
 * Why one object and not shards: the load is writes per refresh, not per app. 10,000 apps × 12 refreshes a
 * day is 1.4 upserts/s, 100,000 apps 14/s, against a soft limit near 1,000 requests/s per object; 100,000
 * rows of ~150 bytes are 15 MB of the 10 GB an object may hold; the summary's scan of 100,000 rows is a few
 * milliseconds of SQLite. One object also keeps paging and counting exact (no merge of K shards' cursors).
 * Sharding by hash(appid) becomes worth it near a million apps, or with tokens far shorter than WeChat's
 * 7200 s: the rows and queries here need no change for it, only the stub (client.ts) and a merge in /status.
 */
import { DurableObject } from "cloudflare:workers";
import type { AppEnv } from "../env";
import type { ScheduleRow } from "./row";

/** The watchdog's page of overdue apps, the unstarted ones, and /health's unhealthy list are bounded by these. */
export interface OverdueQuery {
	readonly now: number;
	/** An app is overdue when its alarm was due more than this long ago (ms). */
	readonly marginMs: number;
	/** The appids configured in WECHAT_APPS: their rows count, and those without a row are "unstarted". */
	readonly configured: readonly string[];
	readonly limit: number;
}

export interface Overdue {
	readonly overdue: string[];
	readonly unstarted: string[];
}

export interface Summary {
	readonly apps: number;
	readonly serving: number;
	readonly incidents: number;
	readonly never_fetched: number;
	readonly late: number;
}

export interface PageQuery {
	readonly now: number;
	readonly marginMs: number;
	readonly configured: readonly string[];
	/** The appids the caller's key may see, or null for every app. */
	readonly scope: readonly string[] | null;
	readonly limit: number;
	/** The last appid of the previous page; null for the first. */
	readonly after: string | null;
}

/** A page entry; an app configured in WECHAT_APPS whose object has never run has `row` null. */
export interface PageEntry {
	readonly appid: string;
	readonly row: ScheduleRow | null;
}

export interface Page {
	readonly summary: Summary;
	readonly entries: PageEntry[];
	/** The appid to pass as `after` for the next page, or null on the last page. */
	readonly next: string | null;
}

export interface Unhealthy {
	readonly appid: string;
	readonly reason: string;
}

/** The one index instance's name (a new name would start an empty index). */
export const INDEX_NAME = "schedule:v1";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS apps (
	appid TEXT PRIMARY KEY,
	source TEXT NOT NULL,
	due_at INTEGER,
	serving_until INTEGER NOT NULL,
	fetched INTEGER NOT NULL,
	last_refresh_at INTEGER,
	incident_since INTEGER,
	incident_reason TEXT,
	updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS apps_due ON apps(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS apps_incident ON apps(incident_since) WHERE incident_since IS NOT NULL;
`;

/**
 * The component or suite the app belongs to (ScheduleRow.memberOf), added after the table's first version: an
 * index made before it gains the column empty, and each app's row gets its value with the object's next
 * upsert (a new instance sends its row on its first change, an authorizer at least once per refresh).
 */
const MEMBER_OF_COLUMN = `
CREATE INDEX IF NOT EXISTS apps_member_of ON apps(member_of) WHERE member_of IS NOT NULL;
`;

/**
 * The rows of objects that are not apps of WECHAT_APPS but count whatever their source: components'
 * (component:<id>) and WeCom suites' and providers' (suite:<id>, provider:<corpid>). One removed from its
 * secret is disarmed by the watchdog's poke (its object no longer finds it).
 */
const OWNER_OBJECTS = "(appid LIKE 'component:%' OR appid LIKE 'suite:%' OR appid LIKE 'provider:%')";

/**
 * The apps that count: every registry app, and the WECHAT_APPS ones (with or without a row); a secret app's
 * row outlives its removal from the secret until its object's next alarm drops it, and must not count.
 * Owner objects count too (OWNER_OBJECTS). Then narrowed to a key's scope: the appids it names,
 * and for each `component:<id>` or `suite:<id>` it names, every row that belongs to it (its authorizers, its
 * installed companies, found through apps_member_of: the `IS NOT NULL` is what lets SQLite use that partial
 * index). Binds: configured (JSON), scope (JSON or null), scope again, scope again.
 */
const SCOPED = `
WITH configured(appid) AS (SELECT value FROM json_each(?)),
universe(appid) AS (SELECT appid FROM apps WHERE source = 'registry' OR ${OWNER_OBJECTS} UNION SELECT appid FROM configured),
scoped(appid) AS (SELECT appid FROM universe WHERE ? IS NULL OR appid IN (SELECT value FROM json_each(?))
	OR appid IN (SELECT appid FROM apps WHERE member_of IS NOT NULL AND member_of IN (SELECT value FROM json_each(?))))
`;

/** The binds SCOPED takes, in order. */
function scopedBinds(configured: readonly string[], scope: readonly string[] | null): (string | null)[] {
	const json = scope && JSON.stringify(scope);
	return [JSON.stringify(configured), json, json, json];
}

interface RowRecord extends Record<string, SqlStorageValue> {
	appid: string;
	source: string | null;
	due_at: number | null;
	serving_until: number | null;
	fetched: number | null;
	last_refresh_at: number | null;
	incident_since: number | null;
	incident_reason: string | null;
	member_of: string | null;
}

function toRow(r: RowRecord): ScheduleRow | null {
	if (r.source === null) return null;
	return {
		appid: r.appid, source: r.source === "registry" ? "registry" : "secret", dueAt: r.due_at,
		servingUntil: r.serving_until ?? 0, fetched: r.fetched === 1, lastRefreshAt: r.last_refresh_at,
		incident: r.incident_since === null ? null : { since: r.incident_since, reason: r.incident_reason ?? "" },
		memberOf: r.member_of,
	};
}

export class ScheduleIndex extends DurableObject<AppEnv> {
	readonly #sql: SqlStorage;

	constructor(ctx: DurableObjectState, env: AppEnv) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		this.#sql.exec(SCHEMA);
		const columns = this.#sql.exec<{ name: string }>("PRAGMA table_info(apps)").toArray();
		if (!columns.some((c) => c.name === "member_of")) this.#sql.exec("ALTER TABLE apps ADD COLUMN member_of TEXT");
		this.#sql.exec(MEMBER_OF_COLUMN);
	}

	/** The app's row as its object sees it now; returns the rows written (0 when nothing changed). */
	put(row: ScheduleRow): number {
		const cursor = this.#sql.exec(
			`INSERT INTO apps (appid, source, due_at, serving_until, fetched, last_refresh_at, incident_since, incident_reason, updated_at, member_of)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(appid) DO UPDATE SET source = excluded.source, due_at = excluded.due_at, serving_until = excluded.serving_until,
				fetched = excluded.fetched, last_refresh_at = excluded.last_refresh_at, incident_since = excluded.incident_since,
				incident_reason = excluded.incident_reason, updated_at = excluded.updated_at, member_of = excluded.member_of
			WHERE source IS NOT excluded.source OR due_at IS NOT excluded.due_at OR serving_until IS NOT excluded.serving_until
				OR fetched IS NOT excluded.fetched OR last_refresh_at IS NOT excluded.last_refresh_at
				OR incident_since IS NOT excluded.incident_since OR incident_reason IS NOT excluded.incident_reason
				OR member_of IS NOT excluded.member_of`,
			row.appid, row.source, row.dueAt, row.servingUntil, row.fetched ? 1 : 0, row.lastRefreshAt,
			row.incident?.since ?? null, row.incident?.reason ?? null, Date.now(), row.memberOf,
		);
		return cursor.rowsWritten;
	}

	/** The app is gone (deleted, or no longer configured): its row goes with it. */
	remove(appid: string): void {
		this.#sql.exec("DELETE FROM apps WHERE appid = ?", appid);
	}

	/**
	 * For the watchdog: apps whose alarm is overdue (most overdue first; objects named by their kind of either
	 * source included: OWNER_OBJECTS), and configured apps with no row yet.
	 */
	overdue({ now, marginMs, configured, limit }: OverdueQuery): Overdue {
		const json = JSON.stringify(configured);
		const overdue = this.#sql.exec<{ appid: string }>(
			`SELECT appid FROM apps WHERE due_at IS NOT NULL AND due_at < ?
				AND (source = 'registry' OR ${OWNER_OBJECTS} OR appid IN (SELECT value FROM json_each(?))) ORDER BY due_at LIMIT ?`,
			now - marginMs, json, limit,
		).toArray().map((r) => r.appid);
		const unstarted = this.#sql.exec<{ appid: string }>(
			"SELECT value AS appid FROM json_each(?) WHERE value NOT IN (SELECT appid FROM apps) LIMIT ?",
			json, limit,
		).toArray().map((r) => r.appid);
		return { overdue, unstarted };
	}

	/** For GET /status: the summary over the apps in scope, then one page of them in appid order. */
	page({ now, marginMs, configured, scope, limit, after }: PageQuery): Page {
		const binds = scopedBinds(configured, scope);
		const summary = this.#summary(binds, now, marginMs);
		const rows = this.#sql.exec<RowRecord>(
			`${SCOPED} SELECT s.appid AS appid, a.source AS source, a.due_at AS due_at, a.serving_until AS serving_until, a.fetched AS fetched,
				a.last_refresh_at AS last_refresh_at, a.incident_since AS incident_since, a.incident_reason AS incident_reason, a.member_of AS member_of
			FROM scoped s LEFT JOIN apps a ON a.appid = s.appid WHERE s.appid > ? ORDER BY s.appid LIMIT ?`,
			...binds, after ?? "", limit + 1,
		).toArray();
		const entries = rows.slice(0, limit).map((r) => ({ appid: r.appid, row: toRow(r) }));
		return { summary, entries, next: rows.length > limit ? entries[entries.length - 1]!.appid : null };
	}

	/** For GET /health with a key for every app: how many count, and those that cannot serve or have an incident. */
	unhealthy({ now, configured, scope, limit }: { now: number; configured: readonly string[]; scope: readonly string[] | null; limit: number }): { apps: number; unhealthy: number; listed: Unhealthy[] } {
		const binds = scopedBinds(configured, scope);
		const counts = this.#sql.exec<{ apps: number; unhealthy: number }>(
			`${SCOPED} SELECT COUNT(*) AS apps, COALESCE(SUM(a.appid IS NULL OR a.incident_since IS NOT NULL OR a.serving_until <= ?), 0) AS unhealthy
			FROM scoped s LEFT JOIN apps a ON a.appid = s.appid`,
			...binds, now,
		).one();
		const listed = this.#sql.exec<RowRecord>(
			`${SCOPED} SELECT s.appid AS appid, a.source AS source, a.due_at AS due_at, a.serving_until AS serving_until, a.fetched AS fetched,
				a.last_refresh_at AS last_refresh_at, a.incident_since AS incident_since, a.incident_reason AS incident_reason, a.member_of AS member_of
			FROM scoped s LEFT JOIN apps a ON a.appid = s.appid
			WHERE a.appid IS NULL OR a.incident_since IS NOT NULL OR a.serving_until <= ? ORDER BY s.appid LIMIT ?`,
			...binds, now, limit,
		).toArray().map((r) => ({ appid: r.appid, reason: unhealthyReason(toRow(r), now) }));
		return { apps: counts.apps, unhealthy: counts.unhealthy, listed };
	}

	#summary(binds: (string | null)[], now: number, marginMs: number): Summary {
		return this.#sql.exec<Summary & Record<string, number>>(
			`${SCOPED} SELECT COUNT(*) AS apps,
				COALESCE(SUM(a.serving_until > ?), 0) AS serving,
				COALESCE(SUM(a.incident_since IS NOT NULL), 0) AS incidents,
				COALESCE(SUM(a.appid IS NULL OR a.fetched = 0), 0) AS never_fetched,
				COALESCE(SUM(a.due_at IS NOT NULL AND a.due_at < ?), 0) AS late
			FROM scoped s LEFT JOIN apps a ON a.appid = s.appid`,
			...binds, now, now - marginMs,
		).one();
	}
}

function unhealthyReason(row: ScheduleRow | null, now: number): string {
	if (!row) return "not started yet: its object has not run (the next watchdog run, or a GET /token, starts it)";
	if (row.incident) return `open incident since ${new Date(row.incident.since).toISOString()}: ${row.incident.reason}`;
	if (row.servingUntil <= now) return row.fetched ? "no usable token (its refreshes are failing; GET /status has the last error)" : "no token fetched yet";
	return "healthy";
}
