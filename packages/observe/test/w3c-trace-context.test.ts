// The W3C Trace Context test suite's cases (github.com/w3c/trace-context, test/test.py) against the relay as a
// participant that continues traces: tracing() with no span active and no serverSpan, the W3C propagator, an
// upstream that records what it receives. A valid traceparent continues its trace (same trace id, a new parent
// id); an invalid one, two of them included, starts a new trace; tracestate goes on only with a valid traceparent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SpanKind, propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRelay } from '@relay/core';
import { fetchRaw, sendRaw, serveRelay, startUpstream, waitFor, type RelayServer, type Upstream } from '@relay/testkit';
import { tracing } from '../src/index.js';

propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

const traceId = '12345678901234567890123456789012';
const parentId = '1234567890123456';
const valid = `00-${traceId}-${parentId}-01`;
const outgoing = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

interface Sent {
  traceparent: { traceId: string; parentId: string };
  /** Every `tracestate` line the upstream got, joined as RFC 9110 combines them; null without any. */
  tracestate: string | null;
}

let upstream: Upstream;
let served: RelayServer<ReturnType<typeof createRelay>>;

test.before(async () => {
  upstream = await startUpstream();
  const t = tracing({ tracerProvider });
  served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] }));
});

test.after(async () => {
  await served.close();
  await upstream.close();
});

/** What the upstream got for one request with these header lines (a name given twice is sent as two lines). */
async function relayed(headers: Record<string, string | string[]>): Promise<Sent> {
  const seen = upstream.requests.length;
  assert.is((await fetchRaw(`${served.url}/w3c`, { headers })).status, 200);
  return sentUpstream(seen);
}

function sentUpstream(index: number): Sent {
  const raw = upstream.requests[index]!.rawHeaders;
  const lines = (name: string) => raw.filter((_value, at) => at % 2 === 1 && raw[at - 1]!.toLowerCase() === name);
  const parents = lines('traceparent');
  assert.is(parents.length, 1, `one traceparent line upstream, got ${JSON.stringify(parents)}`);
  const match = outgoing.exec(parents[0]!);
  assert.ok(match, `a valid version 00 traceparent upstream, got ${parents[0]}`);
  const states = lines('tracestate');
  return { traceparent: { traceId: match[1]!, parentId: match[2]! }, tracestate: states.length === 0 ? null : states.join(',') };
}

function continued(sent: Sent): void {
  assert.is(sent.traceparent.traceId, traceId);
  assert.is.not(sent.traceparent.parentId, parentId);
}

function restarted(sent: Sent, ...clientTraceIds: string[]): void {
  for (const id of [traceId, ...clientTraceIds]) assert.is.not(sent.traceparent.traceId, id);
  assert.is.not(sent.traceparent.traceId, '0'.repeat(32));
}

function members(tracestate: string | null): string[] {
  return tracestate === null ? [] : tracestate.split(',').map((member) => member.trim()).filter((member) => member !== '');
}

test('test_both_traceparent_and_tracestate_missing: a new trace, one valid traceparent upstream, no tracestate', async () => {
  const sent = await relayed({});
  restarted(sent);
  assert.is(sent.tracestate, null);
});

test('test_traceparent_included_tracestate_missing: the trace goes on with a new parent id', async () => {
  continued(await relayed({ traceparent: valid }));
});

test('test_traceparent_duplicated: two traceparent lines are invalid, a new trace starts (not the first line\'s)', async () => {
  const first = '00-12345678901234567890123456789011-1234567890123456-01';
  const sent = await relayed({ traceparent: [first, valid], tracestate: 'foo=1' });
  restarted(sent, '12345678901234567890123456789011');
  // The tracestate of an invalid traceparent MUST be dropped (processing model, "a traceparent is received", 2.1).
  assert.is(sent.tracestate, null);
});

test('test_traceparent_duplicated: the same line twice, and two future-version lines, start a new trace too', async () => {
  restarted(await relayed({ traceparent: [valid, valid] }));
  const future = `cc-${traceId}-${parentId}-01-what-the-future-will-be-like`;
  restarted(await relayed({ traceparent: [future, `cc-12345678901234567890123456789011-${parentId}-01`] }), '12345678901234567890123456789011');
});

test('one traceparent line whose value holds two, comma-joined (as a front that folds repeated lines sends them): a new trace', async () => {
  restarted(await relayed({ traceparent: `${valid}, 00-12345678901234567890123456789011-${parentId}-01` }), '12345678901234567890123456789011');
  // A future version's extra fields could hide a comma from the propagator's pattern: still not one traceparent.
  restarted(await relayed({ traceparent: `cc-${traceId}-${parentId}-01-future, cc-12345678901234567890123456789011-${parentId}-01` }));
});

test('two traceparent lines sent byte for byte on the wire: a new trace', async () => {
  const seen = upstream.requests.length;
  const head =
    `GET /w3c HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n` +
    `traceparent: 00-12345678901234567890123456789011-${parentId}-01\r\nTraceParent: ${valid}\r\n\r\n`;
  assert.match(await sendRaw(served.port, head), /^HTTP\/1\.1 200 /);
  restarted(sentUpstream(seen), '12345678901234567890123456789011');
});

test('test_traceparent_header_name: trace-parent and trace.parent are not traceparent', async () => {
  restarted(await relayed({ 'trace-parent': valid }));
  restarted(await relayed({ 'trace.parent': valid }));
});

test('test_traceparent_header_name_valid_casing: the name in any case', async () => {
  for (const name of ['TraceParent', 'TrAcEpArEnT', 'TRACEPARENT']) {
    const seen = upstream.requests.length;
    assert.match(await sendRaw(served.port, `GET /w3c HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n${name}: ${valid}\r\n\r\n`), /^HTTP\/1\.1 200 /);
    continued(sentUpstream(seen));
  }
});

test('test_traceparent_version_0x00: version 00 with trailing characters or extra fields is invalid', async () => {
  restarted(await relayed({ traceparent: `${valid}.` }));
  restarted(await relayed({ traceparent: `${valid}-what-the-future-will-be-like` }));
});

test('test_traceparent_version_0xcc: a future version is read by its first four fields, extra fields after a dash', async () => {
  continued(await relayed({ traceparent: `cc-${traceId}-${parentId}-01` }));
  continued(await relayed({ traceparent: `cc-${traceId}-${parentId}-01-what-the-future-will-be-like` }));
  restarted(await relayed({ traceparent: `cc-${traceId}-${parentId}-01.what-the-future-will-be-like` }));
});

test('test_traceparent_version_0xff, illegal characters, too long, too short: a new trace', async () => {
  for (const version of ['ff', '.0', '0.', '000', '0000', '0']) restarted(await relayed({ traceparent: `${version}-${traceId}-${parentId}-01` }));
});

test('uppercase hex in any field is invalid (lowercase only): a new trace', async () => {
  restarted(await relayed({ traceparent: `00-${'ABCDEF7890123456789012345678ABCD'}-${parentId}-01` }), 'abcdef7890123456789012345678abcd');
  restarted(await relayed({ traceparent: `00-${traceId}-ABCDEF7890123456-01` }));
  restarted(await relayed({ traceparent: `0A-${traceId}-${parentId}-01` }));
});

test('test_traceparent_trace_id_*: all zeros, illegal characters, too long, too short', async () => {
  restarted(await relayed({ traceparent: `00-${'0'.repeat(32)}-${parentId}-01` }));
  for (const id of ['.2345678901234567890123456789012', '1234567890123456789012345678901.', '123456789012345678901234567890123', '1234567890123456789012345678901']) {
    restarted(await relayed({ traceparent: `00-${id}-${parentId}-01` }), '23456789012345678901234567890123');
  }
});

test('test_traceparent_parent_id_*: all zeros, illegal characters, too long, too short', async () => {
  for (const id of ['0000000000000000', '.234567890123456', '123456789012345.', '12345678901234567', '123456789012345']) {
    restarted(await relayed({ traceparent: `00-${traceId}-${id}-01` }));
  }
});

test('test_traceparent_trace_flags_*: illegal characters, too long, too short', async () => {
  for (const flags of ['.0', '0.', '001', '1']) restarted(await relayed({ traceparent: `00-${traceId}-${parentId}-${flags}` }));
});

test('test_traceparent_ows_handling: leading and trailing spaces and tabs', async () => {
  for (const value of [` ${valid}`, `\t${valid}`, `${valid} `, `${valid}\t`, `\t ${valid} \t`]) {
    const seen = upstream.requests.length;
    assert.match(await sendRaw(served.port, `GET /w3c HTTP/1.1\r\nHost: relay\r\nConnection: close\r\ntraceparent: ${value}\r\n\r\n`), /^HTTP\/1\.1 200 /);
    continued(sentUpstream(seen));
  }
});

test('test_tracestate_included_traceparent_missing: a tracestate without a traceparent is dropped', async () => {
  const one = await relayed({ tracestate: 'foo=1' });
  const two = await relayed({ tracestate: 'foo=1,bar=2' });
  assert.is(one.tracestate, null);
  assert.is(two.tracestate, null);
});

test('a tracestate beside an invalid traceparent is dropped with it', async () => {
  const sent = await relayed({ traceparent: `00-${'0'.repeat(32)}-${parentId}-01`, tracestate: 'foo=1' });
  restarted(sent);
  assert.is(sent.tracestate, null);
});

test('test_tracestate_included_traceparent_included, header name casing: inherited', async () => {
  const sent = await relayed({ traceparent: `00-${traceId}-${parentId}-00`, tracestate: 'foo=1,bar=2' });
  continued(sent);
  assert.equal(members(sent.tracestate), ['foo=1', 'bar=2']);
  const seen = upstream.requests.length;
  assert.match(await sendRaw(served.port, `GET /w3c HTTP/1.1\r\nHost: relay\r\nConnection: close\r\ntraceparent: ${valid}\r\nTrAcEsTaTe: foo=1\r\n\r\n`), /^HTTP\/1\.1 200 /);
  assert.equal(members(sentUpstream(seen).tracestate), ['foo=1']);
});

test('test_tracestate_header_name: trace-state and trace.state are not tracestate', async () => {
  for (const name of ['trace-state', 'trace.state']) {
    const sent = await relayed({ traceparent: valid, [name]: 'foo=1' });
    continued(sent);
    assert.is(sent.tracestate, null);
  }
});

test('test_tracestate_empty_header: an empty line is accepted and adds nothing', async () => {
  const empty = await relayed({ traceparent: valid, tracestate: '' });
  continued(empty);
  assert.equal(members(empty.tracestate), []);
  for (const lines of [['foo=1', ''], ['', 'foo=1']]) {
    const sent = await relayed({ traceparent: valid, tracestate: lines });
    continued(sent);
    assert.equal(members(sent.tracestate), ['foo=1']);
  }
});

test('test_tracestate_multiple_headers_different_keys: tracestate lines are combined, in order', async () => {
  const sent = await relayed({ traceparent: valid, tracestate: ['foo=1,bar=2', 'rojo=1,congo=2', 'baz=3'] });
  continued(sent);
  assert.equal(members(sent.tracestate), ['foo=1', 'bar=2', 'rojo=1', 'congo=2', 'baz=3']);
});

test('test_tracestate_ows_handling: spaces and tabs around members', async () => {
  const sent = await relayed({ traceparent: valid, tracestate: 'foo=1 \t , \t bar=2, \t baz=3' });
  assert.equal(members(sent.tracestate), ['foo=1', 'bar=2', 'baz=3']);
});

test('test_tracestate_all_allowed_characters: kept as sent', async () => {
  const key = 'abcdefghijklmnopqrstuvwxyz0123456789_-*/';
  let value = '';
  for (let code = 0x20; code <= 0x7e; code++) if (code !== 0x2c && code !== 0x3d) value += String.fromCharCode(code);
  for (const name of [key, `${key}@a-z0-9_-*/`]) {
    const sent = await relayed({ traceparent: valid, tracestate: `${name}=${value}` });
    assert.is(sent.tracestate, `${name}=${value}`);
  }
});

// The strict level's tracestate cases (duplicate keys, 33 members, invalid members) ask for the whole tracestate to be
// discarded. The processing model lets a vendor discard the whole header or only the invalid entries (step 3, MAY),
// and the propagator drops the entries: what is checked here is that nothing invalid goes upstream, and the
// traceparent goes on either way (a tracestate failure MUST NOT affect traceparent).
test('tracestate with a duplicated key: at most one entry for the key upstream, the trace goes on', async () => {
  for (const lines of ['foo=1,foo=1', 'foo=1,foo=2', ['foo=1', 'foo=1'], ['foo=1', 'foo=2']]) {
    const sent = await relayed({ traceparent: valid, tracestate: lines });
    continued(sent);
    assert.ok(members(sent.tracestate).filter((member) => member.startsWith('foo=')).length <= 1, String(sent.tracestate));
  }
});

test('tracestate with 32 members is kept; with 33 no more than 32 go upstream; the trace goes on', async () => {
  const names = Array.from({ length: 33 }, (_unused, index) => `bar${String(index + 1).padStart(2, '0')}=${String(index + 1).padStart(2, '0')}`);
  const kept = await relayed({ traceparent: valid, tracestate: [names.slice(0, 10).join(','), names.slice(10, 32).join(',')] });
  assert.equal(members(kept.tracestate), names.slice(0, 32));
  const over = await relayed({ traceparent: valid, tracestate: [names.slice(0, 10).join(','), names.slice(10).join(',')] });
  continued(over);
  assert.ok(members(over.tracestate).length <= 32, String(over.tracestate));
});

test('invalid tracestate members (keys, vendor format, lengths, values) never go upstream; the trace goes on', async () => {
  const invalid = ['foo =1', 'FOO=1', 'foo.bar=1', 'foo@=1', '@foo=1', 'foo@@bar=1', 'foo@bar@baz=1', `${'z'.repeat(257)}=1`, `${'t'.repeat(242)}@v=1`, `t@${'v'.repeat(15)}=1`, 'foo=bar=baz', 'foo='];
  for (const member of invalid) {
    const sent = await relayed({ traceparent: valid, tracestate: [member, 'ok=1'] });
    continued(sent);
    assert.not.ok(members(sent.tracestate).includes(member), `${member} went upstream: ${String(sent.tracestate)}`);
  }
  const longest = await relayed({ traceparent: valid, tracestate: ['foo=1', `${'z'.repeat(256)}=1`] });
  assert.ok(members(longest.tracestate).includes('foo=1'));
});

test('AdvancedTest: with a valid, no, or an illegal traceparent, every request gets a parent id of its own', async () => {
  const cases: Record<string, string>[] = [{ traceparent: valid }, {}, { traceparent: `00-${'0'.repeat(32)}-${parentId}-01` }];
  for (const headers of cases) {
    const sent = [await relayed(headers), await relayed(headers), await relayed(headers)];
    assert.is(new Set(sent.map((one) => one.traceparent.parentId)).size, 3);
    if (headers.traceparent === valid) for (const one of sent) assert.is(one.traceparent.traceId, traceId);
    else for (const one of sent) assert.is.not(one.traceparent.traceId, '0'.repeat(32));
  }
});

test('serverSpan: true: the SERVER span of a request with two traceparent lines is the root of a new trace', async () => {
  const t = tracing({ tracerProvider, serverSpan: true });
  const own = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] }));
  try {
    exporter.reset();
    const seen = upstream.requests.length;
    assert.is((await fetchRaw(`${own.url}/w3c`, { headers: { traceparent: [valid, `00-12345678901234567890123456789011-${parentId}-01`] } })).status, 200);
    const sent = sentUpstream(seen);
    restarted(sent, '12345678901234567890123456789011');
    assert.ok(await waitFor(() => exporter.getFinishedSpans().some((span) => span.kind === SpanKind.SERVER)));
    const server = exporter.getFinishedSpans().find((span) => span.kind === SpanKind.SERVER)!;
    assert.is(server.parentSpanContext, undefined);
    assert.is(server.spanContext().traceId, sent.traceparent.traceId);
    // One valid line still continues the trace under the SERVER span.
    const again = upstream.requests.length;
    assert.is((await fetchRaw(`${own.url}/w3c`, { headers: { traceparent: valid } })).status, 200);
    continued(sentUpstream(again));
  } finally {
    await own.close();
  }
});

test.run();
