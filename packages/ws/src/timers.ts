import { maxTimerDelay } from '@relay/core/transport';

/**
 * `ms` cut to what a node timer takes. A caller with a longer wait (a deadline weeks away, a long
 * idle timeout) checks the time again when the timer fires and arms the next one for what is left.
 */
export function timerDelay(ms: number): number {
  return ms > maxTimerDelay ? maxTimerDelay : ms;
}
