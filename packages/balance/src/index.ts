// @relay/balance: several upstream targets behind one relay.
export { balance, type BalanceStage } from './balance.js';
export { targetPicker, type PickedTarget, type TargetPicker, type TargetPickerOptions } from './picker.js';
export type { TargetState } from './member.js';
export type {
  BalanceOptions,
  CircuitOptions,
  DnsTarget,
  HashKey,
  HealthCheckOptions,
  HealthProtocol,
  OutlierOptions,
  StaticTarget,
  Strategy,
  TargetEvent,
  TargetSpec,
} from './options.js';
