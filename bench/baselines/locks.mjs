// @ts-check
/**
 * The in-process lock of the baseline designs (Java `synchronized` / ReentrantLock): callers queue and run
 * one at a time, each re-reading the cache once it holds the lock. It spans one process only, which is
 * the point: four instances behind one Redis hold four independent locks.
 */

export class Mutex {
	/** @type {Promise<unknown>} */
	#tail = Promise.resolve();

	/**
	 * @template T
	 * @param {() => Promise<T>} critical
	 * @returns {Promise<T>}
	 */
	run(critical) {
		const result = this.#tail.then(critical);
		this.#tail = result.catch(() => {});
		return result;
	}
}

/** One Mutex per key (per app), made on first use. */
export class KeyedMutex {
	/** @type {Map<string, Mutex>} */
	#locks = new Map();

	/**
	 * @template T
	 * @param {string} key
	 * @param {() => Promise<T>} critical
	 * @returns {Promise<T>}
	 */
	run(key, critical) {
		let lock = this.#locks.get(key);
		if (!lock) {
			lock = new Mutex();
			this.#locks.set(key, lock);
		}
		return lock.run(critical);
	}
}
