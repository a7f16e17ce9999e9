// retryPolicy() and withRetry() follow the retry() stage's own rules: one table of cases, each run
// through the stage (fake next), the policy functions (a loop of our own) and withRetry (a fake call).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger } from '@relay/testkit';
import { ClientInfo, RelayError, stageContext, type HeaderRecord, type ProxyRequest, type ProxyResponse } from '@relay/core';
import { retry, retryPolicy, withRetry, type RetryOptions, type RetryOutcome } from '../src/index.js';

/** One attempt's outcome: a response status (with headers) or a failure. */
type Step = { status: number; headers?: HeaderRecord } | { error: Error };

interface Case {
  name: string;
  options: RetryOptions;
  method: string;
  steps: Step[];
  /** How many attempts are made. */
  attempts: number;
  /** The waits before each retry, as logged. */
  delays: number[];
  /** The final status, or the final error's code. */
  ends: number | string;
}

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
const fetchFailed = (): Error => new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
const base: RetryOptions = { maxRetries: 3, backoffFactor: 2, maxBackoff: 5 };

const cases: Case[] = [
  { name: 'a retried status, then success', options: base, method: 'GET', steps: [{ status: 503 }, { status: 502 }, { status: 200 }], attempts: 3, delays: [2, 4], ends: 200 },
  { name: 'retries run out: the last response passes', options: base, method: 'GET', steps: [{ status: 504 }], attempts: 4, delays: [2, 4, 5], ends: 504 },
  { name: 'POST is not retried by default', options: base, method: 'POST', steps: [{ status: 503 }, { status: 200 }], attempts: 1, delays: [], ends: 503 },
  { name: 'POST opted in', options: { ...base, methods: ['GET', 'post'] }, method: 'POST', steps: [{ status: 503 }, { status: 200 }], attempts: 2, delays: [2], ends: 200 },
  { name: 'a status not listed', options: base, method: 'GET', steps: [{ status: 500 }], attempts: 1, delays: [], ends: 500 },
  { name: '429 listed, Retry-After honoured', options: { ...base, statuses: [429] }, method: 'GET', steps: [{ status: 429, headers: { 'retry-after': '0' } }, { status: 200 }], attempts: 2, delays: [0], ends: 200 },
  { name: 'Retry-After longer than allowed ends the retries', options: { ...base, retryAfter: 1000 }, method: 'GET', steps: [{ status: 503, headers: { 'retry-after': '30' } }], attempts: 1, delays: [], ends: 503 },
  { name: 'Retry-After ignored when turned off', options: { ...base, retryAfter: false }, method: 'GET', steps: [{ status: 503, headers: { 'retry-after': '30' } }, { status: 200 }], attempts: 2, delays: [2], ends: 200 },
  { name: 'a refused connection, then success', options: base, method: 'PUT', steps: [{ error: refused() }, { status: 201 }], attempts: 2, delays: [2], ends: 201 },
  { name: 'a RelayError code not listed', options: base, method: 'GET', steps: [{ error: new RelayError('ERR_WRITE_TIMEOUT', 'stalled') }], attempts: 1, delays: [], ends: 'ERR_WRITE_TIMEOUT' },
  { name: 'errors narrowed to resets', options: { ...base, errors: ['ERR_UPSTREAM_RESET'] }, method: 'GET', steps: [{ error: fetchFailed() }, { error: refused() }], attempts: 2, delays: [2], ends: 'ERR_UPSTREAM_UNREACHABLE' },
  { name: 'maxRetries 0: one attempt', options: { maxRetries: 0 }, method: 'GET', steps: [{ status: 503 }], attempts: 1, delays: [], ends: 503 },
];

function stepAt(steps: Step[], index: number): Step {
  return steps[Math.min(index, steps.length - 1)]!;
}

function codeOf(error: unknown): string {
  if (error instanceof RelayError) return error.code;
  return (error as { cause?: { code?: string }; code?: string }).cause?.code === 'UND_ERR_SOCKET' ? 'ERR_UPSTREAM_RESET' : 'ERR_UPSTREAM_UNREACHABLE';
}

/** The stage: a fake next answering the steps in turn; the stage turns network errors into RelayErrors as a transport does. */
async function throughStage(testCase: Case): Promise<{ attempts: number; delays: number[]; ends: number | string }> {
  let attempts = 0;
  const logger = memoryLogger();
  const handler = retry(testCase.options).wrap(async (): Promise<ProxyResponse> => {
    const step = stepAt(testCase.steps, attempts++);
    if ('error' in step) throw step.error instanceof RelayError ? step.error : new RelayError(codeOf(step.error) as 'ERR_UPSTREAM_RESET', step.error.message);
    return { status: step.status, statusMessage: '', headers: { ...step.headers }, body: null };
  }, stageContext({ logger }));
  const request: ProxyRequest = {
    method: testCase.method,
    path: '/x',
    headers: {},
    body: null,
    replayBody: null,
    attempt: 1,
    client: new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/x' }),
  };
  const ends = await handler(request).then((response) => response.status, (error: unknown) => (error as RelayError).code);
  return { attempts, delays: logger.lines.map((line) => line.fields.delay as number), ends };
}

/** The policy functions, in a loop of our own. */
function throughPolicy(testCase: Case): { attempts: number; delays: number[]; ends: number | string } {
  const policy = retryPolicy(testCase.options);
  const delays: number[] = [];
  let attempt = 1;
  for (;;) {
    const step = stepAt(testCase.steps, attempt - 1);
    const outcome: RetryOutcome = 'error' in step ? { method: testCase.method, error: step.error } : { method: testCase.method, status: step.status, headers: step.headers };
    if (!policy.shouldRetry(attempt, outcome)) return { attempts: attempt, delays, ends: 'error' in step ? codeOf(step.error) : step.status };
    delays.push(policy.delay(attempt, outcome)!);
    attempt++;
  }
}

/** withRetry around a fake call answering the steps in turn (a response-like value, or a rejection). */
async function throughHelper(testCase: Case): Promise<{ attempts: number; delays: number[]; ends: number | string }> {
  let attempts = 0;
  const logger = memoryLogger();
  const { maxReplayBytes: _unused, ...options } = testCase.options;
  const ends = await withRetry(
    async () => {
      const step = stepAt(testCase.steps, attempts++);
      if ('error' in step) throw step.error;
      return { status: step.status, headers: new Headers(step.headers as Record<string, string>), body: null };
    },
    { ...options, method: testCase.method, logger },
  ).then((result) => result.status, codeOf);
  return { attempts, delays: logger.lines.map((line) => line.fields.delay as number), ends };
}

for (const testCase of cases) {
  test(`same decisions three ways: ${testCase.name}`, async () => {
    const expected = { attempts: testCase.attempts, delays: testCase.delays, ends: testCase.ends };
    assert.equal(await throughStage(testCase), expected, 'stage');
    assert.equal(throughPolicy(testCase), expected, 'retryPolicy');
    assert.equal(await throughHelper(testCase), expected, 'withRetry');
  });
}

test('retryPolicy: the delay has full jitter when asked, and the attempt number is checked', () => {
  const policy = retryPolicy({ maxRetries: 5, backoffFactor: 100, jitter: true });
  const outcome = { method: 'GET', status: 503 };
  for (let i = 0; i < 50; i++) {
    const delay = policy.delay(3, outcome)!;
    assert.ok(delay >= 0 && delay <= 400, String(delay));
  }
  assert.is(policy.delay(6, outcome), null, 'no retry left after attempt 6');
  assert.throws(() => policy.shouldRetry(0, outcome), /attempt must be a whole number ≥ 1/);
  assert.throws(() => retryPolicy({ maxRetries: -1 }), /maxRetries must be a whole number/);
  assert.throws(() => retryPolicy({ statuses: [700] }), /statuses must hold HTTP status codes/);
});

test('retryPolicy: Retry-After read from a WHATWG Headers, an IncomingHttpHeaders-like record, or an HTTP-date', () => {
  const policy = retryPolicy({ maxRetries: 1, statuses: [429] });
  assert.is(policy.delay(1, { method: 'GET', status: 429, headers: new Headers({ 'Retry-After': '2' }) }), 2000);
  assert.is(policy.delay(1, { method: 'GET', status: 429, headers: { 'retry-after': '3' } }), 3000);
  const inFiveSeconds = new Date(Date.now() + 5_500).toUTCString();
  const fromDate = policy.delay(1, { method: 'GET', status: 429, headers: { 'retry-after': inFiveSeconds } })!;
  assert.ok(fromDate > 3000 && fromDate <= 5500, String(fromDate));
});

test('retryPolicy: Retry-After in a header record is found whatever the case of its name (RFC 9110 §5.1)', () => {
  const policy = retryPolicy({ maxRetries: 2, backoffFactor: 50 });
  for (const name of ['retry-after', 'Retry-After', 'RETRY-AFTER']) {
    assert.is(policy.shouldRetry(1, { method: 'GET', status: 503, headers: { [name]: '3600' } }), false, `${name}: an hour is beyond retryAfter (10 s)`);
    assert.is(policy.delay(1, { method: 'GET', status: 503, headers: { [name]: '2' } }), 2000, `${name}: the server's wait, not the 50 ms backoff`);
  }
  assert.is(policy.delay(1, { method: 'GET', status: 503, headers: { 'Content-Type': 'text/plain', 'X-Retry-After': '2' } }), 50, 'no Retry-After in any case: the backoff');
});

test.run();
