// Retry-After in the asctime form of HTTP-date (RFC 9110 §5.6.7) is GMT, like the other two forms; the
// relay must not read it in the host's local time zone (review s39).
// A relay host whose TZ is not UTC (America/Los_Angeles here, set before any date is read).
process.env.TZ = 'America/Los_Angeles';

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serveRelay, fetchRaw, startUpstream } from '@relay/testkit';
import { createRelay } from '@relay/core';
import { retry } from '../src/index.js';

const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** `Sun Nov  6 08:49:37 1994`: asctime-date, always GMT (RFC 9110 §5.6.7). */
function asctime(date: Date): string {
  return `${days[date.getUTCDay()]} ${months[date.getUTCMonth()]} ${String(date.getUTCDate()).padStart(2, ' ')} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} ${date.getUTCFullYear()}`;
}

test('a 503 with Retry-After as an asctime HTTP-date about 2 s ahead waits until then on a non-UTC host, then gets the 200', async () => {
  const arrivals: number[] = [];
  const upstream = await startUpstream((_req, res) => {
    arrivals.push(performance.now());
    if (arrivals.length === 1) {
      res.writeHead(503, { 'retry-after': asctime(new Date(Date.now() + 2000)), 'content-length': 4 }).end('busy');
      return;
    }
    res.end('ok');
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 1, backoffFactor: 10 })] }));
  try {
    const response = await fetchRaw(`${served.url}/`);
    // Read as Los Angeles time the date is 7–8 hours ahead: past the 10 s cap, so the 503 came back at once.
    assert.is(response.status, 200, `got ${response.status} after ${arrivals.length} upstream attempt(s): the asctime date was read in local time`);
    const waited = arrivals[1]! - arrivals[0]!;
    assert.ok(waited > 900 && waited < 3500, `waited ${waited} ms, expected 1–2 s`);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
