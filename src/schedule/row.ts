/**
 * What one app's object tells the schedule index about itself (schedule-index.ts): one row per app, replaced
 * whenever the object's plan or its health changes, and only then (a row equal to the last one sent is not
 * sent again, and the index does not rewrite a row that did not change).
 */
import type { AppConfig } from "../config/config";
import type { AuthorityState } from "../engine/state";
import { componentObjectName, suiteObjectName } from "../core/storage-keys";

/** Where the app is configured: the WECHAT_APPS secret, or the registry (admin API). */
export type AppSource = "secret" | "registry";

export interface ScheduleRow {
	readonly appid: string;
	readonly source: AppSource;
	/** ms since epoch: when the object's alarm is armed to fire; null when nothing is planned. */
	readonly dueAt: number | null;
	/** ms: until when its access_token can be handed out (0: it has none). */
	readonly servingUntil: number;
	/** The app has held an access_token at some point (false: never fetched). */
	readonly fetched: boolean;
	/** ms: the access_token's last successful refresh. */
	readonly lastRefreshAt: number | null;
	readonly incident: { readonly since: number; readonly reason: string } | null;
	/**
	 * The scope the app belongs to: `component:<id>` for an authorizer or a component's own object,
	 * `suite:<id>` for an installed company or a suite's own object, else null: what lets a key scoped to a
	 * component or a suite find every member of it in one index query.
	 */
	readonly memberOf: string | null;
}

/** A token is handed out while its expires_in is at least 1 s (core/lifetime.ts). */
const LAST_SERVED_S_BEFORE_EXPIRY = 1;

export function rowFor(app: Pick<AppConfig, "appid" | "componentAppid" | "suiteId">, source: AppSource, state: AuthorityState, dueAt: number | null): ScheduleRow {
	const token = state.slots.token;
	const current = token?.current ?? null;
	return {
		appid: app.appid,
		source,
		dueAt,
		servingUntil: current ? current.expiresAt - LAST_SERVED_S_BEFORE_EXPIRY * 1_000 : 0,
		fetched: current !== null || token?.lastRefresh != null,
		lastRefreshAt: token?.lastRefresh?.at ?? null,
		incident: state.incident,
		memberOf: memberOf(app),
	};
}

export function sameRow(a: ScheduleRow | null | undefined, b: ScheduleRow | null | undefined): boolean {
	if (!a || !b) return a === b;
	return a.appid === b.appid && a.source === b.source && a.dueAt === b.dueAt && a.servingUntil === b.servingUntil
		&& a.fetched === b.fetched && a.lastRefreshAt === b.lastRefreshAt
		&& a.incident?.since === b.incident?.since && a.incident?.reason === b.incident?.reason && a.memberOf === b.memberOf;
}

function memberOf(app: Pick<AppConfig, "componentAppid" | "suiteId">): string | null {
	if (app.componentAppid !== undefined) return componentObjectName(app.componentAppid);
	return app.suiteId !== undefined ? suiteObjectName(app.suiteId) : null;
}
