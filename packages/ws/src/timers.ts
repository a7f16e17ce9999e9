/**
 * The longest delay node's timers take, in ms (about 24.8 days). A longer one is not an error to
 * node: the timer fires after 1 ms, with a TimeoutOverflowWarning.
 */
export const maxTimerDelay = 2 ** 31 - 1;

/**
 * `ms` cut to what a node timer takes. A caller with a longer wait (a deadline weeks away, a long
 * idle timeout) checks the time again when the timer fires and arms the next one for what is left.
 */
export function timerDelay(ms: number): number {
  return ms > maxTimerDelay ? maxTimerDelay : ms;
}
