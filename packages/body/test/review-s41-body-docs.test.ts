// Review s41 (issue 20, README/docs excerpts being true): docs/bodies.md's ReplaceStream, the Transform the guide gives
// for transformResponseStream, "Replaces `from` with `to` in a UTF-8 stream; a match split across two chunks is still
// found". Its output must not depend on where the chunks split: the same text as one `replaceAll` on the whole body.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReplaceStream } from '../../../docs/examples/bodies.js';

/** Runs `chunks` through a fresh ReplaceStream and resolves with the whole output. */
function replaced(from: string, to: string, chunks: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = new ReplaceStream(from, to);
    let out = '';
    stream.on('data', (part: Buffer) => (out += part.toString()));
    stream.on('end', () => resolve(out));
    stream.on('error', reject);
    for (const chunk of chunks) stream.write(Buffer.from(chunk));
    stream.end();
  });
}

test('docs/bodies.md ReplaceStream: the result is the one replaceAll gives, wherever the body is split', async () => {
  // Collapsing a doubled mount prefix, a common HTML fix-up: `to` ends with text that, with the next chunk, spells
  // `from` again. The held-back tail is taken from the already replaced text, so a replacement is replaced again
  // when the split falls there; one replaceAll (and nginx sub_filter) never rescans what it wrote.
  const cases: Array<[string, string, string]> = [
    ['/api/api/', '/api/', '<a href="/api/api/api/users">'],
    ['ab', 'a', 'xabbby'],
  ];
  for (const [from, to, text] of cases) {
    const whole = text.replaceAll(from, to);
    for (let split = 1; split < text.length; split++) {
      const streamed = await replaced(from, to, [text.slice(0, split), text.slice(split)]);
      assert.is(streamed, whole, `${JSON.stringify(from)} → ${JSON.stringify(to)} over ${JSON.stringify(text)} split at ${split}`);
    }
  }
});

test.run();
