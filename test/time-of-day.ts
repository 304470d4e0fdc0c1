/**
 * The time of day every test run starts at, whatever the real one: WeChat's days turn at midnight China time
 * (16:00 UTC), and a test that spans a few hours of WeChat's clock must not pass at one real hour and fail at
 * another. Both clocks move to it by the same shift: the simulator's (global-setup.ts) and the broker's faked
 * Date (worker/setup.ts), so they keep turning the day together.
 */
const MS_PER_DAY = 86_400_000;
/** 04:00 UTC, noon in China: twelve hours from WeChat's day turn either way. */
const START_MS_INTO_UTC_DAY = 4 * 3_600_000;

/** ms to add to `now` for it to read START_MS_INTO_UTC_DAY into its UTC day (0 to just under a day). */
export function shiftToTestTimeOfDay(now: number): number {
	return (((START_MS_INTO_UTC_DAY - (now % MS_PER_DAY)) % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY;
}
