// Medians and the summaries the report prints, computed from the raw windows.
import type { ProxyName, Timing, WorkloadName } from './settings.js';

/** One measured window of one proxy. */
export interface Window {
  round: number;
  /** Requests (or messages) per second. */
  rate: number;
  p50: number;
  p99: number;
  completed: number;
  errors: number;
  /** Proxy CPU (user + system) per completed request or message; null for `direct`. */
  cpuPerUnit: number | null;
  /** The proxy process's peak RSS so far (a fresh process per workload); null for `direct`. */
  maxRssMb: number | null;
}

export interface ProxyRun {
  proxy: ProxyName;
  label: string;
  /** Set when the proxy did not run this workload, with the reason shown in the table. */
  skipped?: string;
  /** What the checked request before the load found wrong, if anything. */
  verifyError?: string;
  warmupErrors: number;
  windows: Window[];
}

/** One back-to-back pair of windows of a ratio target's two proxies (`main.ts`, the paired phase). */
export interface PairWindow {
  rate: number;
  referenceRate: number;
  cpu: number | null;
  referenceCpu: number | null;
}

/** A ratio target's pair measured in alternating windows after the rounds. */
export interface PairRun {
  proxy: ProxyName;
  reference: ProxyName;
  windows: PairWindow[];
  errors: number;
  referenceErrors: number;
}

export interface WorkloadRun {
  workload: WorkloadName;
  timing: Timing;
  connections: number;
  runs: ProxyRun[];
  /** The ratio targets' pairs in this workload, each measured back to back (absent in older JSON). */
  pairs?: PairRun[];
}

export interface Summary {
  rate: number;
  rateMin: number;
  rateMax: number;
  p50: number;
  p99: number;
  cpu: number | null;
  maxRssMb: number | null;
  errors: number;
  /** Median over rounds of this proxy's rate / http-proxy's in the same round. */
  rateVsHttpProxy: number | null;
  /** Median over rounds of this proxy's CPU per unit / the pipe proxy's in the same round. */
  cpuVsPipe: number | null;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** `value(run) / value(reference)` for each round both ran. */
export function pairedRatios(run: ProxyRun, reference: ProxyRun | undefined, value: (w: Window) => number | null): number[] {
  if (reference === undefined || reference.skipped !== undefined) return [];
  const ratios: number[] = [];
  for (const window of run.windows) {
    const other = reference.windows.find((w) => w.round === window.round);
    const a = value(window);
    const b = other === undefined ? null : value(other);
    if (a !== null && b !== null && b > 0) ratios.push(a / b);
  }
  return ratios;
}

/** Median over the rounds both ran of `value(run) / value(reference)`. */
export function pairedRatio(run: ProxyRun, reference: ProxyRun | undefined, value: (w: Window) => number | null): number | null {
  const ratios = pairedRatios(run, reference, value);
  return ratios.length === 0 ? null : median(ratios);
}

export function errorCount(run: ProxyRun): number {
  return run.windows.reduce((sum, w) => sum + w.errors, run.warmupErrors) + (run.verifyError === undefined ? 0 : 1);
}

export function summarize(run: ProxyRun, all: ProxyRun[]): Summary | null {
  if (run.skipped !== undefined || run.windows.length === 0) return null;
  const rates = run.windows.map((w) => w.rate);
  const cpus = run.windows.map((w) => w.cpuPerUnit).filter((v): v is number => v !== null);
  const rss = run.windows.map((w) => w.maxRssMb).filter((v): v is number => v !== null);
  return {
    rate: median(rates),
    rateMin: Math.min(...rates),
    rateMax: Math.max(...rates),
    p50: median(run.windows.map((w) => w.p50)),
    p99: median(run.windows.map((w) => w.p99)),
    cpu: cpus.length === 0 ? null : median(cpus),
    maxRssMb: rss.length === 0 ? null : Math.max(...rss),
    errors: errorCount(run),
    rateVsHttpProxy: pairedRatio(
      run,
      all.find((r) => r.proxy === 'http-proxy'),
      (w) => w.rate,
    ),
    cpuVsPipe: pairedRatio(
      run,
      all.find((r) => r.proxy === 'pipe'),
      (w) => w.cpuPerUnit,
    ),
  };
}
