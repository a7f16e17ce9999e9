/** What `onStopSignals` does with the first stop signal and with any after it. */
export interface StopSignalHandlers {
  /** The first SIGTERM or SIGINT: drain. */
  drain(signal: NodeJS.Signals): void;
  /** A second one (of either kind) while draining: stop waiting, exit now. */
  exitNow(signal: NodeJS.Signals): void;
}

/**
 * Handles SIGTERM and SIGINT as servers do: the first drains, a second one (Ctrl-C twice, a
 * supervisor escalating, `kill` after `docker stop`) exits at once instead of waiting out
 * `timeouts.shutdown`, as Caddy does, and nginx on SIGTERM after SIGQUIT.
 *
 * @example
 * onStopSignals({ drain: () => void running.stop(), exitNow: () => process.exit(1) });
 */
export function onStopSignals(handlers: StopSignalHandlers): void {
  let received = 0;
  const handle = (signal: NodeJS.Signals) => {
    received++;
    if (received === 1) handlers.drain(signal);
    else if (received === 2) handlers.exitNow(signal);
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}
