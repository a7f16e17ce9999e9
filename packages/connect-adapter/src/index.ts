export { relayLifecycle, type LifecycleRelay, type RelayLifecycle } from './lifecycle.js';
export { toConnect, type ConnectMiddleware, type ConnectOptions, type NextFunction } from './to-connect.js';
export { routeUpgrades, type UpgradeRoutes } from './upgrades.js';
