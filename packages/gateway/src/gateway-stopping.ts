/**
 * A reload the gateway did not apply because it is shutting down: refused at once when it began
 * after `shutdown()`, abandoned when `shutdown()` began while its new relays were starting (they
 * and the Redis client it opened are closed again). The config itself was not at fault.
 *
 * @example
 * try { await gateway.reload(loaded); } catch (error) { if (error instanceof GatewayStoppingError) return; throw error; }
 */
export class GatewayStoppingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayStoppingError';
  }
}
