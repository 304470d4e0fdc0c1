/**
 * The way to the schedule index (schedule-index.ts), and the sender each app's object keeps its row with.
 *
 * Why a sender: an object may change its plan several times while one upsert is on its way (a refresh, then
 * its incident closing), and two upserts racing to the index could land in either order. So an object sends
 * one row at a time and, when the plan changed meanwhile, only the newest one after it: the index always
 * ends with the object's last word, at most one upsert behind. A failed upsert is forgotten, not retried in
 * a loop: the next change, or the object's next alarm, sends the row again, and until then the watchdog
 * sees the old row (at worst a poke too many, which the object answers by sending its row).
 */
import type { AppEnv } from "../env";
import { log } from "../core/log";
import { INDEX_NAME, type ScheduleIndex } from "./schedule-index";
import { sameRow, type ScheduleRow } from "./row";

export function scheduleIndex(env: Pick<AppEnv, "SCHEDULE_INDEX">): DurableObjectStub<ScheduleIndex> {
	return env.SCHEDULE_INDEX.get(env.SCHEDULE_INDEX.idFromName(INDEX_NAME));
}

export class RowSender {
	readonly #index: () => Pick<DurableObjectStub<ScheduleIndex>, "put" | "remove">;
	/** The last row queued or taken by the index; undefined when unknown (a new instance, a failed upsert). */
	#latest: ScheduleRow | null | undefined = undefined;
	#pending: ScheduleRow | null = null;
	#sending: Promise<void> | null = null;

	constructor(index: () => Pick<DurableObjectStub<ScheduleIndex>, "put" | "remove">) {
		this.#index = index;
	}

	/** Queues `row` unless it is what the index already has (or will have); resolves when the queue is sent. */
	offer(row: ScheduleRow): Promise<void> {
		if (sameRow(row, this.#latest)) return this.settled();
		this.#latest = row;
		this.#pending = row;
		this.#sending ??= this.#drain().finally(() => {
			this.#sending = null;
		});
		return this.#sending;
	}

	/** The app is gone: its row is removed once any upsert under way has landed. */
	async drop(appid: string): Promise<void> {
		this.#pending = null;
		await this.settled();
		this.#latest = null;
		try {
			await this.#index().remove(appid);
		} catch (error) {
			this.#latest = undefined;
			log("warn", "schedule_index_failed", { appid, op: "remove", reason: error instanceof Error ? error.message : "unknown" });
		}
	}

	/** Resolves when no upsert is under way. */
	async settled(): Promise<void> {
		while (this.#sending) await this.#sending;
	}

	async #drain(): Promise<void> {
		while (this.#pending) {
			const row = this.#pending;
			this.#pending = null;
			try {
				await this.#index().put(row);
			} catch (error) {
				// Unknown now: the next offer sends whatever the row is then.
				if (this.#latest === row) this.#latest = undefined;
				log("warn", "schedule_index_failed", { appid: row.appid, op: "put", reason: error instanceof Error ? error.message : "unknown" });
			}
		}
	}
}
