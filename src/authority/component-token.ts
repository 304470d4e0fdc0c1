/**
 * A component's component_access_token, on the one refresh engine (engine/kinds.ts: the `token` slot of the
 * component's own object, policy no_overlap, fetched with the newest component_verify_ticket), and the
 * watch over its tickets that the engine cannot see: WeChat pushes one every ~10 min and there is no API to
 * pull one (OPEN-PLATFORM.md §2), so silence is the only sign that pushes have stopped.
 *
 * - The engine sees the component as an app whose appid is its object's name, `component:<id>`
 *   (componentAsApp): the schedule index, the watchdog, /status, the KV edge copy and the gateway's issued
 *   index then work for it unchanged, and no appid can collide with it (appids have no `:`).
 * - No push for TICKET_STALE_MS is an incident whose message names what to check; the alarm wakes for it
 *   (`wake`), so it opens with zero traffic. A ticket refusal (61005, 61006) or no ticket at all is an
 *   incident through the engine's own failure rule.
 * - Once per incident about tickets, the object asks WeChat to restart its pushes (api_start_push_ticket).
 * - A ticket that arrives while the component has no usable token, or while its last refresh failed for
 *   want of a ticket, ends the backoff, so the alarm (re-armed at once) fetches the token promptly.
 */
import type { AppConfig, AppProfile, BrokerConfig, ComponentConfig, ComponentProfile } from "../config/config";
import { log } from "../core/log";
import { countCall } from "../core/usage";
import { componentObjectName, COMPONENT_TICKET_KEY } from "../core/storage-keys";
import { COMPONENT_TICKETED } from "../engine/kinds";
import type { AuthorityState, SlotState } from "../engine/state";
import { startPushTicket } from "../wechat/component-client";
import type { StoredTicket } from "./component";
import { PushedTicket, ticketRefused } from "./pushed-ticket";

/** WeChat pushes every ~10 min; three missed pushes are news (OPEN-PLATFORM.md: "alert when no push for >20-30 min"). */
export const TICKET_STALE_MS = 30 * 60_000;
const OBJECT_PREFIX = "component:";

const asApps = new WeakMap<ComponentConfig, AppConfig>();

/** The component as the engine sees it: an app named component:<id> with one credential (kinds.ts). */
export function componentAsApp(component: ComponentConfig): AppConfig {
	let app = asApps.get(component);
	if (!app) {
		app = { ...componentAsProfile(component), secret: component.secret };
		asApps.set(component, app);
	}
	return app;
}

/** The same without the secret: what an isolate knows of it (the gateway forwards its calls by it). */
export function componentAsProfile(component: ComponentProfile): AppProfile {
	return {
		appid: componentObjectName(component.componentAppid), componentAppid: component.componentAppid,
		source: component.source, platform: "wechat", mode: "component", dailyQuota: component.dailyQuota, ticketDailyQuota: 0,
	};
}

/**
 * What a component's object (named component:<id>) serves under that name: the component of
 * WECHAT_COMPONENTS, else the registry one the object opened; undefined for an app's appid.
 */
export function componentAppOf(appid: string, configured: ReadonlyMap<string, ComponentConfig>, opened: ComponentConfig | undefined): AppConfig | undefined {
	const id = componentIdOf(appid);
	if (id === undefined) return undefined;
	const component = configured.get(id) ?? (opened?.componentAppid === id ? opened : undefined);
	return component && componentAsApp(component);
}

/** The component appid of an object name component:<id>, or undefined for an app's appid. */
export function componentIdOf(appid: string): string | undefined {
	return appid.startsWith(OBJECT_PREFIX) ? appid.slice(OBJECT_PREFIX.length) : undefined;
}

export interface TicketWatchHost {
	readonly storage: DurableObjectStorage;
	state(): AuthorityState;
	setState(state: AuthorityState): void;
	save(): Promise<void>;
	config(): BrokerConfig;
	waitUntil(promise: Promise<unknown>): void;
}

/** What /status shows of the component's tickets: when the newest arrived, never the ticket. */
export interface TicketStatus {
	component_appid: string;
	ticket_received_at: string | null;
	ticket_age_s: number | null;
	ticket_create_time: number | null;
}

export class TicketWatch {
	readonly #host: TicketWatchHost;
	/** The newest ticket's times (storage "component_ticket"), the silence rule and the unblocking (pushed-ticket.ts). */
	readonly #pushed: PushedTicket<StoredTicket>;

	constructor(host: TicketWatchHost) {
		this.#host = host;
		this.#pushed = new PushedTicket<StoredTicket>(host.storage, {
			key: COMPONENT_TICKET_KEY, staleMs: TICKET_STALE_MS, pushedAt: (stored) => stored.createTime,
			silence: (minutes) => `no component_verify_ticket pushed for ${minutes} min (WeChat pushes one every ~10 min; the newest is valid 12 h from its push): check that the component's 授权事件接收URL is /open/<component_appid>/events on this broker and answers \`success\``,
		});
	}

	/** In the object's constructor, before any call is delivered. */
	load(): Promise<void> {
		return this.#pushed.load();
	}

	/** The ticket itself, for api_component_token: read from storage, never held in memory longer. */
	ticket(): Promise<string | null> {
		return this.#pushed.ticket();
	}

	/** A push stored a newer ticket (component.ts). */
	arrived(createTime: number, receivedAt: number): void {
		this.#pushed.arrived({ pushedAt: createTime, receivedAt });
	}

	/** No push for TICKET_STALE_MS, in words for the alert; null while pushes arrive (or before the first). */
	problem(now: number): string | null {
		return this.#pushed.problem(now);
	}

	/** When the silence becomes an incident, for the alarm; null once it is one (or before the first push). */
	wake(now: number): number | null {
		return this.#pushed.wake(now);
	}

	status(componentAppid: string, now: number): TicketStatus {
		const seen = this.#pushed.seen();
		return {
			component_appid: componentAppid,
			ticket_received_at: seen && new Date(seen.receivedAt).toISOString(),
			ticket_age_s: seen && Math.max(0, Math.floor((now - seen.receivedAt) / 1_000)),
			ticket_create_time: seen?.pushedAt ?? null,
		};
	}

	/** Whether a push that just arrived should end the token's backoff: it has no usable token, or wanted a ticket. */
	unblocks(slot: SlotState | undefined, now: number): boolean {
		return this.#pushed.unblocks(COMPONENT_TICKETED, slot, now);
	}

	/**
	 * After an assessment: an incident about tickets that has just opened asks WeChat, once, to restart its
	 * pushes. Once per incident because it opens once; the call is counted and runs in the background.
	 */
	async afterAssess(app: AppConfig, before: AuthorityState["incident"], now: number): Promise<void> {
		const { incident, slots } = this.#host.state();
		if (!incident || incident === before || (before && before.since === incident.since)) return;
		if (!ticketRefused(COMPONENT_TICKETED, slots.token) && this.problem(now) === null) return;
		this.#host.setState({ ...this.#host.state(), usage: countCall(this.#host.state().usage, "api_start_push_ticket", now) });
		await this.#host.save();
		this.#host.waitUntil(startPushTicket(app, this.#host.config()).then((answer) => {
			log(answer.ok ? "info" : "warn", "component_push_restart", { component_appid: app.componentAppid ?? null, ...(answer.ok ? { errmsg: answer.errmsg } : { message: answer.message }) });
		}));
	}
}
