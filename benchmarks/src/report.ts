// RESULTS.md: the header (when, where, how), the targets with pass/fail, one table per workload.
import { errorCount, median, pairedRatio, pairedRatios, summarize, type ProxyRun, type WorkloadRun } from './stats.js';
import { PIPELINING, workloads, type ProxyName, type WorkloadName } from './settings.js';

export interface RunInfo {
  date: string;
  node: string;
  cpu: string;
  cores: number;
  platform: string;
  command: string;
  loadStart: number;
  loadEnd: number;
  autocannon: string;
  note: string | null;
  minutes: number;
}

export interface TargetRow {
  target: string;
  measured: string;
  result: 'pass' | 'FAIL' | 'not run';
}

const fixed = (value: number | null | undefined, digits: number): string =>
  value === null || value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits);

/** The proxy's run in a workload; null when it was not part of this run or was skipped. */
function find(results: WorkloadRun[], workload: WorkloadName, proxy: ProxyName): { run: ProxyRun; all: ProxyRun[] } | null {
  const entry = results.find((w) => w.workload === workload);
  const run = entry?.runs.find((r) => r.proxy === proxy);
  if (entry === undefined || run === undefined || run.skipped !== undefined || run.windows.length === 0) return null;
  return { run, all: entry.runs };
}

/** Why a target has no measurement: a proxy that failed to start fails it, one not run leaves it open. */
function missing(results: WorkloadRun[], workload: WorkloadName, names: ProxyName[]): Omit<TargetRow, 'target'> {
  const runs = results.find((w) => w.workload === workload)?.runs ?? [];
  const failed = runs.filter((r) => names.includes(r.proxy) && r.skipped !== undefined && r.skipped.startsWith('did not start'));
  if (failed.length > 0) return { measured: `${failed.map((r) => r.proxy).join(', ')} did not start`, result: 'FAIL' };
  return { measured: 'not measured in this run', result: 'not run' };
}

/** A ratio target: `proxy`'s req/s (or CPU per unit) over `reference`'s, bounded below (`atLeast`) or above. */
export interface RatioTarget {
  target: string;
  workload: WorkloadName;
  proxy: ProxyName;
  reference: ProxyName;
  value: 'rate' | 'cpu';
  bound: number;
  atLeast: boolean;
}

const ratio = (target: string, workload: WorkloadName, proxy: ProxyName, reference: ProxyName, value: 'rate' | 'cpu', bound: number, atLeast: boolean): RatioTarget => ({
  target,
  workload,
  proxy,
  reference,
  value,
  bound,
  atLeast,
});

/** The ratio targets, in the report's order; the harness also measures each pair in paired windows (`main.ts`). */
export const ratioTargets: readonly RatioTarget[] = [
  ratio('Relay default ≥ 1.15× http-proxy, req/s, small GET (issue 14)', 'small-get', 'relay', 'http-proxy', 'rate', 1.15, true),
  ratio('Relay default ≥ 1.05× @fastify/reply-from, req/s, small GET', 'small-get', 'relay', 'reply-from', 'rate', 1.05, true),
  ratio('Relay default CPU/req ≤ 1.05× the pipe proxy, small GET (issue 14)', 'small-get', 'relay', 'pipe', 'cpu', 1.05, false),
  ratio('Relay + headers, cookies, retry CPU/req ≤ 1.25× the pipe proxy, small GET', 'small-get', 'relay-stages', 'pipe', 'cpu', 1.25, false),
  ratio('Relay + rateLimit (memory, never reached) CPU/req ≤ 1.05× Relay default, small GET', 'small-get', 'relay-ratelimit', 'relay', 'cpu', 1.05, false),
  ratio('Relay + balance over 3 upstreams ≥ 1.1× @fastify/reply-from with base: [3 upstreams], req/s, small GET (issue 17)', 'small-get', 'relay-balance', 'reply-from-balance', 'rate', 1.1, true),
  ratio('Relay + balance over 3 upstreams CPU/req ≤ 1.1× Relay default (one upstream), small GET (issue 17)', 'small-get', 'relay-balance', 'relay', 'cpu', 1.1, false),
  ratio('Relay + compress() ≥ 1.2× compression + http-proxy-middleware (express), req/s, 64 KiB JSON', 'json-64k', 'relay-compress', 'express-compress', 'rate', 1.2, true),
  ratio('relay serve (1 worker) CPU/req ≤ 1.05× the same relay in code, small GET', 'small-get', 'relay-gateway', 'relay', 'cpu', 1.05, false),
  ratio('Relay + access log, metrics, tracing CPU/req ≤ 1.15× plain Relay, small GET (issue 18)', 'small-get', 'relay-observe', 'relay', 'cpu', 1.15, false),
  ratio(
    'Relay + access log, metrics, tracing CPU/req ≤ 1.15× Relay, both with the AsyncLocalStorage context manager on, small GET (issue 18)',
    'small-get',
    'relay-observe-als',
    'relay-als',
    'cpu',
    1.15,
    false,
  ),
  ratio("Relay's Fastify plugin ≥ 1.05× @fastify/http-proxy on Fastify, req/s, small GET (issue 22)", 'small-get', 'relay-fastify', 'fastify-http-proxy', 'rate', 1.05, true),
];

/**
 * Pairs measured back to back beside the targets' (no target of their own; their ratios are
 * printed under the workload's table): the undici transport against the default one, and in
 * the Fastify plugin against @fastify/http-proxy, which sends through undici too; observe's cost
 * split into Relay's part and the OpenTelemetry SDK's.
 */
export const comparisonPairs: ReadonlyArray<Pick<RatioTarget, 'workload' | 'proxy' | 'reference'>> = [
  { workload: 'small-get', proxy: 'relay-undici', reference: 'relay' },
  { workload: 'small-get', proxy: 'relay-fastify-undici', reference: 'fastify-http-proxy' },
  { workload: 'post-64k', proxy: 'relay-undici', reference: 'relay' },
  // Issue 18's cost split: Relay's own observe work (spans asked of the API, none recorded), and what the SDK's recording adds to it.
  { workload: 'small-get', proxy: 'relay-observe-api', reference: 'relay' },
  { workload: 'small-get', proxy: 'relay-observe', reference: 'relay-observe-api' },
];

/**
 * `spec`'s ratio in this run: from its paired windows when the run measured the pair (the two
 * proxies alternating back to back), else from the rounds (windows up to a round apart).
 */
function measureRatio(results: WorkloadRun[], spec: RatioTarget, a: ProxyRun, b: ProxyRun): { ratios: number[]; how: string; errors: string[] } {
  const pair = results.find((w) => w.workload === spec.workload)?.pairs?.find((p) => p.proxy === spec.proxy && p.reference === spec.reference);
  if (pair !== undefined && pair.windows.length > 0) {
    const ratios = pair.windows.map((w) => (spec.value === 'rate' ? w.rate / w.referenceRate : (w.cpu ?? Number.NaN) / (w.referenceCpu ?? Number.NaN))).filter((r) => Number.isFinite(r));
    const errors = [pair.errors > 0 ? spec.proxy : null, pair.referenceErrors > 0 ? spec.reference : null].filter((name): name is ProxyName => name !== null);
    return { ratios, how: 'paired windows', errors: [...new Set([...errors, ...roundErrors(a, b)])] };
  }
  return { ratios: pairedRatios(a, b, spec.value === 'rate' ? (w) => w.rate : (w) => w.cpuPerUnit), how: 'rounds', errors: roundErrors(a, b) };
}

function roundErrors(a: ProxyRun, b: ProxyRun): string[] {
  return [a, b].filter((run) => errorCount(run) > 0).map((run) => run.proxy);
}

/** The lead's targets, each checked against this run. */
export function targets(results: WorkloadRun[]): TargetRow[] {
  const rows: TargetRow[] = [];
  for (const spec of ratioTargets) {
    const a = find(results, spec.workload, spec.proxy);
    const b = find(results, spec.workload, spec.reference);
    if (a === null || b === null) {
      rows.push({ target: spec.target, ...missing(results, spec.workload, [spec.proxy, spec.reference]) });
      continue;
    }
    const { ratios, how, errors } = measureRatio(results, spec, a.run, b.run);
    const value = ratios.length === 0 ? null : median(ratios);
    const ok = value !== null && (spec.atLeast ? value >= spec.bound : value <= spec.bound) && errors.length === 0;
    const spread = ratios.length > 1 ? ` (${how}: ${ratios.length}, ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : '';
    rows.push({ target: spec.target, measured: `${fixed(value, 2)}×${spread}${errors.length > 0 ? `, errors: ${errors.join(', ')}` : ''}`, result: ok ? 'pass' : 'FAIL' });
  }
  rows.push(grpcTarget(results));
  const download = find(results, 'download-10m', 'relay');
  const rssTarget = 'Relay default peak RSS < 150 MB streaming 10 MiB downloads at 50 connections';
  if (download === null) rows.push({ target: rssTarget, ...missing(results, 'download-10m', ['relay']) });
  else {
    const peaks = download.run.windows.map((w) => w.maxRssMb ?? 0);
    const peak = Math.max(...peaks);
    const errors = errorCount(download.run);
    rows.push({
      target: rssTarget,
      measured: `${peak.toFixed(0)} MB (after round 1: ${peaks[0]!.toFixed(0)} MB, after round ${peaks.length}: ${peaks.at(-1)!.toFixed(0)} MB)${errors > 0 ? `, ${errors} errors` : ''}`,
      result: peak < 150 && errors === 0 ? 'pass' : 'FAIL',
    });
  }
  return rows;
}

/**
 * Issue 15's gRPC target. @fastify/http-proxy's HTTP/2 mode drops trailers, so every call through
 * it ends without a `grpc-status` (the client's INTERNAL "Call ended without gRPC status"): a peer
 * that completes no call is beaten by any Relay that completes them all, and the row says so.
 */
function grpcTarget(results: WorkloadRun[]): TargetRow {
  const target = 'Relay (h2c front, http2Transport) ≥ 1.1× @fastify/http-proxy with http2, req/s, gRPC unary (issue 15)';
  const relay = find(results, 'grpc-unary', 'relay-grpc');
  const peer = find(results, 'grpc-unary', 'fastify-http-proxy-grpc');
  if (relay === null || peer === null) return { target, ...missing(results, 'grpc-unary', ['relay-grpc', 'fastify-http-proxy-grpc']) };
  const peerCompleted = peer.run.windows.reduce((sum, w) => sum + w.completed, 0);
  if (peerCompleted > 0) {
    const ratios = pairedRatios(relay.run, peer.run, (w) => w.rate);
    const ratio = ratios.length === 0 ? null : median(ratios);
    const ok = ratio !== null && ratio >= 1.1 && errorCount(relay.run) === 0;
    return { target, measured: `${fixed(ratio, 2)}×${errorCount(peer.run) > 0 ? `, errors: ${peer.run.proxy}` : ''}`, result: ok ? 'pass' : 'FAIL' };
  }
  const relayRate = median(relay.run.windows.map((w) => w.rate));
  const ok = errorCount(relay.run) === 0 && relayRate > 0;
  return { target, measured: `Relay ${relayRate.toFixed(0)} calls/s without an error; the peer completed no call (its HTTP/2 mode drops trailers: no grpc-status)`, result: ok ? 'pass' : 'FAIL' };
}

/** The paired phase of a workload: each pair's median ratios, both ways of measuring shown. */
function pairLines(entry: WorkloadRun): string[] {
  const pairs = entry.pairs ?? [];
  if (pairs.length === 0) return [];
  const lines = ['', `Paired windows (the targets' measure): each target's two proxies alternate back to back, ${entry.timing.pairs} pairs of 2 s windows after the rounds.`, ''];
  lines.push('| proxy / reference | req/s ratio, median (min–max) | CPU ratio, median (min–max) | errors |', '| --- | ---: | ---: | ---: |');
  for (const pair of pairs) {
    const rates = pair.windows.map((w) => w.rate / w.referenceRate);
    const cpus = pair.windows.filter((w) => w.cpu !== null && w.referenceCpu !== null && w.referenceCpu > 0).map((w) => w.cpu! / w.referenceCpu!);
    const range = (values: number[]) => (values.length === 0 ? 'n/a' : `${median(values).toFixed(2)} (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})`);
    lines.push(`| ${pair.proxy} / ${pair.reference} | ${range(rates)} | ${range(cpus)} | ${pair.errors + pair.referenceErrors} |`);
  }
  return lines;
}

function workloadTable(entry: WorkloadRun): string[] {
  const workload = workloads[entry.workload];
  const unit = workload.unit;
  const { rounds, duration, warmup } = entry.timing;
  const lines = [
    `## ${workload.title}`,
    '',
    `\`${workload.method} ${workload.path}\`; ${entry.connections} connections${unit === 'req' ? `, pipelining ${PIPELINING}` : ''}; ${rounds} rounds × ${duration} s per proxy after a ${warmup} s warm-up.`,
    '',
    `| proxy | ${unit}/s median (min–max) | p50 ms | p99 ms | CPU µs/${unit} | peak RSS MB | errors | ${unit}/s vs http-proxy | CPU vs pipe |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const latencyDigits = unit === 'msg' ? 2 : 0;
  for (const run of entry.runs) {
    if (run.skipped !== undefined) {
      lines.push(`| ${run.label} | ${run.skipped} | | | | | | | |`);
      continue;
    }
    const s = summarize(run, entry.runs);
    if (s === null) {
      lines.push(`| ${run.label} | no measurement | | | | | | | |`);
      continue;
    }
    const flag = s.errors > 0 ? ' ⚠' : '';
    lines.push(
      `| ${run.label}${flag} | ${s.rate.toFixed(0)} (${s.rateMin.toFixed(0)}–${s.rateMax.toFixed(0)}) | ${fixed(s.p50, latencyDigits)} | ${fixed(s.p99, latencyDigits)} | ${fixed(s.cpu, 1)} | ${fixed(s.maxRssMb, 0)} | ${s.errors} | ${fixed(s.rateVsHttpProxy, 2)} | ${fixed(s.cpuVsPipe, 2)} |`,
    );
  }
  lines.push(...pairLines(entry));
  const problems = entry.runs.filter((run) => run.verifyError !== undefined).map((run) => `${run.label}: ${run.verifyError}`);
  if (problems.length > 0) lines.push('', `Checked request before the load failed for ${problems.join('; ')}.`);
  const h2Relay = entry.runs.find((r) => r.proxy === 'relay-h2-front');
  const h2Peer = entry.runs.find((r) => r.proxy === 'fastify-http-proxy-h2');
  if (h2Relay !== undefined && h2Peer !== undefined && h2Relay.skipped === undefined && h2Peer.skipped === undefined) {
    const rate = pairedRatio(h2Relay, h2Peer, (w) => w.rate);
    const cpu = pairedRatio(h2Relay, h2Peer, (w) => w.cpuPerUnit);
    if (rate !== null && cpu !== null) lines.push('', `Relay's HTTP/2 front: ${rate.toFixed(2)}× @fastify/http-proxy's req/s (http2: true) at ${cpu.toFixed(2)}× its CPU per request (same run, paired by round).`);
  }
  const relay = entry.runs.find((r) => r.proxy === 'relay');
  const got = entry.runs.find((r) => r.proxy === 'relay-got');
  if (relay !== undefined && got !== undefined && got.skipped === undefined) {
    const ratio = pairedRatio(got, relay, (w) => w.cpuPerUnit);
    if (ratio !== null) lines.push('', `got transport: ${ratio.toFixed(2)}× the CPU per request of the default transport (same run, paired by round).`);
  }
  const fetchRow = entry.runs.find((r) => r.proxy === 'relay-hono-fetch');
  const honoRow = entry.runs.find((r) => r.proxy === 'hono-proxy');
  if (fetchRow !== undefined && honoRow !== undefined && fetchRow.skipped === undefined && honoRow.skipped === undefined) {
    const rate = pairedRatio(fetchRow, honoRow, (w) => w.rate);
    const cpu = pairedRatio(fetchRow, honoRow, (w) => w.cpuPerUnit);
    if (rate !== null && cpu !== null) {
      lines.push('', `relay.fetch in Hono: ${rate.toFixed(2)}× the ${unit}/s and ${cpu.toFixed(2)}× the CPU per ${unit} of Hono's proxy() (same run, paired by round).`);
    }
  }
  return lines;
}

export function renderReport(info: RunInfo, results: WorkloadRun[]): string {
  const lines = [
    '# Benchmark results',
    '',
    `Written by \`${info.command}\` on ${info.date}: Node ${info.node}, ${info.cpu} (${info.cores} cores), ${info.platform}, autocannon ${info.autocannon}; ${info.minutes.toFixed(1)} minutes.`,
    `Load average (1 min) ${info.loadStart.toFixed(2)} at the start, ${info.loadEnd.toFixed(2)} at the end.`,
  ];
  if (info.note !== null) lines.push(`**Note:** ${info.note}`);
  lines.push(
    '',
    'One upstream process and one process per proxy on 127.0.0.1, each proxy with the same keep-alive pool to the upstream;',
    'the load generator runs in the harness process. Rounds are interleaved (every proxy once per round, the order rotated',
    'each round); the table shows medians over rounds and the min–max of requests/s. CPU is the proxy process\'s user + system',
    'time over the measured windows only, per completed request; peak RSS is `process.resourceUsage().maxRSS` of a process',
    'started fresh for the workload. Ratios are medians of per-round ratios to http-proxy and to the pipe proxy. A ⚠ marks',
    'a proxy with errors (a failed connection, a timeout, a non-200 status or a body of the wrong bytes). Absolute figures',
    'move with the machine\'s load; the ratios, measured in the same run, are the numbers to compare. How each peer is set',
    'up: [README.md](README.md).',
    '',
    '## Targets',
    '',
    '| target | measured (median) | result |',
    '| --- | --- | --- |',
    ...targets(results).map((row) => `| ${row.target} | ${row.measured} | ${row.result} |`),
  );
  for (const entry of results) lines.push('', ...workloadTable(entry));
  return `${lines.join('\n')}\n`;
}
